"""Held-out events, the maintainers' excluded events, generated training images, per-event and
close-up evaluation, and the YuNet baseline."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fd import generate as gen
from fd.cli import _overrides, distinct_labels, eval_cmd, prep_cmd
from fd.convert.widerface import HELD_OUT_VAL_EVENTS
from fd.errors import FdError
from fd.evaluate import GroundTruth, closeup_check, closeup_items, evaluate
from tests import fixtures
from tests.conftest import SHARED

PEERS = SHARED.parent / "peers"
YUNET = PEERS / "face_detection_yunet_2026may.onnx"


def invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def val_tree(root: Path) -> Path:
    """A WIDER FACE val layout with two images in each of the held-out events and three others."""
    events = list(HELD_OUT_VAL_EVENTS) + ["7--Cheering", "22--Picnic", "61--Street_Battle"]
    records = [(f"{e}/{e.split('--')[0]}_{i}.jpg", ["1", f"{20 + i} 30 60 70 0 0 0 0 0 0"], True)
               for e in events for i in range(2)]
    return fixtures.widerface_tree(root, "val", records, size=(240, 200))


def written(out: Path) -> list[str]:
    return sorted(p.name for split in ("train", "val") for p in (out / "images" / split).iterdir())


def test_held_out_events_never_reach_a_prepared_dataset(tmp_path):
    val_tree(tmp_path / "w")
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--widerface-splits", "val",
                               "--out", out, "--no-progress"])
    assert result.exit_code == 0, result.output
    names = written(out)
    assert len(names) == 6
    for event in HELD_OUT_VAL_EVENTS:
        assert not [n for n in names if event.replace("--", "--") in n], event
    report = json.loads((out / "prep_report.json").read_text())
    assert report["sources"]["widerface_val"]["skipped"]["by_reason"]["excluded event"] == 10
    # only an explicit empty list keeps them
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--widerface-splits", "val",
                               "--exclude-val-events", "", "--out", out, "--no-progress"])
    assert result.exit_code == 0 and len(written(out)) == 16


def test_val_events_are_held_out_whole(tmp_path):
    val_tree(tmp_path / "w")
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--widerface-splits", "val",
                               "--val-events", "Picnic,7--Cheering", "--val-fraction", 0,
                               "--out", out, "--no-progress"])
    assert result.exit_code == 0, result.output
    val = sorted(p.name for p in (out / "images" / "val").iterdir())
    train = sorted(p.name for p in (out / "images" / "train").iterdir())
    assert len(val) == 4 and all("Picnic" in n or "Cheering" in n for n in val)
    assert len(train) == 2 and all("Street_Battle" in n for n in train)
    events = json.loads((out / "events.json").read_text())
    assert {events[f"val/{Path(n).stem}"] for n in val} == {"22--Picnic", "7--Cheering"}
    assert "validation events held out whole" in result.output


def test_a_val_event_that_matches_nothing_is_refused_and_nothing_is_written(tmp_path):
    val_tree(tmp_path / "w")
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", tmp_path / "w", "--widerface-splits", "val",
                               "--val-events", "Picnic,Cheerng", "--out", out, "--no-progress"])
    assert result.exit_code != 0
    assert "--val-events Cheerng: no image of such an event or source" in result.output
    assert "22--Picnic" in result.output  # the names that were read, to pick from
    assert not out.exists() and not list(tmp_path.glob(".faces.partial-*"))


def test_byte_identical_images_are_written_once(tmp_path):
    root = tmp_path / "w"
    fixtures.widerface_tree(root, "train", [(f"e/{i}.jpg", ["1", "10 10 40 40 0 0 0 0 0 0"], True)
                                            for i in range(3)])
    images = root / "WIDER_train" / "images" / "e"
    (images / "2.jpg").write_bytes((images / "0.jpg").read_bytes())
    out = tmp_path / "faces"
    assert invoke(prep_cmd, ["--widerface", root, "--out", out, "--no-progress"]).exit_code == 0
    report = json.loads((out / "prep_report.json").read_text())
    assert report["sources"]["widerface"]["skipped"]["by_reason"] == {"duplicate content": 1}
    assert len(written(out)) == 2


@pytest.mark.parametrize("seed", range(25))
def test_closeup_window_frames_the_face(seed):
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(300, 1200)), int(rng.integers(300, 1200))
    fw, fh = rng.uniform(60, 150), rng.uniform(60, 150)
    x, y = rng.uniform(0, w - fw), rng.uniform(0, h - fh)
    face = (x, y, x + fw, y + fh)
    window = gen.closeup_window(face, w, h, gen.rng_for(str(seed), "t"))
    if window is None:  # only when no 30%-fill crop fits inside the image
        assert fh / 0.3 > h or fh / 0.3 * 9 / 16 > w
        return
    x0, y0, x1, y1 = window
    assert x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h
    assert x0 <= face[0] + 1 and y0 <= face[1] + 1 and face[2] <= x1 + 1 and face[3] <= y1 + 1
    assert 0.29 <= fh / (y1 - y0) <= 0.91


def test_closeup_is_deterministic_and_drops_faces_mostly_cut_away():
    image = np.full((800, 1000, 3), 90, np.uint8)
    boxes = [(400.0, 300.0, 520.0, 450.0), (700.0, 100.0, 730.0, 130.0)]
    a = gen.closeup(image, boxes, gen.rng_for("k", "closeup"))
    b = gen.closeup(image, boxes, gen.rng_for("k", "closeup"))
    assert a is not None and np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == 0
    assert gen.crop_boxes([(90.0, 0.0, 110.0, 20.0)], (100, 0, 200, 100)) == [(0.0, 0.0, 10.0, 20.0)]
    assert gen.crop_boxes([(80.0, 0.0, 110.0, 20.0)], (100, 0, 200, 100)) == []  # a third inside
    assert gen.closeup(image, [(10.0, 10.0, 40.0, 40.0)], gen.rng_for("k", "c")) is None  # too small


def test_pasted_small_faces_land_where_no_face_is():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (480, 640, 3), np.uint8)
    boxes = [(100.0, 100.0, 300.0, 330.0)]
    donors = gen.face_patches(fixtures.face_like(1, 120, 3), [(10.0, 10.0, 100.0, 110.0)])
    out, all_boxes = gen.paste_small_faces(image, boxes, donors, gen.rng_for("x", "small"))
    added = all_boxes[1:]
    assert all_boxes[0] == boxes[0] and 3 <= len(added) <= 12
    changed = np.any(out != image, axis=2)
    inside = np.zeros_like(changed)
    for x1, y1, x2, y2 in added:
        assert 8 <= y2 - y1 <= 30
        assert gen._overlap((x1, y1, x2, y2), boxes[0]) == 0
        inside[int(y1):int(y2), int(x1):int(x2)] = True
    assert changed.any() and not (changed & ~inside).any()


def test_harden_is_reproducible_and_keeps_the_shape():
    image = fixtures.face_like(2, 160, 3)
    t = gen.hardening_transform()
    a = gen.harden(image, t, gen.rng_for("k", "harden"))
    b = gen.harden(image, t, gen.rng_for("k", "harden"))
    assert a.shape == image.shape and np.array_equal(a, b)


def test_generated_images_are_training_only(tmp_path):
    root = tmp_path / "w"
    records = [(f"e{i % 2}/{i}.jpg", ["2", "30 40 90 110 0 0 0 0 0 0", "200 60 40 50 0 0 0 0 0 0"],
                True) for i in range(12)]
    fixtures.widerface_tree(root, "train", records, size=(320, 240))
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", root, "--val-events", "e1", "--val-fraction", 0,
                               "--closeups", 1, "--small-faces", 1, "--harden", 1, "--out", out,
                               "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prep_report.json").read_text())
    made = report["generated"]
    assert made["closeup"]["images"] == 6 and made["harden"]["images"] == 6
    assert 1 <= made["small_faces"]["images"] <= 6  # donors come from images already seen
    assert not [p for p in (out / "images" / "val").iterdir() if p.name.startswith("gen-")]
    assert report["images"] == {"train": 6 + sum(m["images"] for m in made.values()), "val": 6}
    for label in (out / "labels" / "train").glob("gen-*.txt"):
        for line in label.read_text().splitlines():
            cls, *xywh = line.split()
            assert cls == "0" and all(0 <= float(v) <= 1 for v in xywh)


class BrightBox:
    """Finds the one white rectangle in a synthetic image: an honest oracle for the close-ups."""

    def detect(self, image):
        ys, xs = np.nonzero(image[..., 0] > 250)
        if not len(xs):
            return np.zeros((0, 4)), np.zeros(0)
        return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float), np.array([0.9])


class Nothing:
    def detect(self, image):
        return np.zeros((0, 4)), np.zeros(0)


def synthetic_faces(tmp_path, n=4):
    items = []
    for i in range(n):
        image = np.full((600, 800, 3), 60, np.uint8)
        x, y = 100 + 60 * i, 120 + 20 * i
        image[y:y + 110, x:x + 90] = 255
        path = fixtures.write_image(tmp_path / f"{i}.png", image)
        items.append(GroundTruth(path, np.array([[x, y, x + 90, y + 110]], float), f"ev{i % 2}"))
    return items


def test_closeup_check_counts_found_and_missed_faces(tmp_path):
    items = synthetic_faces(tmp_path)
    crops = list(closeup_items(items))
    assert len(crops) == 4
    for crop, target, face in crops:
        h = crop.image.shape[0]
        fh = crop.boxes[target][3] - crop.boxes[target][1]
        assert 0.29 <= fh / h <= 0.91
        source = next(item for item in items if item.path == crop.path).boxes[face]
        assert fh == pytest.approx(source[3] - source[1], rel=0.02)  # the face it was made for
    assert closeup_check(BrightBox(), items, 0.5, progress=False)["found_share"] == 1.0
    missed = closeup_check(Nothing(), items, 0.5, progress=False)
    assert missed["found"] == 0 and missed["images_with_no_detection"] == 4


def test_evaluate_reports_each_event_and_their_mean(tmp_path):
    items = synthetic_faces(tmp_path)
    items[1].boxes = np.array([[0, 0, 50, 50]], float)  # ev1's first image: the detector misses it
    result = evaluate(BrightBox(), iter(items), progress=False)
    assert set(result["events"]) == {"ev0", "ev1"}
    assert result["events"]["ev0"]["AP50"] == 1.0
    # ev1: a false positive ranked first (equal scores keep image order), then its one hit
    assert result["events"]["ev1"]["AP50"] == pytest.approx(0.5 * 0.5)
    assert result["mean_event_AP50"] == pytest.approx((1.0 + 0.25) / 2)


def _astronaut_wider(root: Path) -> Path:
    """A one-image WIDER FACE val root: the bundled astronaut photo with its face annotated."""
    photo = cv2.imread(str(Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"))
    fixtures.write_image(root / "WIDER_val" / "images" / "3--Riot" / "3_a.jpg", photo)
    # the astronaut's face, by hand: x 165-262, y 66-195 in the 512x512 example
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(
        "3--Riot/3_a.jpg\n1\n165 66 97 129 0 0 0 0 0 0\n")
    return root


def test_fd_eval_compares_models_on_the_same_images(tmp_path):
    if not YUNET.is_file():
        pytest.skip(f"YuNet peer not found at {YUNET}")
    root = _astronaut_wider(tmp_path / "w")
    out = tmp_path / "cmp.json"
    result = invoke(eval_cmd, ["--model", f"yunet:{YUNET}", "--model", "haar",
                               "--model", "yunet:/nowhere/yunet.onnx", "--data", root,
                               "--json", out, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "YuNet model /nowhere/yunet.onnx not found" in result.output
    models = json.loads(out.read_text())["models"]
    assert set(models) == {"yunet", "haar"}
    assert models["yunet"]["AP50"] == 1.0 and models["yunet"]["closeups"]["found_share"] == 1.0
    assert "side by side" in result.output


def test_fd_eval_keeps_models_that_share_a_file_name(tmp_path):
    # every ultralytics run writes best.pt: comparing two runs must not overwrite one with the other
    if not YUNET.is_file():
        pytest.skip(f"YuNet peer not found at {YUNET}")
    root = _astronaut_wider(tmp_path / "w")
    specs = []
    for run in ("run_a", "run_b"):
        (tmp_path / run).mkdir()
        shutil.copyfile(YUNET, tmp_path / run / "yunet.onnx")
        specs += ["--model", f"yunet:{tmp_path / run / 'yunet.onnx'}"]
    out = tmp_path / "cmp.json"
    result = invoke(eval_cmd, [*specs, "--model", "haar", "--model", "haar", "--data", root,
                               "--json", out, "--no-progress", "--no-closeups"])
    assert result.exit_code == 0, result.output
    models = json.loads(out.read_text())["models"]
    assert list(models) == [f"yunet:{tmp_path / 'run_a' / 'yunet.onnx'}",
                            f"yunet:{tmp_path / 'run_b' / 'yunet.onnx'}", "haar", "haar#2"]
    assert models["haar"]["AP50"] == models["haar#2"]["AP50"]


def test_distinct_labels_only_lengthen_names_that_collide():
    assert distinct_labels(["best", "yunet", "best"], ["a/best.pt", "yunet:y.onnx", "b/best.pt"]
                           ) == ["a/best.pt", "yunet", "b/best.pt"]
    assert distinct_labels(["best", "best"], ["a/best.pt", "a/best.pt"]) == ["a/best.pt",
                                                                             "a/best.pt#2"]


def test_yunet_needs_its_file():
    from fd.predict import make_detector

    with pytest.raises(FdError, match="YuNet model"):
        make_detector("yunet", Path("/nowhere.onnx"))


def test_train_overrides_are_typed():
    assert _overrides(("warmup_epochs=0.5", "mosaic=0", "optimizer=SGD", "cos_lr=true")) == {
        "warmup_epochs": 0.5, "mosaic": 0, "optimizer": "SGD", "cos_lr": True}
    with pytest.raises(FdError, match="KEY=VALUE"):
        _overrides(("nonsense",))


def test_fd_eval_counts_annotated_images_missing_on_disk(tmp_path):
    """fd-eval reads a plain WIDER FACE val folder as fd-prep does and says what it skipped."""
    root = tmp_path / "w"
    fixtures.widerface_tree(root, "val", [
        ("7--Cheering/7_a.jpg", ["1", "20 30 60 70 0 0 0 0 0 0"], True),
        ("7--Cheering/7_b.jpg", ["1", "20 30 60 70 0 0 0 0 0 0"], False),
        ("0--Parade/0_c.jpg", ["1", "20 30 60 70 0 0 0 0 0 0"], True)], size=(240, 200))
    result = invoke(eval_cmd, ["--model", "haar", "--data", root, "--json", tmp_path / "e.json",
                               "--no-progress", "--no-closeups"])
    assert result.exit_code == 0, result.output
    assert "1 missing image on disk" in result.output and "1 excluded event" in result.output
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["images"] == 1
    assert saved["skipped"]["by_reason"] == {"missing image on disk": 1, "excluded event": 1}


def test_widerface_flags_turned_covered_and_blurred_faces_as_hard(tmp_path):
    from fd.convert.widerface import read_widerface
    from fer.readers.base import SkipLog

    # x y w h blur expression illumination invalid occlusion pose
    body = ["5", "10 10 30 30 0 0 0 0 0 0", "50 10 30 30 0 0 0 0 0 1", "90 10 30 30 0 0 0 0 2 0",
            "10 60 30 30 2 0 0 0 1 0", "50 60 30 30 1 1 1 0 1 0"]
    root = fixtures.widerface_tree(tmp_path / "w", "train", [("e/a.jpg", body, True)])
    (record,) = read_widerface(root, "train", SkipLog())
    assert record.hard == {1, 2, 3}  # boxes 0 and 4: typical pose, at most partly covered
    assert record.hard_faces() == [1, 2, 3]


def test_hard_closeups_are_made_only_around_hard_faces(tmp_path):
    root = tmp_path / "w"
    # even images: a plain 80 px face and a turned 100 px one (pose 1); odd: both plain
    records = [(f"e0/{i}.jpg", ["2", "20 30 70 80 0 0 0 0 0 0",
                                f"200 60 90 100 0 0 0 0 0 {1 - i % 2}"], True) for i in range(8)]
    fixtures.widerface_tree(root, "train", records, size=(320, 240))
    out = tmp_path / "faces"
    result = invoke(prep_cmd, ["--widerface", root, "--val-fraction", 0, "--hard-closeups", 1,
                               "--out", out, "--no-progress"])
    assert result.exit_code == 0, result.output
    made = json.loads((out / "prep_report.json").read_text())["generated"]
    assert made["closeup_hard"]["images"] == 4 and made["closeup"]["images"] == 0
    for label in (out / "labels" / "train").glob("gen-closeup_hard__*.txt"):
        assert int(label.stem.rsplit("_", 1)[-1]) % 2 == 0  # only images with a turned face
        height = cv2.imread(str(out / "images" / "train" / f"{label.stem}.jpg")).shape[0]
        heights = np.loadtxt(label, ndmin=2)[:, 4] * height
        # framed on the turned face: it is whole in the crop and fills 30-90% of its height
        turned = heights[np.abs(heights - 100) < 2]
        assert len(turned) == 1 and 0.29 <= 100 / height <= 0.91
    bad = invoke(prep_cmd, ["--widerface", root, "--hard-closeups", 2, "--out", tmp_path / "x"])
    assert bad.exit_code != 0 and "--hard-closeups" in bad.output
