"""Faces too small to read (issue 12): under --min-face pixels a face is boxed and reported, with no
emotion and a flag saying why, in the JSON, the human line, the drawing, the tracker and the
timeline."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer.labels import LABELS
from pipeline.cli import main
from pipeline.config import MIN_FACE, PipelineConfig
from pipeline.records import Face, FrameResult
from pipeline.sinks import Timeline
from pipeline.tracker import IouTracker
from tests import fixtures


def detect(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def small_astronaut(tmp_path, side: int) -> str:
    """The example photo shrunk to side x side: at 128 px her face is about 22 x 30 pixels."""
    path = tmp_path / f"astronaut_{side}.png"
    image = cv2.imread(str(fixtures.astronaut_path()))
    cv2.imwrite(str(path), cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))
    return str(path)


def test_the_default_comes_from_the_measurement():
    assert PipelineConfig().min_face == MIN_FACE == 24  # bench/min_face_accuracy.py, README


def test_a_small_face_is_boxed_and_flagged_not_guessed(tmp_path):
    photo = small_astronaut(tmp_path, 128)
    result = detect(photo, "--json", "-")
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (face,) = record["faces"]
    assert face["emotion"] is None and face["probabilities"] is None and face["too_small"] is True
    x1, y1, x2, y2 = face["box"]
    assert min(x2 - x1, y2 - y1) < MIN_FACE and face["score"] > 0.3
    assert "1 face: too small to read at [" in result.stderr + result.stdout

    read_all = detect(photo, "--json", "-", "--min-face", 0)
    (record,) = [json.loads(line) for line in read_all.stdout.splitlines() if line.startswith("{")]
    (face,) = record["faces"]
    assert face["too_small"] is False and list(face["probabilities"]) == list(LABELS)
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)


def test_a_large_enough_face_is_read_and_flagged_false(tmp_path):
    result = detect(small_astronaut(tmp_path, 160), "--json", "-")
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (face,) = record["faces"]
    assert face["too_small"] is False and face["emotion"] == "happy"


def test_min_face_from_a_config_file_and_its_range(tmp_path):
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), cv2.resize(fixtures.face_patch(), (40, 40)))
    config = tmp_path / "p.yaml"
    config.write_text("min_face: 50\n")
    result = detect(crop, "--whole-image", "--config", config, "--json", "-")
    assert json.loads(result.stdout.splitlines()[0])["faces"][0]["too_small"] is True
    flag = detect(crop, "--whole-image", "--config", config, "--min-face", 30, "--json", "-")
    assert json.loads(flag.stdout.splitlines()[0])["faces"][0]["too_small"] is False  # flag wins
    refused = detect(crop, "--min-face", -1)
    assert refused.exit_code == 2 and "Invalid value for '--min-face'" in refused.stderr


def test_the_drawing_marks_a_small_face_without_an_emotion(tmp_path):
    out = tmp_path / "out"
    photo = small_astronaut(tmp_path, 128)
    assert detect(photo, "--out", out).exit_code == 0
    drawn = cv2.imread(str(out / "astronaut_128.png"))
    original = cv2.imread(photo)
    assert drawn.shape == original.shape and (drawn != original).any()


def face(x: float, probs: dict | None) -> Face:
    return Face(box=(x, 10, x + 50, 60), score=0.9, probabilities=dict(probs or {}),
                too_small=probs is None)


def test_tracking_and_timeline_across_frames_where_the_face_is_too_small(tmp_path):
    happy = {k: (0.9 if k == "happy" else 0.1 / 6) for k in LABELS}
    sad = {k: (0.9 if k == "sad" else 0.1 / 6) for k in LABELS}
    tracker, timeline = IouTracker(smoothing=0.6), Timeline("clip.mp4", LABELS, fps=10)
    for i, probs in enumerate([None, happy, None, sad]):
        faces = [face(10 + i, probs)]
        tracker.update(faces, LABELS)
        timeline.add(FrameResult("clip.mp4", i, 100, 100, faces, time=i / 10))
        assert faces[0].id == 1  # one track throughout
        assert (faces[0].emotion is None) == (probs is None)
    points = timeline.tracks[1]
    # frame 3 is smoothed with frame 1, the last one read: the too-small frame 2 left it alone
    assert [p["emotion"] for p in points] == [None, "happy", None, "happy"]
    assert points[3]["probabilities"]["sad"] == pytest.approx(0.6 * 0.1 / 6 + 0.4 * 0.9, abs=1e-4)
    (row,) = csv.DictReader(io.StringIO(timeline.summary_csv()))
    assert row["frames"] == "4" and row["frames_read"] == "2" and row["dominant"] == "happy"
    assert float(row["mean_happy"]) == pytest.approx(np.mean([0.9, points[3]["probabilities"]["happy"]]),
                                                     abs=1e-4)
    saved = timeline.save(type("Files", (), {"timeline": tmp_path / "t.json",
                                             "summary": tmp_path / "s.csv",
                                             "plot": tmp_path / "p.png"})())
    assert all(p.stat().st_size for p in saved)
    assert json.loads((tmp_path / "t.json").read_text())["tracks"]["1"][0]["probabilities"] is None


def test_a_track_never_read_has_an_empty_summary():
    timeline = Timeline("cam", LABELS)
    faces = [face(10, None)]
    IouTracker().update(faces, LABELS)
    timeline.add(FrameResult("cam", 0, 100, 100, faces))
    (row,) = csv.DictReader(io.StringIO(timeline.summary_csv()))
    assert row["frames_read"] == "0" and row["dominant"] == "" and row["mean_happy"] == ""
