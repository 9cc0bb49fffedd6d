"""The records every sink shares, so JSON, drawings, timelines and summaries cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Written into every JSON record: what `probabilities` are.
PROBABILITY_KIND = "softmax"


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the original frame
    score: float | None  # detector confidence; None for detectors that give none (Haar, whole image)
    probabilities: dict[str, float] = field(default_factory=dict)  # in the model's label order
    id: int | None = None  # stable across frames of a video/camera; None for photos
    #: shorter side under --min-face: boxed and reported, but not classified, because a face that
    #: small carries no expression the model can read (bench/min_face_accuracy.py)
    too_small: bool = False

    @property
    def emotion(self) -> str | None:
        return max(self.probabilities, key=self.probabilities.get) if self.probabilities else None

    def to_json(self) -> dict[str, Any]:
        probabilities = {k: round(float(v), 5) for k, v in self.probabilities.items()}
        return {"id": self.id, "box": [round(float(v), 1) for v in self.box],
                "score": None if self.score is None else round(float(self.score), 4),
                "emotion": self.emotion, "probabilities": probabilities or None,
                "too_small": self.too_small}


@dataclass
class FrameResult:
    source: str
    frame: int | None  # index in a video/camera stream; None for a photo
    width: int
    height: int
    faces: list[Face]
    time: float | None = None  # seconds into the stream, when known
    timings: dict[str, float] = field(default_factory=dict)  # per-stage milliseconds

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "frame": self.frame, "width": self.width,
                "height": self.height, "probability_kind": PROBABILITY_KIND,
                "faces": [f.to_json() for f in self.faces]}
