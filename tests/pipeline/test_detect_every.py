"""`--detect-every N`: the detector runs on every Nth frame, the tracker carries the boxes between."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from fd.boxes import iou
from fer.labels import LABELS
from pipeline.records import Face
from pipeline.sources import Frame
from pipeline.tracker import IouTracker
from tests import fixtures, models

PATCH_FACE = np.array([37, 37, 130, 130])  # the face inside fixtures.face_patch(), xyxy


def moving_frames(count: int, step: int = 6) -> tuple[list[Frame], list[np.ndarray]]:
    """Two real faces moving in opposite directions across a 640x480 frame, with their boxes."""
    patch = fixtures.face_patch()
    ph, pw = patch.shape[:2]
    frames, truth = [], []
    for i in range(count):
        image = np.full((480, 640, 3), 90, np.uint8)
        spots = [(20 + step * i, 40), (440 - step * i, 280)]
        for x, y in spots:
            image[y:y + ph, x:x + pw] = patch
        frames.append(Frame(image, "moving", i, i / 30))
        truth.append(np.array([PATCH_FACE + [x, y, x, y] for x, y in spots], np.float64))
    return frames, truth


class CountingDetector:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def detect(self, image):
        self.calls += 1
        return self.inner.detect(image)


@pytest.fixture(scope="module")
def pipe():
    pipe = models.shipped_pipeline()
    pipe.detector = CountingDetector(pipe.detector)
    return pipe


def test_ids_stay_stable_and_boxes_follow_the_faces_across_skipped_frames(pipe):
    frames, truth = moving_frames(13)
    pipe.detector.calls = 0
    results = [r for _, r in pipe.analyze_stream(frames, IouTracker(), detect_every=4)]
    assert pipe.detector.calls == 4  # frames 0, 4, 8, 12
    first = {f.id: np.array(f.box) for f in results[0].faces}
    assert len(first) == 2
    for result, boxes in zip(results, truth, strict=True):
        assert len(result.faces) == 2, f"frame {result.frame}: {len(result.faces)} faces"
        for face in result.faces:
            assert face.id in first  # no new id on any frame, detected or carried
            assert face.probabilities  # carried faces are classified too
        # each id keeps to its own face: the one that started top-left stays the top one
        by_id = {f.id: np.array(f.box)[None] for f in result.faces}
        for fid, start in first.items():
            which = int(np.argmin(np.abs(truth[0][:, 1] - start[1])))
            overlaps = iou(by_id[fid], boxes)[0]
            assert overlaps.argmax() == which and overlaps[which] > 0.5, f"frame {result.frame}"


def test_detect_every_one_detects_every_frame(pipe):
    frames, _ = moving_frames(5)
    pipe.detector.calls = 0
    list(pipe.analyze_stream(frames, IouTracker()))
    assert pipe.detector.calls == 5


def test_carry_moves_boxes_by_the_measured_velocity():
    tracker = IouTracker(smoothing=0)
    probs = dict.fromkeys(LABELS, 1 / 7)
    tracker.update([Face((10, 10, 60, 60), 0.9, dict(probs))], LABELS)
    for _ in range(2):
        carried = [Face(box, score, dict(probs), fid) for fid, box, score in tracker.carry()]
        assert [f.box for f in carried] == [(10, 10, 60, 60)]  # no velocity known yet
        tracker.carried(carried, LABELS)
    moved = [Face((25, 10, 75, 60), 0.8, dict(probs))]  # 15 px in 3 frames
    tracker.update(moved, LABELS)
    assert moved[0].id == 1
    (fid, box, score), = tracker.carry()
    assert fid == 1 and score == 0.8
    np.testing.assert_allclose(box, (30, 10, 80, 60))


def test_a_box_that_only_jitters_is_held_still():
    tracker = IouTracker(smoothing=0)
    tracker.update([Face((100, 100, 200, 200), 0.9, {})], LABELS)
    for _ in range(2):
        tracker.carried([Face(b, s, {}, i) for i, b, s in tracker.carry()], LABELS)
    # 1.5 px a frame on a 100 px face (1.5%): the detector's jitter, not motion
    tracker.update([Face((104.5, 98, 204.5, 199), 0.9, {})], LABELS)
    (_, box, _), = tracker.carry()
    assert box == (104.5, 98, 204.5, 199)
    tracker.carried([], LABELS)
    tracker = IouTracker(smoothing=0)
    tracker.update([Face((100, 100, 200, 200), 0.9, {})], LABELS)
    for _ in range(2):
        tracker.carried([Face(b, s, {}, i) for i, b, s in tracker.carry()], LABELS)
    tracker.update([Face((107.5, 100, 207.5, 200), 0.9, {})], LABELS)  # 2.5% a frame: motion
    (_, box, _), = tracker.carry()
    np.testing.assert_allclose(box, (110, 100, 210, 200))


def test_a_face_gone_at_the_detection_or_carried_out_of_the_frame_is_not_carried():
    tracker = IouTracker()
    tracker.update([Face((10, 10, 60, 60), 0.9, {})], LABELS)
    tracker.update([], LABELS)
    assert tracker.carry() == []
    tracker = IouTracker()
    tracker.update([Face((10, 10, 60, 60), 0.9, {})], LABELS)
    assert len(tracker.carry()) == 1
    tracker.carried([], LABELS)  # the pipeline dropped it (clipped to nothing at the edge)
    assert tracker.carry() == []


def test_detect_every_zero_is_refused_before_any_work(tmp_path):
    from pipeline.cli import main

    result = CliRunner().invoke(main, [str(fixtures.astronaut_path()), "--detect-every", "0"])
    assert result.exit_code == 2 and "--detect-every" in result.output
