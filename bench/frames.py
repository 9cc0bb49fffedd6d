"""Real frames for the speed benchmarks, the same for every pipeline measured.

- `wider_photos`: WIDER FACE training photos holding 1-3 valid faces, resized to 640x480 (the
  frame size of a webcam), as the issue's speed targets are stated.
- `moving_video`: a camera pan and zoom over one real WIDER FACE photo with three faces. The
  shared data holds no video, and a pan over a real photo moves real faces across the frame at a
  known, repeatable speed.
Both need `../shared/data` (or FER_SHARED_DATA) and return [] when it is absent.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAME = (640, 480)  # width, height
#: a 1024x721 photo with three faces of about 135 px, used as the scene the camera moves over
PAN_PHOTO = "1--Handshaking/1_Handshaking_Handshaking_1_404.jpg"


def shared_data() -> Path:
    return Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def wider_photos(count: int = 197, root: Path | None = None) -> list[np.ndarray]:
    """`count` photos with 1-3 faces, spread evenly over the sorted list of all such photos."""
    import sys

    sys.path.insert(0, str(ROOT))
    from fd.convert.widerface import read_widerface
    from fer.readers.base import SkipLog

    root = (root or shared_data()) / "widerface"
    if not (root / "wider_face_split").is_dir():
        return []
    paths = sorted(r.path for r in read_widerface(root, "train", SkipLog()) if 1 <= len(r.boxes) <= 3)
    if not paths or count < 1:
        return []
    step = len(paths) / min(count, len(paths))
    chosen = [paths[int(i * step)] for i in range(min(count, len(paths)))]
    return [cv2.resize(cv2.imread(str(p)), FRAME, interpolation=cv2.INTER_AREA) for p in chosen]


def moving_video(frames: int = 150, root: Path | None = None) -> list[np.ndarray]:
    """640x480 frames of a smooth pan (left-right and up-down) with a slow zoom, 2 s of motion
    per cycle at 30 fps: faces move up to ~12 px a frame, as in a hand-held phone video."""
    path = (root or shared_data()) / "widerface" / "WIDER_train" / "images" / PAN_PHOTO
    scene = cv2.imread(str(path))
    if scene is None:
        return []
    h, w = scene.shape[:2]
    out = []
    for i in range(frames):
        t = 2 * math.pi * i / 60
        win_w = w * (0.72 + 0.12 * math.sin(t / 2))  # zoom in and out
        win_h = win_w * FRAME[1] / FRAME[0]
        cx = w / 2 + (w - win_w) / 2 * math.sin(t)
        cy = h / 2 + (h - win_h) / 2 * math.sin(t * 0.5 + 1.0)
        x0, y0 = cx - win_w / 2, cy - win_h / 2
        scale = FRAME[0] / win_w
        affine = np.float32([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
        out.append(cv2.warpAffine(scene, affine, FRAME, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    return out
