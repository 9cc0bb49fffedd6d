"""The shipped detector through ONNX Runtime: the rectangular letterbox lands boxes on the face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fd.boxes import iou
from fd.predict import (
    AUTO_MAX,
    AUTO_MIN,
    STRIDE,
    ZOOM_SCORE,
    YoloOnnxDetector,
    input_sizes,
    letterbox,
    merge_passes,
)
from pipeline.models import default_face_model
from tests import fixtures

FACE = fixtures.ASTRONAUT_FACE


@pytest.mark.parametrize("h, w", [(480, 640), (640, 480), (512, 512), (2, 5000), (333, 101)])
def test_rect_letterbox_pads_each_side_only_to_the_stride(h, w):
    image = np.zeros((h, w, 3), np.uint8)
    padded, ratio, (left, top) = letterbox(image, 640, STRIDE)
    assert padded.shape[0] % STRIDE == 0 and padded.shape[1] % STRIDE == 0
    assert max(padded.shape[:2]) == 640
    # never more than one stride of padding on the short side
    nh, nw = round(h * ratio), round(w * ratio)
    assert padded.shape[0] - max(1, nh) < STRIDE and padded.shape[1] - max(1, nw) < STRIDE
    square, _, _ = letterbox(image, 640)
    assert square.shape[:2] == (640, 640)


def test_a_640x480_frame_runs_as_640x480():
    padded, ratio, pad = letterbox(np.zeros((480, 640, 3), np.uint8), 640, STRIDE)
    assert padded.shape == (480, 640, 3) and ratio == 1.0 and pad == (0, 0)


@pytest.fixture(scope="module")
def detectors():
    model = default_face_model()
    if model is None:
        pytest.skip("no packaged face model")
    rect = YoloOnnxDetector(model, None, 0.35, 0.5, 100)
    square = YoloOnnxDetector(model, None, 0.35, 0.5, 100, rect=False)
    assert rect.stride == STRIDE and square.stride is None  # the shipped ONNX has dynamic axes
    return rect, square


def _shapes() -> dict[str, tuple[np.ndarray, tuple[int, int]]]:
    """The example photo as square, portrait (padded below) and landscape (padded both sides),
    with where the photo's top-left corner sits in each."""
    photo = cv2.imread(str(fixtures.astronaut_path()))
    return {
        "square": (photo, (0, 0)),
        "portrait": (cv2.copyMakeBorder(photo, 0, 400, 0, 0, cv2.BORDER_CONSTANT, value=(40, 40, 40)),
                     (0, 0)),
        "landscape": (cv2.copyMakeBorder(photo, 0, 0, 150, 250, cv2.BORDER_REPLICATE), (150, 0)),
        "tall strip": (cv2.copyMakeBorder(photo, 300, 700, 0, 0, cv2.BORDER_REFLECT), (0, 300)),
    }


@pytest.mark.parametrize("shape", ["square", "portrait", "landscape", "tall strip"])
def test_rect_boxes_land_on_the_face_like_the_square_path(detectors, shape):
    rect, square = detectors
    image, (dx, dy) = _shapes()[shape]
    face = FACE + [dx, dy, dx, dy]
    boxes, scores = rect.detect(image)
    ref, _ = square.detect(image)
    assert len(boxes) >= 1
    best = iou(boxes.astype(np.float64), face)[:, 0]
    assert best.max() > 0.6, f"no box on the face: {boxes}"
    on_face = boxes[best.argmax()][None].astype(np.float64)
    assert iou(on_face, ref.astype(np.float64)).max() > 0.9


@pytest.mark.parametrize("shape, imgsz, zoom_out, sizes", [
    ((480, 640), None, True, [640, 320]),     # a webcam frame: its own size, then half
    ((768, 1024), None, True, [1024, 512]),   # a WIDER photo is no longer shrunk to 640
    ((3024, 4032), None, True, [1280, 640]),  # a phone photo is, to AUTO_MAX
    ((90, 70), None, True, [160, 96]),        # a thumbnail: AUTO_MIN, and ZOOM_MIN for the half
    ((120, 90), 96, True, [96]),              # an explicit size at ZOOM_MIN: one pass
    ((500, 333), None, True, [512, 256]),     # rounded up to the stride
    ((768, 1024), 640, True, [640, 320]),     # an explicit size is the long side, as before
    ((768, 1024), None, False, [1024]),
])
def test_input_sizes(shape, imgsz, zoom_out, sizes):
    assert input_sizes(shape, imgsz, zoom_out) == sizes
    assert all(s % STRIDE == 0 and AUTO_MIN // 2 <= s <= AUTO_MAX for s in sizes)


def test_merge_passes_keeps_a_face_found_twice_once_with_its_best_score():
    face = np.array([[10, 10, 60, 60]], np.float32)
    other = np.array([[200, 200, 240, 240]], np.float32)
    faint = np.array([[300, 300, 340, 340]], np.float32)
    boxes, scores = merge_passes([(face, np.array([0.6], np.float32)),
                                  (np.concatenate([face + 2, other, faint]),
                                   np.array([0.95, 0.7, 0.4], np.float32))], 0.35, 0.5, 100)
    # the zoom-out pass's scores are weighted: 0.95 -> 0.665 beats 0.6; 0.4 -> 0.28 drops out
    assert sorted(scores.tolist()) == pytest.approx([0.7 * ZOOM_SCORE, 0.95 * ZOOM_SCORE])
    assert iou(boxes[scores.argmax()][None].astype(np.float64), face + 2.0)[0, 0] == 1.0


def test_zoom_out_pass_boxes_a_face_that_fills_the_frame():
    model = default_face_model()
    if model is None:
        pytest.skip("no packaged face model")
    image, face = fixtures.astronaut_closeup()
    one_pass = YoloOnnxDetector(model, None, 0.35, 0.5, 100, zoom_out=False)
    zoomed = YoloOnnxDetector(model, None, 0.35, 0.5, 100)

    def best(detector) -> float:
        boxes, _ = detector.detect(image)
        return float(iou(boxes.astype(np.float64), face).max()) if len(boxes) else 0.0

    # at the frame's own size the box is loose (it was 0.55); half size frames it as trained
    assert best(one_pass) < 0.75 < 0.85 < best(zoomed)
