"""Per-request options (`?conf=0.5&min_face=0`): a tuned copy of the loaded pipeline, so one
request's settings never leak into another's running beside it."""

from __future__ import annotations

import copy

from fd.predict import STRIDE, stride_multiple
from pipeline.config import LIMITS
from pipeline.run import FacePipeline

#: Options a request may give, each held to the same limits as fer-detect's flags.
DETECTOR_OPTIONS = ("conf", "iou", "imgsz", "max_det")
PIPELINE_OPTIONS = ("margin", "min_face", "tta")
DESCRIPTIONS = {
    "conf": "detector confidence threshold",
    "iou": "detector NMS IoU threshold",
    "imgsz": f"detector input size (long side), rounded up to a multiple of {STRIDE} [each "
             "image at its own size, 160-1280]",
    "max_det": "at most this many faces",
    "margin": "grow face boxes by this fraction per side before classifying",
    "min_face": "faces whose shorter side is under this many pixels get no emotion (0 reads all)",
    "tta": "mirrored test-time augmentation",
}


class NotApplicable(ValueError):
    """An option this server's models cannot take (conf with the Haar detector, say)."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


def bounds(name: str) -> dict[str, float]:
    """FastAPI/pydantic bounds (ge, le or lt) for an option, from `pipeline.config.LIMITS`."""
    limit = LIMITS[name]
    return {"ge": limit.low, ("lt" if limit.high_open else "le"): limit.high}


def tuned(pipe: FacePipeline, options: dict[str, object]) -> FacePipeline:
    """`pipe` itself when no option is given, else a shallow copy with them applied (the model
    sessions are shared: ONNX Runtime runs them from several threads)."""
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return pipe
    result = copy.copy(pipe)
    wanted = {k: v for k, v in given.items() if k in DETECTOR_OPTIONS}
    if "imgsz" in wanted:
        wanted["imgsz"] = stride_multiple(int(wanted["imgsz"]))
    if wanted:
        detector = copy.copy(pipe.detector)
        kind = type(detector).__name__
        for name, value in wanted.items():
            keywords = getattr(detector, "kw", None)  # ultralytics' predict() keywords
            if name == "imgsz" and hasattr(detector, "session"):
                side = detector.session.get_inputs()[0].shape[2]
                if isinstance(side, int) and side != value:
                    raise NotApplicable(name, f"the face model was exported at {side} px only")
            if isinstance(keywords, dict) and name in keywords:
                detector.kw = {**keywords, name: value}
            elif hasattr(detector, name):
                setattr(detector, name, value)
            else:
                raise NotApplicable(name, f"this server's detector ({kind}) takes no {name}")
        result.detector = detector
    for name in PIPELINE_OPTIONS:
        if name in given:
            setattr(result, name, given[name])
    return result
