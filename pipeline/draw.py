"""Boxes and labels drawn legibly at any image size."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.records import Face

#: BGR colour per emotion (colour-blind-friendly Okabe-Ito palette).
COLOURS = {
    "angry": (0, 94, 213), "disgust": (115, 158, 0), "fear": (167, 121, 204),
    "happy": (66, 228, 240), "sad": (178, 114, 0), "surprise": (0, 159, 230),
    "neutral": (200, 200, 200), "contempt": (233, 180, 86),
}


def draw_faces(image: np.ndarray, faces: list[Face], fps: float | None = None) -> np.ndarray:
    """A copy of `image` with each face's box, top emotion and probability."""
    out = image.copy()
    h, w = out.shape[:2]
    unit = max(h, w) / 640.0
    thick = max(1, round(2 * unit))
    font_scale = max(0.4, 0.55 * unit)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        emotion = face.emotion or "face"
        colour = COLOURS.get(emotion, (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        text = emotion if not face.probabilities else f"{emotion} {face.probabilities[emotion]:.2f}"
        if face.id is not None:
            text = f"#{face.id} {text}"
        (tw, th), base = cv2.getTextSize(text, font, font_scale, max(1, thick // 2))
        ty = y1 - base - 2 if y1 - th - base - 4 >= 0 else y2 + th + 2
        cv2.rectangle(out, (x1, ty - th - 2), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(out, text, (x1 + 2, ty), font, font_scale, (0, 0, 0), max(1, thick // 2),
                    cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:.1f} fps", (8, round(24 * unit) + 4), font, font_scale,
                    (255, 255, 255), max(1, thick // 2) + 1, cv2.LINE_AA)
    return out
