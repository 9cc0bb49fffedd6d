import numpy as np
import pytest

from fer.labels import LABELS
from pipeline.records import Face
from pipeline.tracker import IouTracker, iou_matrix


def face(x, happy):
    probs = dict.fromkeys(LABELS, (1 - happy) / 6)
    probs["happy"] = happy
    return Face(box=(x, 10, x + 50, 60), score=0.9, probabilities=probs)


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0])


def test_moving_faces_keep_their_ids():
    tracker = IouTracker(smoothing=0)
    ids = []
    for step in range(10):
        faces = [face(10 + 3 * step, 0.9), face(200 + 3 * step, 0.9)]
        tracker.update(faces, LABELS)
        ids.append([f.id for f in faces])
    assert all(row == [1, 2] for row in ids)


def test_order_of_detections_does_not_swap_ids():
    tracker = IouTracker()
    tracker.update([face(10, 0.5), face(200, 0.5)], LABELS)
    swapped = [face(202, 0.5), face(12, 0.5)]
    tracker.update(swapped, LABELS)
    assert [f.id for f in swapped] == [2, 1]


def test_new_face_gets_a_new_id_and_lost_faces_expire():
    tracker = IouTracker(max_missed=2)
    tracker.update([face(10, 0.5)], LABELS)
    for _ in range(3):
        tracker.update([], LABELS)
    again = [face(10, 0.5)]
    tracker.update(again, LABELS)
    assert again[0].id == 2  # expired after 3 missed frames > max_missed


def test_brief_dropout_keeps_the_id():
    tracker = IouTracker(max_missed=5)
    tracker.update([face(10, 0.5)], LABELS)
    tracker.update([], LABELS)
    back = [face(11, 0.5)]
    tracker.update(back, LABELS)
    assert back[0].id == 1


def test_exponential_smoothing():
    tracker = IouTracker(smoothing=0.75)
    tracker.update([face(10, 0.2)], LABELS)
    second = [face(10, 1.0)]
    tracker.update(second, LABELS)
    assert second[0].probabilities["happy"] == pytest.approx(0.75 * 0.2 + 0.25 * 1.0)
    assert sum(second[0].probabilities.values()) == pytest.approx(1.0)
