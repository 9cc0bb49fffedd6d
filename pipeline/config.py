"""The pipeline's one configuration source: defaults here, a YAML file and CLI flags override."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fer.config import read_yaml_mapping
from pipeline.errors import PipelineError


@dataclass
class PipelineConfig:
    # auto: YOLO with --fd-model or the packaged face model, else the Haar cascade (with a notice);
    # yolo | haar | whole (each input is already one face crop)
    detector: str = "auto"
    fd_model: str | None = None  # default: the packaged face model
    fer_model: str | None = None  # default: the packaged expression model
    imgsz: int | None = None  # detector input size; default: the model's own
    conf: float = 0.35  # detector confidence threshold
    iou: float = 0.5  # NMS IoU threshold
    max_det: int = 1000  # crowded photos hold hundreds of faces
    margin: float = 0.0  # grow each face box by this fraction per side before cropping
    tta: bool | None = None  # mirrored test-time augmentation; default: the FER model's choice
    smoothing: float = 0.6  # video/camera: weight of the past in the per-face moving average
    track_iou: float = 0.3  # video/camera: IoU that links a face to the previous frame's
    max_missed: int = 15  # video/camera: frames a face may vanish and keep its id


def load_config(path: str | Path | None, overrides: dict) -> PipelineConfig:
    cfg = PipelineConfig()
    values = read_yaml_mapping(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in known:
            raise PipelineError(f"unknown setting '{key}'; known: {', '.join(sorted(known))}")
        setattr(cfg, key, value)
    return cfg
