"""The loop: frame -> detect -> crop -> classify (one batch per frame) -> track -> records.

`FacePipeline` is the Python API (`from pipeline import FacePipeline`); the CLI is a thin layer
over it and the sinks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from fd.predict import make_detector
from fer.predict import Classifier, load_classifier
from fer.preprocess import crop_square, to_model_input
from pipeline.config import PipelineConfig
from pipeline.errors import InputError, PipelineError
from pipeline.models import default_face_model, default_fer_model
from pipeline.records import Face, FrameResult
from pipeline.sources import Frame, expand_inputs, read_image, read_video
from pipeline.tracker import IouTracker


class FacePipeline:
    """Boxes every face in a BGR image and classifies it; the same records for every caller."""

    def __init__(self, detector, classifier: Classifier, margin: float = 0.0,
                 tta: bool | None = None):
        self.detector, self.classifier = detector, classifier
        self.margin, self.tta = margin, tta
        self.labels = classifier.labels

    @classmethod
    def from_config(cls, cfg: PipelineConfig | None = None) -> FacePipeline:
        cfg = cfg or PipelineConfig()
        fer_model = cfg.fer_model or default_fer_model()
        if fer_model is None:
            raise PipelineError("no expression model: this install ships none; pass --fer-model "
                                "model.onnx|model.keras (from fer-train)")
        kind = cfg.detector
        face_model = cfg.fd_model or (default_face_model() if kind in ("auto", "yolo") else None)
        if kind == "auto":
            kind = "yolo" if face_model else "haar"
            if kind == "haar":
                print("fer-detect: no face model is installed yet; using OpenCV's Haar cascade "
                      "(--fd-model to give one)", file=sys.stderr)
        detector = make_detector(kind, Path(face_model) if face_model else None,
                                 cfg.imgsz, cfg.conf, cfg.iou, cfg.max_det)
        classifier = load_classifier(fer_model)
        return cls(detector, classifier, cfg.margin, cfg.tta)

    def analyze(self, image: np.ndarray, source: str = "<array>", frame: int | None = None,
                time_s: float | None = None, scale: float = 1.0) -> FrameResult:
        """All faces of one BGR uint8 image. Boxes are in original pixels (÷ `scale`)."""
        t0 = time.perf_counter()
        boxes, scores = self.detector.detect(image)
        t1 = time.perf_counter()
        keep = [i for i, b in enumerate(boxes) if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        crops = [to_model_input(crop_square(image, (b[0], b[1], b[2] - b[0], b[3] - b[1]),
                                            self.margin),
                                self.classifier.size, self.classifier.channels)
                 for b in boxes[keep]]
        t2 = time.perf_counter()
        probs = self.classifier.predict(np.stack(crops), tta_flip=self.tta) if crops else []
        t3 = time.perf_counter()
        faces = [Face(box=tuple(float(v) / scale for v in boxes[i]),
                      score=None if scores is None else float(scores[i]),
                      probabilities=dict(zip(self.labels, p.tolist(), strict=True)))
                 for i, p in zip(keep, probs, strict=True)]
        h, w = image.shape[:2]
        return FrameResult(source=source, frame=frame, width=round(w / scale),
                           height=round(h / scale), faces=faces, time=time_s,
                           timings={"detect": (t1 - t0) * 1e3, "crop": (t2 - t1) * 1e3,
                                    "classify": (t3 - t2) * 1e3})

    def analyze_frame(self, frame: Frame) -> FrameResult:
        return self.analyze(frame.image, frame.source, frame.index, frame.time, frame.scale)

    def analyze_stream(self, frames: Iterable[Frame], tracker: IouTracker | None = None
                       ) -> Iterator[tuple[Frame, FrameResult]]:
        """Video or camera frames with stable face ids and smoothed emotions."""
        tracker = tracker or IouTracker()
        for frame in frames:
            result = self.analyze_frame(frame)
            tracker.update(result.faces, self.labels)
            yield frame, result


def analyze_paths(paths: list[str], cfg: PipelineConfig | None = None) -> list[FrameResult]:
    """Photos, folders and videos -> records (the CLI's JSON, as Python objects).
    Unusable inputs raise `InputError`; use the CLI to skip and report them instead."""
    cfg = cfg or PipelineConfig()
    pipe = FacePipeline.from_config(cfg)
    results = []
    for kind, path in expand_inputs(paths):
        if kind.startswith("error:"):
            raise InputError(path, kind.removeprefix("error:"))
        if kind == "image":
            results.append(pipe.analyze_frame(read_image(path)))
        else:
            tracker = IouTracker(cfg.track_iou, cfg.max_missed, cfg.smoothing)
            results.extend(r for _, r in pipe.analyze_stream(read_video(path), tracker))
    return results
