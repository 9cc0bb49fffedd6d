"""The loop: frame -> detect -> crop -> classify (one batch per frame) -> track -> records.

`FacePipeline` is the Python API (`from pipeline import FacePipeline`); the CLI is a thin layer
over it and the sinks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fd.predict import make_detector
from fer.predict import Classifier, load_classifier
from fer.preprocess import crop_square, square_box, to_model_input
from pipeline.config import MIN_FACE, PipelineConfig, check_config
from pipeline.errors import InputError, PipelineError
from pipeline.models import default_face_model, default_fer_model
from pipeline.records import Face, FrameResult
from pipeline.reuse import REUSE_TOLERANCE, CropMemory
from pipeline.sources import Frame, expand_inputs, read_image, read_video
from pipeline.tracker import IouTracker

#: A face crop is shrunk to the model's ~48 px anyway; above this side it is shrunk before the
#: margin's padding is added, so a large --margin around a big face never allocates gigabytes.
MAX_CROP_SIDE = 1024


def face_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float,
              limit: int = MAX_CROP_SIDE) -> np.ndarray:
    """`crop_square(image, box, margin)` (x, y, w, h box), at most `limit` pixels a side."""
    x, y, side = square_box(box, margin)
    if side <= limit:
        return crop_square(image, box, margin)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 <= x0 or y1 <= y0:
        return crop_square(image, box, margin)  # raises its own "box outside image"
    f = limit / side
    part = cv2.resize(image[y0:y1, x0:x1], (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                      interpolation=cv2.INTER_AREA)
    top, left = round((y0 - y) * f), round((x0 - x) * f)
    bottom, right = max(0, limit - top - part.shape[0]), max(0, limit - left - part.shape[1])
    return cv2.copyMakeBorder(part, top, bottom, left, right, borderType=cv2.BORDER_REPLICATE)


def _check_classifier(classifier: Classifier, path) -> None:
    """Run the expression model once on a blank crop, so a model given for the wrong stage (the
    face detector as --fer-model, say) is refused when loaded, not at the first face."""
    h, w = classifier.size
    blank = np.zeros((1, h, w, classifier.channels), np.uint8)
    try:
        out = classifier.predict(blank, tta_flip=False)
    except Exception as e:  # ONNX Runtime / Keras raise their own kinds
        raise PipelineError(f"FER model {path} cannot classify {h}x{w}x{classifier.channels} face "
                            f"crops ({type(e).__name__}); is it the face model? --fer-model takes "
                            "an expression model from fer-train") from e
    if out.shape != (1, len(classifier.labels)):
        raise PipelineError(f"FER model {path} gives {out.shape[1:]} outputs for "
                            f"{len(classifier.labels)} labels; is it an expression model?")


class FacePipeline:
    """Boxes every face in a BGR image and classifies it; the same records for every caller."""

    def __init__(self, detector, classifier: Classifier, margin: float = 0.0,
                 tta: bool | None = None, min_face: int = MIN_FACE,
                 reuse_tolerance: float = REUSE_TOLERANCE):
        self.detector, self.classifier = detector, classifier
        self.margin, self.tta, self.min_face = margin, tta, min_face
        self.reuse_tolerance = reuse_tolerance
        self.labels = classifier.labels

    @classmethod
    def from_config(cls, cfg: PipelineConfig | None = None) -> FacePipeline:
        cfg = check_config(cfg or PipelineConfig())
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
                                 cfg.imgsz, cfg.conf, cfg.iou, cfg.max_det,
                                 zoom_out=cfg.zoom_out)
        classifier = load_classifier(fer_model)
        _check_classifier(classifier, fer_model)
        return cls(detector, classifier, cfg.margin, cfg.tta, cfg.min_face, cfg.reuse_tolerance)

    def analyze(self, image: np.ndarray, source: str = "<array>", frame: int | None = None,
                time_s: float | None = None, scale: float = 1.0) -> FrameResult:
        """All faces of one BGR uint8 image. Boxes are in original pixels (÷ `scale`); a face whose
        shorter side is under `min_face` pixels of `image` (what the model would get) is reported
        with `too_small` set and no probabilities."""
        return self._detect_and_classify(image, source, frame, time_s, scale)[0]

    def _detect_and_classify(self, image: np.ndarray, source: str, frame: int | None,
                             time_s: float | None, scale: float) -> tuple[FrameResult, dict]:
        t0 = time.perf_counter()
        boxes, scores = self.detector.detect(image)
        detect_ms = (time.perf_counter() - t0) * 1e3
        return self._classify(image, boxes, scores, source, frame, time_s, scale, detect_ms)

    def _classify(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None,
                  source: str, frame: int | None, time_s: float | None, scale: float,
                  detect_ms: float, ids: list[int] | None = None,
                  memory: CropMemory | None = None) -> tuple[FrameResult, dict]:
        """Crop and classify the given boxes (detected, or carried by the tracker with `ids`,
        when `memory` may hold a face's unchanged crop). Also gives each classified face's
        model input and probabilities by its index in the result."""
        t1 = time.perf_counter()
        h, w = image.shape[:2]
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) \
            else np.zeros(0)
        keep = [i for i, side in enumerate(sides) if side >= 2]  # a narrower box is no face
        readable = [i for i in keep if sides[i] >= self.min_face]
        crops = {i: to_model_input(face_crop(image, (b[0], b[1], b[2] - b[0], b[3] - b[1]),
                                             self.margin),
                                   self.classifier.size, self.classifier.channels)
                 for i, b in zip(readable, boxes[readable], strict=True)}
        by_face = {}
        if memory is not None and ids is not None:
            by_face = {i: p for i in readable
                       if (p := memory.recall(ids[i], crops[i])) is not None}
        todo = [i for i in readable if i not in by_face]
        t2 = time.perf_counter()
        if todo:
            probs = self.classifier.predict(np.stack([crops[i] for i in todo]), tta_flip=self.tta)
            by_face.update(zip(todo, probs, strict=True))
            if memory is not None and ids is not None:
                for i in todo:
                    memory.keep(ids[i], crops[i], by_face[i])
        t3 = time.perf_counter()
        faces = [Face(box=tuple(float(v) / scale for v in boxes[i]),
                      score=None if scores is None or scores[i] is None else float(scores[i]),
                      probabilities={} if i not in by_face else
                      dict(zip(self.labels, by_face[i].tolist(), strict=True)),
                      too_small=i not in by_face, id=None if ids is None else ids[i])
                 for i in keep]
        result = FrameResult(source=source, frame=frame, width=round(w / scale),
                             height=round(h / scale), faces=faces, time=time_s,
                             timings={"detect": detect_ms, "crop": (t2 - t1) * 1e3,
                                      "classify": (t3 - t2) * 1e3})
        position = {i: n for n, i in enumerate(keep)}
        return result, {position[i]: (crops[i], by_face[i]) for i in readable}

    def analyze_frame(self, frame: Frame) -> FrameResult:
        return self.analyze(frame.image, frame.source, frame.index, frame.time, frame.scale)

    def analyze_stream(self, frames: Iterable[Frame], tracker: IouTracker | None = None,
                       detect_every: int = 1) -> Iterator[tuple[Frame, FrameResult]]:
        """Video or camera frames with stable face ids and smoothed emotions. With
        `detect_every` N > 1 the detector runs on every Nth frame only; in between the tracker
        carries the boxes along their motion and only the classifier runs, on the faces whose
        crop changed (`reuse_tolerance`)."""
        tracker, memory = tracker or IouTracker(), self.crop_memory()
        for n, frame in enumerate(frames):
            yield frame, self.track_frame(frame, tracker, n % detect_every == 0, memory)

    def crop_memory(self) -> CropMemory | None:
        """A fresh `CropMemory` for one stream's `track_frame` calls (None: reuse is off)."""
        return CropMemory(self.reuse_tolerance) if self.reuse_tolerance > 0 else None

    def track_frame(self, frame: Frame, tracker: IouTracker, detect: bool = True,
                    memory: CropMemory | None = None) -> FrameResult:
        """One frame of a stream: detected (`detect`) or carried from the tracker's boxes. With
        a `memory` (one per stream), a carried face whose crop did not change since it was last
        classified keeps those probabilities instead of being classified again."""
        if detect:
            result, read = self._detect_and_classify(frame.image, frame.source, frame.index,
                                                     frame.time, frame.scale)
            tracker.update(result.faces, self.labels)
            if memory is not None:
                for n, (crop, probs) in read.items():
                    memory.keep(result.faces[n].id, crop, probs)
                memory.forget_all_but({t.id for t in tracker.tracks})
            return result
        carried = tracker.carry()
        h, w = frame.image.shape[:2]
        # a box carried out of the frame is clipped to nothing and dropped (the tracker then
        # counts it missing)
        boxes = np.clip(np.array([box for _, box, _ in carried], np.float64).reshape(-1, 4)
                        * frame.scale, 0, [w, h, w, h])
        result, _ = self._classify(frame.image, boxes, [score for *_, score in carried],
                                   frame.source, frame.index, frame.time, frame.scale, 0.0,
                                   [i for i, _, _ in carried], memory)
        tracker.carried(result.faces, self.labels)
        return result


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
            results.extend(r for _, r in pipe.analyze_stream(read_video(path), tracker,
                                                             cfg.detect_every))
    return results
