"""What real photos do to a face crop, as fixed corruptions of model-sized crops.

FER2013's crops are aligned, clean 48x48 faces; the pipeline's are cut by a detector out of
photos and video: small faces blown up to 48 px, JPEG blocks, motion and focus blur, dim rooms.
`fer-eval --degrade` measures a model on each corruption at one fixed strength (deterministic,
so two models are compared on the very same pixels); training samples random strengths of the
same kinds (`fer.augment`, `augment.degrade_p`).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from fer.errors import FerError


def _per_image(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Apply a one-crop function (H x W or H x W x C uint8) to an N x H x W x C batch."""

    def batch(images: np.ndarray) -> np.ndarray:
        out = np.empty_like(images)
        for i, image in enumerate(images):
            result = fn(image)
            out[i] = result.reshape(image.shape)
        return out

    return batch


def low_resolution(image: np.ndarray, side: int = 16) -> np.ndarray:
    """A face about `side` px high in the photo, upscaled to the model's size as the pipeline
    does (the detector's smallest readable faces are ~24 px: `--min-face`)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(image: np.ndarray, quality: int = 25) -> np.ndarray:
    """Heavy JPEG compression, as in web photos and video frames."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FerError("OpenCV could not JPEG-encode a face crop")
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 or image.shape[2] == 1 else cv2.IMREAD_COLOR
    return cv2.imdecode(data, flag)


def blur(image: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """Out of focus or moving: a Gaussian blur of `sigma` px at 48 px."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def low_light(image: np.ndarray, gain: float = 0.45, gamma: float = 1.6,
              noise: float = 4.0) -> np.ndarray:
    """A dim room: darker, lower contrast in the shadows, with sensor noise (fixed seed)."""
    x = (image.astype(np.float32) / 255.0) ** gamma * gain * 255.0
    rng = np.random.default_rng(int(image.sum()) % (2**32))
    x += rng.normal(0.0, noise, image.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


#: name -> batch function; the names `fer-eval --degrade` takes
CORRUPTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lowres": _per_image(low_resolution),
    "jpeg": _per_image(jpeg),
    "blur": _per_image(blur),
    "dark": _per_image(low_light),
}


def parse_corruptions(text: str) -> tuple[str, ...]:
    """'lowres,jpeg' or 'all' -> names, refusing unknown ones in one line."""
    names = tuple(CORRUPTIONS) if text.strip() == "all" else tuple(
        n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise FerError(f"--degrade {text!r}: use 'all' or some of {', '.join(CORRUPTIONS)}")
    return names
