"""fer-detect end to end through its CLI: photos, folders, videos, a fake camera, bad inputs."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer.labels import LABELS
from pipeline.cli import main
from tests import fixtures
from tests.conftest import ROOT, shared_path


def run(args, **kw):
    result = CliRunner().invoke(main, [str(a) for a in args], **kw)
    return result


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_photo_json_schema(fer_model, tmp_path):
    result = run([fixtures.astronaut_path(), "--detector", "haar", "--fer-model", fer_model,
                  "--json", "-"])
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert set(record) == {"source", "frame", "width", "height", "probability_kind", "faces"}
    assert (record["width"], record["height"], record["frame"]) == (512, 512, None)
    assert record["probability_kind"] == "softmax"
    (face,) = record["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < 200 and 40 < y1 < 100 and 240 < x2 < 300 and 130 < y2 < 190
    assert list(face["probabilities"]) == list(LABELS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["id"] is None and face["score"] is None  # Haar gives no confidence


def test_zoom_out_is_on_by_default_and_the_flag_turns_it_off(tmp_path):
    """A face filling a 624 px frame (the shipped models): boxed tightly with the zoom-out pass,
    loosely without it (tests/fd/test_predict.py has the detector-level twin)."""
    from fd.boxes import iou
    from pipeline.models import default_face_model

    if default_face_model() is None:
        pytest.skip("no packaged face model")
    image, face = fixtures.astronaut_closeup()
    path = tmp_path / "closeup.png"
    cv2.imwrite(str(path), image)
    fit = {}
    for flags in ([], ["--no-zoom-out"]):
        result = run([path, "--json", "-", *flags])
        assert result.exit_code == 0, result.output
        (record,) = json_lines(result.stdout)
        boxes = np.array([f["box"] for f in record["faces"]], np.float64).reshape(-1, 4)
        fit[" ".join(flags)] = iou(boxes, face).max() if len(boxes) else 0.0
    assert fit[""] > 0.85 > 0.75 > fit["--no-zoom-out"]


def test_human_summary_and_annotated_copy(fer_model, tmp_path):
    out = tmp_path / "out"
    result = run([fixtures.grace_hopper_path(), "--detector", "haar", "--fer-model", fer_model,
                  "--out", out])
    assert result.exit_code == 0, result.output
    assert "grace_hopper.jpg: 1 face:" in result.stdout
    drawn = cv2.imread(str(out / "grace_hopper.jpg"))
    original = cv2.imread(str(fixtures.grace_hopper_path()))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).sum() > 0


def test_yolo_onnx_and_pt_back_ends_run(fer_model, yolo_models, tmp_path):
    pt, onnx = yolo_models
    for model in (onnx, pt):
        result = run([fixtures.astronaut_path(), "--fd-model", model, "--fer-model", fer_model,
                      "--json", "-", "--conf", "0.0001"])
        assert result.exit_code == 0, result.output
        (record,) = json_lines(result.stdout)
        for f in record["faces"]:  # untrained weights: any boxes, but valid ones
            assert 0 <= f["box"][0] <= f["box"][2] <= 512 and 0 <= f["score"] <= 1


def test_whole_image_classifies_crops(fer_model, tmp_path):
    folder = tmp_path / "crops"
    for label in ("happy", "sad"):
        src = sorted(shared_path("fer2013", "publictest", label).glob("*.jpg"))[:2]
        for p in src:
            (folder / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, folder / label / p.name)
    result = run([folder, "--whole-image", "--fer-model", fer_model, "--json", "-"])
    records = json_lines(result.stdout)
    assert result.exit_code == 0 and len(records) == 4
    assert all(r["faces"][0]["box"] == [0, 0, 48, 48] for r in records)


def test_batch_with_bad_inputs_keeps_going(fer_model, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    out = tmp_path / "o.jsonl"
    result = run([tmp_path / "empty.jpg", fixtures.astronaut_path(), tmp_path / "missing.jpg",
                  tmp_path / "text.png", "--detector", "haar", "--fer-model", fer_model,
                  "--json", out])
    assert result.exit_code == 3
    assert "empty.jpg: empty file" in result.stderr
    assert "missing.jpg: not found" in result.stderr
    assert "text.png: not a readable image" in result.stderr
    assert "3 input(s) failed, 1 processed" in result.stderr
    assert len(json_lines(out.read_text())) == 1


def test_all_inputs_bad_is_exit_1(fer_model, tmp_path):
    result = run([tmp_path / "missing.jpg", "--detector", "haar", "--fer-model", fer_model])
    assert result.exit_code == 1


@pytest.mark.parametrize("args,match", [
    (["--fer-model", "nope.onnx", "--detector", "haar"], "FER model nope.onnx not found"),
    (["--fd-model", "nope.onnx"], "face model nope.onnx not found"),
    (["--fd-model", "x.tflite"], "unsupported type '.tflite'"),
])
def test_model_errors_are_one_line(fer_model, tmp_path, args, match):
    (tmp_path / "x.tflite").write_bytes(b"x")
    args = [a.replace("x.tflite", str(tmp_path / "x.tflite")) for a in args]
    if "--fer-model" not in args:
        args += ["--fer-model", str(fer_model)]
    result = run([fixtures.astronaut_path(), *args])
    assert result.exit_code == 1 and match in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_fixed_size_onnx_refuses_another_imgsz(fer_model, yolo_models):
    result = run([fixtures.astronaut_path(), "--fd-model", yolo_models[1], "--imgsz", 640,
                  "--fer-model", fer_model])
    assert result.exit_code == 1 and "exported at 160 px" in result.output


def test_fer_model_given_as_face_model(fer_model):
    result = run([fixtures.astronaut_path(), "--fd-model", fer_model, "--fer-model", fer_model])
    assert result.exit_code == 1 and "does not look like a YOLO detector" in result.output


def test_face_model_given_as_fer_model(fer_model, yolo_models):
    result = run([fixtures.astronaut_path(), "--detector", "haar", "--fer-model", yolo_models[1]])
    assert result.exit_code == 1 and "labels.json" in result.output


def test_video_tracks_timeline_and_annotated_video(fer_model, tmp_path):
    video = fixtures.video_with_faces(tmp_path / "clip.mp4", frames=8, faces=2)
    out = tmp_path / "out"
    result = run([video, "--detector", "haar", "--fer-model", fer_model, "--json", "-",
                  "--out", out])
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    assert [r["frame"] for r in records] == list(range(8))
    ids = [sorted(f["id"] for f in r["faces"]) for r in records]
    assert ids[0] == [1, 2] and all(row == [1, 2] for row in ids)  # stable across frames
    timeline = json.loads((out / "clip_timeline.json").read_text())
    assert set(timeline["tracks"]) == {"1", "2"} and len(timeline["tracks"]["1"]) == 8
    assert (out / "clip_timeline.png").stat().st_size > 5000
    assert (out / "clip_summary.csv").read_text().startswith("id,first_frame")
    cap = cv2.VideoCapture(str(out / "clip_fer.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8


def test_fake_camera_headless_with_summary(fer_model, tmp_path):
    video = fixtures.video_with_faces(tmp_path / "cam.mp4", frames=20)
    result = run(["--camera", video, "--no-show", "--max-frames", 5, "--detector", "haar",
                  "--fer-model", fer_model, "--json", tmp_path / "c.jsonl"])
    assert result.exit_code == 0, result.output
    assert len(json_lines((tmp_path / "c.jsonl").read_text())) == 5
    assert "5 frames" in result.stdout and "id,first_frame,last_frame" in result.stderr


def test_missing_camera(fer_model):
    result = run(["--camera", "97", "--no-show", "--detector", "haar", "--fer-model", fer_model])
    assert result.exit_code == 1 and "camera 97: cannot be opened" in result.output


def test_camera_window_without_display(fer_model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run(["--camera", "0", "--detector", "haar", "--fer-model", fer_model])
    assert result.exit_code == 1 and "--no-show" in result.output


def test_usage_errors():
    assert run([]).exit_code == 2
    assert run(["a.jpg", "--camera", "0"]).exit_code == 2


def test_photo_path_imports_neither_tensorflow_nor_torch(fer_model):
    code = ("import sys; from pipeline.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "heavy = [m for m in ('tensorflow', 'torch', 'keras', 'ultralytics') if m in sys.modules]\n"
            "print('HEAVY', heavy, code)")
    out = subprocess.run([sys.executable, "-c", code, str(fixtures.astronaut_path()), "--detector",
                          "haar", "--fer-model", str(fer_model)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ}, timeout=120)
    assert "HEAVY [] 0" in out.stdout, out.stdout + out.stderr


def test_pipeline_config_file_and_unknown_keys(fer_model, tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text(f"detector: haar\nfer_model: {fer_model}\nsmoothing: 0\n")
    assert run([fixtures.astronaut_path(), "--config", good]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("detecter: haar\n")
    result = run([fixtures.astronaut_path(), "--config", bad])
    assert result.exit_code == 2 and "unknown setting 'detecter'" in result.output


def test_python_api_returns_the_cli_records(fer_model, tmp_path):
    from pipeline import PipelineConfig, analyze_paths
    from pipeline.errors import InputError

    cfg = PipelineConfig(detector="haar", fer_model=str(fer_model))
    (api,) = [r.to_json() for r in analyze_paths([str(fixtures.astronaut_path())], cfg)]
    cli = json_lines(run([fixtures.astronaut_path(), "--detector", "haar", "--fer-model",
                          fer_model, "--json", "-"]).stdout)
    assert cli == [api]
    with pytest.raises(InputError, match="not found"):
        analyze_paths([str(tmp_path / "missing.jpg")], cfg)


def test_default_detector_falls_back_to_haar_until_a_face_model_ships(fer_model, monkeypatch):
    import pipeline.run

    monkeypatch.setattr(pipeline.run, "default_face_model", lambda: None)
    result = run([fixtures.astronaut_path(), "--fer-model", fer_model, "--json", "-"])
    assert result.exit_code == 0
    assert "using OpenCV's Haar cascade" in result.stderr
    assert len(json_lines(result.stdout)[0]["faces"]) == 1
    explicit = run([fixtures.astronaut_path(), "--detector", "yolo", "--fer-model", fer_model])
    assert explicit.exit_code == 1 and "no face model" in explicit.output


def test_default_detector_uses_an_installed_face_model(fer_model, yolo_models, monkeypatch):
    import pipeline.run

    monkeypatch.setattr(pipeline.run, "default_face_model", lambda: yolo_models[1])
    result = run([fixtures.astronaut_path(), "--fer-model", fer_model, "--json", "-",
                  "--conf", "0.0001"])
    assert result.exit_code == 0 and "Haar" not in result.stderr
    faces = json_lines(result.stdout)[0]["faces"]
    assert all(f["score"] is not None for f in faces)  # YOLO scores, unlike Haar's null
