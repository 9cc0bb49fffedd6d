"""Decode, crop and resize faces the same way for preparation, evaluation and the pipeline.

Plain numpy/OpenCV functions with no framework import, so the inference path stays light.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageError(ValueError):
    """An image that cannot be used; the message is the skip reason."""


def decode_image(path: Path, gray: bool = False) -> np.ndarray:
    """Decode to uint8 BGR (or gray); EXIF orientation is applied by OpenCV's decoder."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as e:
        raise ImageError("missing image") from e
    except OSError as e:
        raise ImageError("unreadable image") from e
    if data.size == 0:
        raise ImageError("empty image file")
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(data, flag)
    except cv2.error as e:
        raise ImageError("unreadable image") from e
    if image is None or image.size == 0:
        raise ImageError("unreadable image")
    return image


def square_box(box: tuple[float, float, float, float], margin: float = 0.0) -> tuple[int, int, int]:
    """A square (x, y, side) centred on an x, y, w, h box, grown by `margin` of the side each way."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(1, int(round(side)))


def crop_square(image: np.ndarray, box: tuple[float, float, float, float],
                margin: float = 0.0) -> np.ndarray:
    """Square crop around a face box; parts outside the image are filled by edge replication."""
    x, y, side = square_box(box, margin)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 <= x0 or y1 <= y0:
        raise ImageError("box outside image")
    crop = image[y0:y1, x0:x1]
    pads = (y0 - y, y + side - y1, x0 - x, x + side - x1)
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    return crop


def to_model_input(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 HxWxC in the model's colour convention (gray, or RGB when channels == 3)."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
    height, width = size
    shrinking = image.shape[0] > height or image.shape[1] > width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=interp)
    return image.reshape(height, width, channels)
