"""The pipeline's one configuration source: defaults here, a YAML file and CLI flags override.

Every value is type- and range-checked here, before any model is loaded or input read, so a bad
setting is one clear line and never a crash at the first face (or a negative "probability").
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from fer.config import read_yaml_mapping
from fer.errors import FerError
from pipeline.errors import ConfigError
from pipeline.reuse import REUSE_TOLERANCE

DETECTORS = ("auto", "yolo", "haar", "whole")
#: --min-face's default, from bench/min_face_accuracy.py (README: "Faces too small to read").
MIN_FACE = 24


@dataclass
class PipelineConfig:
    # auto: YOLO with --fd-model or the packaged face model, else the Haar cascade (with a notice);
    # yolo | haar | whole (each input is already one face crop)
    detector: str = "auto"
    fd_model: str | None = None  # default: the packaged face model
    fer_model: str | None = None  # default: the packaged expression model
    # detector input size (long side); default: each image at its own size, 160-1280 px
    # (fd.predict.input_sizes); a fixed 640 is faster on big photos and finds fewer small faces
    imgsz: int | None = None
    # run the detector again on the image at half size and merge: finds faces that fill the
    # frame (webcams, selfies); about a quarter more detector time (MODEL_CARD.md)
    zoom_out: bool = True
    conf: float = 0.35  # detector confidence threshold
    iou: float = 0.5  # NMS IoU threshold
    max_det: int = 1000  # crowded photos hold hundreds of faces
    margin: float = 0.0  # grow each face box by this fraction per side before cropping
    # faces whose shorter side is under this many pixels are boxed and reported with no emotion:
    # below it the expression model's accuracy falls towards guessing (bench/min_face_accuracy.py)
    min_face: int = MIN_FACE
    tta: bool | None = None  # mirrored test-time augmentation; default: the FER model's choice
    smoothing: float = 0.6  # video/camera: weight of the past in the per-face moving average
    track_iou: float = 0.3  # video/camera: IoU that links a face to the previous frame's
    max_missed: int = 15  # video/camera: frames a face may vanish and keep its id
    # video/camera: run the detector on every Nth frame only; the tracker carries the boxes along
    # their motion in between. 3, measured by bench/detect_every.py on a moving video: boxes keep
    # a mean IoU of 0.93 with detecting every frame, 99% of faces found, 2.3x the frame rate
    # (4: IoU 0.89, 98%; 6: IoU 0.80, 92% and more id switches)
    detect_every: int = 3
    # video/camera: a face carried between detections whose crop differs from the one last
    # classified by under this many grey levels on average is not classified again (still
    # faces: sensor noise alone measured 0.33); 0 classifies every face on every frame
    reuse_tolerance: float = REUSE_TOLERANCE


@dataclass(frozen=True)
class Limit:
    """The accepted values of one numeric setting; the CLI builds its click types from these, so
    a flag and the same key in a YAML file accept exactly the same values."""

    kind: type  # int or float
    low: float
    high: float
    high_open: bool = False  # high itself is not accepted

    def accepts(self, value: float) -> bool:
        return self.low <= value and (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        upto = "up to, not including," if self.high_open else "to"
        return f"{what} from {self.low:g} {upto} {self.high:g}"


LIMITS: dict[str, Limit] = {
    "imgsz": Limit(int, 1, 4096),  # rounded up to a multiple of fd.predict.STRIDE; never above MAX_SIDE
    "conf": Limit(float, 0, 1),
    "iou": Limit(float, 0, 1),
    "max_det": Limit(int, 1, 10000),
    "margin": Limit(float, 0, 2),  # 2 already grows a box to 5 times its side
    "min_face": Limit(int, 0, 10000),  # 0 classifies every face, however small
    "smoothing": Limit(float, 0, 1, high_open=True),  # 1 would freeze the first frame's emotion
    "track_iou": Limit(float, 0, 1),
    "max_missed": Limit(int, 0, 100000),
    "detect_every": Limit(int, 1, 1000),
    "reuse_tolerance": Limit(float, 0, 255),
}
TEXT_OR_NONE = ("fd_model", "fer_model")


def check_config(cfg: PipelineConfig, where: str = "") -> PipelineConfig:
    """Refuse a value of the wrong type or range with a `ConfigError` naming it; round `imgsz` up
    to a multiple of the stride (with a notice). `where` prefixes messages ('config x.yaml: ')."""
    for name, limit in LIMITS.items():
        value = getattr(cfg, name)
        if value is None and name == "imgsz":
            continue
        # bool is an int to Python, never to a user; YAML's '0.5' in quotes is text
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if limit.kind is int and numeric and float(value).is_integer():
            value = int(value)
        if not numeric or (limit.kind is int and not isinstance(value, int)) \
                or not math.isfinite(value) or not limit.accepts(value):
            raise ConfigError(f"{where}{name} must be {limit.describe()}, got {value!r}")
        setattr(cfg, name, value)
    if cfg.detector not in DETECTORS:
        raise ConfigError(f"{where}detector must be one of {', '.join(DETECTORS)}, got "
                          f"{cfg.detector!r}")
    for name in TEXT_OR_NONE:
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}{name} must be a file path, got {value!r}")
    if cfg.tta is not None and not isinstance(cfg.tta, bool):
        raise ConfigError(f"{where}tta must be true or false, got {cfg.tta!r}")
    if not isinstance(cfg.zoom_out, bool):
        raise ConfigError(f"{where}zoom_out must be true or false, got {cfg.zoom_out!r}")
    from fd.predict import STRIDE, stride_multiple  # the face stage owns its input rule

    if cfg.imgsz is not None and cfg.imgsz % STRIDE:
        rounded = stride_multiple(cfg.imgsz)
        print(f"fer-detect: imgsz {cfg.imgsz} is not a multiple of the detector's stride "
              f"{STRIDE}; using {rounded}", file=sys.stderr)
        cfg.imgsz = rounded
    return cfg


def load_config(path: str | Path | None, overrides: dict) -> PipelineConfig:
    """Defaults, then the YAML file, then the flags that were given; every value checked."""
    cfg = PipelineConfig()
    try:
        values = read_yaml_mapping(path) if path is not None else {}
    except FerError as e:  # a missing or malformed config file is a bad option, not a crash
        raise ConfigError(str(e)) from e
    known = {f.name for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown setting '{key}'; known: "
                              f"{', '.join(sorted(known))}")
        setattr(cfg, key, value)
    check_config(cfg, f"config file {path}: " if values else "")
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown setting '{key}'; known: {', '.join(sorted(known))}")
        if value is not None:
            setattr(cfg, key, value)
    return check_config(cfg)
