"""The shipped detector through ONNX Runtime: the rectangular letterbox lands boxes on the face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fd.boxes import iou
from fd.predict import STRIDE, YoloOnnxDetector, letterbox
from pipeline.models import default_face_model
from tests import fixtures

#: the astronaut's face in examples/astronaut.png (tests/fixtures.face_patch)
FACE = np.array([[177, 67, 270, 160]], np.float64)


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
