"""fd-prep's output, fd-train offline and fd-eval's figures."""

import json
import socket

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from fd import dataset as ds
from fd.cli import eval_cmd, prep_cmd, train_cmd
from fd.evaluate import average_precision, evaluate, match
from fd.records import ImageRecord
from fer.readers.base import SkipLog
from tests import fixtures
from tests.conftest import shared_path


def invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def small_tree(root):
    return fixtures.widerface_tree(root, "train", [
        (f"e/{i}.jpg", ["1", f"{10 + i} 20 40 50 0 0 0 0 0 0"], True) for i in range(10)])


def test_prep_writes_yolo_layout_and_report(tmp_path):
    small_tree(tmp_path / "w")
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--out", out, "--val-fraction", 0.3,
                               "--no-progress"])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
                    "names": {0: "face"}}
    report = json.loads((out / "prep_report.json").read_text())
    assert report["images"]["train"] + report["images"]["val"] == 10
    assert report["images"]["val"] > 0
    assert report["sources"]["widerface"]["faces"] == 10
    label = (out / "labels" / "train").iterdir().__next__().read_text().split()
    assert label[0] == "0" and all(0 < float(v) <= 1 for v in label[1:])
    image = next((out / "images" / "train").iterdir())
    name = image.stem.split("__")[1]  # e_<i>
    i = int(name.split("_")[1])
    cx, cy, w, h = map(float, (out / "labels" / "train" / f"{image.stem}.txt").read_text().split()[1:])
    assert (cx * 200, cy * 150, w * 200, h * 150) == pytest.approx((30 + i, 45, 40, 50), abs=1e-3)


def test_prep_max_side_shrinks_images_and_keeps_the_labels(tmp_path):
    """--max-side: every image, generated copies too, at most that long; the relative labels are
    the full-size run's, byte for byte."""
    import cv2

    small_tree(tmp_path / "w")
    runs = {}
    for name, extra in (("full", []), ("small", ["--max-side", 100])):
        out = tmp_path / name
        result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--out", out, "--harden", 1,
                                   "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        runs[name] = out
    small = json.loads((runs["small"] / "prep_report.json").read_text())
    assert small["max_side"] == 100 and small["placed"] == {"shrunk": 10}
    images = sorted((runs["small"] / "images").rglob("*.jpg"))
    assert len(images) == 10 + small["generated"]["harden"]["images"] > 10
    assert all(cv2.imread(str(p)).shape[:2] == (75, 100) for p in images)
    for label in (runs["full"] / "labels").rglob("*.txt"):
        twin = runs["small"] / label.relative_to(runs["full"])
        assert twin.read_text() == label.read_text()


def test_split_is_stable_across_runs():
    record = ImageRecord("widerface", "a/b.jpg", None)
    assert {ds.split_of(record, 0.5) for _ in range(5)} == {ds.split_of(record, 0.5)}


def test_interrupted_prep_keeps_the_previous_output(tmp_path):
    small_tree(tmp_path / "w")
    out = tmp_path / "faces"
    assert invoke(prep_cmd, ["--widerface", tmp_path / "w", "--out", out, "--no-progress"]).exit_code == 0
    before = sorted(p.name for p in (out / "images" / "train").iterdir())

    def records():
        yield ImageRecord("widerface", "x.jpg", tmp_path / "w" / "WIDER_train" / "images" / "e" / "0.jpg",
                          [(1, 1, 5, 5)])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ds.write_dataset({"widerface": records()}, {"widerface": SkipLog()}, out, progress=False)
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".faces")] == []


def test_prep_fatal_errors(tmp_path):
    no_source = invoke(prep_cmd, ["--out", tmp_path / "o"])
    assert no_source.exit_code == 1 and "no source given" in no_source.output
    missing = invoke(prep_cmd, ["--widerface", tmp_path / "nope", "--out", tmp_path / "o"])
    assert missing.exit_code == 1 and "wider_face_train_bbx_gt.txt not found" in missing.output
    assert "Traceback" not in missing.output
    assert not (tmp_path / "o").exists()
    bad_scale = invoke(prep_cmd, ["--fddb", tmp_path, "--fddb-scale", "1", "--out", tmp_path / "o"])
    assert bad_scale.exit_code == 1 and "--fddb-scale takes 2" in bad_scale.output


def test_prep_output_not_writable(tmp_path):
    small_tree(tmp_path / "w")
    (tmp_path / "afile").write_text("a file where a folder should be")
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--out", tmp_path / "afile" / "faces"])
    assert result.exit_code == 1 and "cannot create" in result.output
    assert "Traceback" not in result.output


