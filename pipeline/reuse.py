"""A tracked face whose crop did not change is not classified again.

Between detections (`--detect-every`) a still face's carried box stays put, so its crop differs
from the last one classified only by sensor noise. Measured on a still 640x480 scene with
Gaussian noise of sigma 2 (a real WIDER photo, 3 faces, `--detect-every 3`): consecutive model
inputs of a face differ by a mean of 0.33 grey levels, and the smoothed probabilities by 0.002.
On a moving camera they differ by 2.3 (5th percentile) to 32 (95th) grey levels. The comparison
is with the last input actually classified, not the previous frame's, so a slow change (a smile
forming) adds up until it crosses the tolerance and the face is read again.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Mean absolute difference, in grey levels (0-255) of the model's input, under which a face's
#: crop counts as unchanged: three times the noise-only difference above, a third of the
#: smallest a moving camera gave.
REUSE_TOLERANCE = 1.0


#: Inputs are compared as THUMB x THUMB block means: each averages ~9 of a 48 px input's pixels,
#: which cuts sensor noise ~3x, while a mouth or brows that move still shift several blocks.
THUMB = 16


def thumbnail(model_input: np.ndarray) -> np.ndarray:
    """A face's model input (H x W x C uint8) as THUMB x THUMB block means, float32."""
    image = model_input.astype(np.float32)
    return cv2.resize(image, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


class CropMemory:
    """The last model input classified for each face id in one stream (as its `thumbnail`), with
    its probabilities."""

    def __init__(self, tolerance: float = REUSE_TOLERANCE):
        self.tolerance = tolerance
        self.seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def recall(self, face_id: int, model_input: np.ndarray) -> np.ndarray | None:
        """The probabilities read from this face's last classified input, if `model_input` is
        the same within the tolerance; otherwise None (classify it)."""
        last = self.seen.get(face_id)
        if last is None:
            return None
        return last[1] if np.abs(thumbnail(model_input) - last[0]).mean() < self.tolerance \
            else None

    def keep(self, face_id: int, model_input: np.ndarray, probabilities: np.ndarray) -> None:
        self.seen[face_id] = (thumbnail(model_input), probabilities)

    def forget_all_but(self, face_ids: set[int]) -> None:
        """Drop faces the tracker no longer follows, so a long stream's memory stays small."""
        for gone in self.seen.keys() - face_ids:
            del self.seen[gone]