def _count_present(root, split):
    """Independent count from the annotation file: present images and their face rows."""
    lines = (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt").read_text().split("\n")
    i, present, faces, invalid, total = 0, 0, 0, 0, 0
    while i < len(lines) and lines[i].strip():
        name, n = lines[i].strip(), int(lines[i + 1])
        rows = [r.split() for r in lines[i + 2:i + 2 + max(n, 1)]]
        total += 1
        if (root / f"WIDER_{split}" / "images" / name).is_file():
            present += 1
            for r in rows:
                if any(float(v) for v in r):
                    faces += 1
                    invalid += r[7] == "1"
        i += 2 + max(n, 1)
    return total, present, faces, invalid


def test_prep_on_the_real_shared_widerface_and_fddb(tmp_path):
    wider = shared_path("widerface")
    fddb = shared_path("fddb")
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", wider, "--fddb", fddb, "--out", out, "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prep_report.json").read_text())
    total, present, faces, invalid = _count_present(wider, "train")
    w = report["sources"]["widerface"]
    assert total == 12880
    assert w["images_read"] == w["images_written"] == present == 1239
    skipped = w["skipped"]["by_reason"]
    assert skipped["missing image on disk"] == total - present
    assert w["faces"] + skipped.get("invalid flag", 0) + skipped.get("degenerate box", 0) == faces == 6590
    assert skipped.get("invalid flag", 0) == invalid
    f = report["sources"]["fddb"]
    assert f["images_written"] == 0 and f["skipped"]["by_reason"] == {"missing image on disk": 2845}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """fd-prep then fd-train for one epoch at 160 px on 16 real WIDER FACE images, offline."""
    tmp = tmp_path_factory.mktemp("fd")
    wider = fixtures.widerface_slice(shared_path("widerface"), tmp / "w", images=16)
    assert invoke(prep_cmd, ["--widerface", wider, "--out", tmp / "faces", "--val-fraction", 0.25,
                             "--no-progress"]).exit_code == 0
    attempts = []
    real_connect = socket.socket.connect

    def no_network(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost", "::1"):
            attempts.append(address)
            raise OSError("network disabled by the test")
        return real_connect(self, address)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", no_network)
    try:
        result = invoke(train_cmd, ["--data", tmp / "faces" / "data.yaml", "--out", tmp / "run",
                                    "--epochs", 1, "--imgsz", 160, "--batch", 8, "--workers", 0])
    finally:
        mp.undo()
    return tmp, result, attempts


@pytest.mark.slow
def test_fd_train_offline_writes_its_files(trained):
    tmp, result, attempts = trained
    assert result.exit_code == 0, result.output
    assert attempts == []
    names = {p.name for p in (tmp / "run").iterdir()}
    assert {"best.pt", "best.onnx", "data.yaml", "results.csv", "results.png"} <= names


@pytest.mark.slow
def test_fd_eval_on_the_trained_model_and_haar(trained):
    tmp, _, _ = trained
    for model in (tmp / "run" / "best.onnx", "haar"):
        out = tmp / f"eval_{getattr(model, 'stem', model)}.json"
        result = invoke(eval_cmd, ["--model", model, "--data", tmp / "faces", "--json", out,
                                   "--no-progress"])
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        assert 0 <= data["AP50"] <= 1 and data["AP50_95"] <= data["AP50"] + 1e-9
        assert set(data["buckets"]) == {"all", "small", "medium", "large"}
        assert out.with_suffix(".png").stat().st_size > 1000


def test_fd_train_refuses_to_download(tmp_path):
    (tmp_path / "d.yaml").write_text("path: x\n")
    result = invoke(train_cmd, ["--data", tmp_path / "d.yaml", "--out", tmp_path / "r",
                                "--weights", "yolov8n.pt"])
    assert result.exit_code == 1 and "nothing is downloaded" in result.output
    assert "Traceback" not in result.output


def test_fd_train_resume_needs_a_run(tmp_path):
    result = invoke(train_cmd, ["--out", tmp_path / "r", "--resume"])
    assert result.exit_code == 1 and "nothing to resume" in result.output


def test_average_precision_all_point():
    # 3 positives; ranked hits: T F T F -> recall .33 .33 .67 .67, precision 1 .5 .67 .5
    ap, _, _ = average_precision(np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.7, 0.6]), 3)
    assert ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    perfect, _, _ = average_precision(np.array([1, 1], bool), np.array([0.9, 0.8]), 2)
    assert perfect == 1.0


def test_match_by_iou_threshold_and_size():
    gts = np.array([[0, 0, 100, 100], [200, 200, 210, 210]], float)  # large, small
    dets = np.array([[5, 5, 100, 100], [200, 200, 210, 212], [400, 400, 450, 450]], float)
    scores = np.array([0.9, 0.8, 0.7])
    tp, keep, npos = match(dets, scores, gts, 0, np.inf)
    assert npos == 2
    assert tp[:, 0].tolist() == [True, True, False]  # IoU .9025 and .83 at 0.5
    assert tp[0, 8] and not tp[0, 9]  # 0.9025 passes 0.9, fails 0.95
    tp, keep, npos = match(dets, scores, gts, 96, np.inf)  # large faces only
    assert npos == 1 and keep[:, 0].tolist() == [True, False, False]


class FixedDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return np.array(self.boxes, float), np.linspace(0.9, 0.5, len(self.boxes))


def test_evaluate_perfect_detector(tmp_path):
    from fd.evaluate import GroundTruth

    path = fixtures.jpeg(tmp_path / "a.jpg", 200, 150)
    boxes = [[10, 10, 60, 70], [100, 20, 110, 30]]
    result = evaluate(FixedDetector(boxes), iter([GroundTruth(path, np.array(boxes, float))]),
                      progress=False)
    assert result["AP50"] == 1.0 and result["AP50_95"] == 1.0
    assert result["buckets"]["small"]["faces"] == 1 and result["buckets"]["medium"]["faces"] == 1
    assert result["precision"] == 1.0 and result["recall"] == 1.0


def test_ultralytics_keeps_every_cpu_thread():
    import os

    import torch

    from fd.yolo_env import offline_ultralytics

    offline_ultralytics()
    from ultralytics.utils.torch_utils import select_device

    select_device("cpu")  # ultralytics resets torch's threads here before CPU training
    assert torch.get_num_threads() == (os.cpu_count() or 1)
