"""The FER stage's one configuration source: defaults live here, a YAML file overrides them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fer.errors import FerError


@dataclass
class ModelConfig:
    input_size: int = 48
    channels: int = 1  # 1 = grayscale (FER2013), 3 = RGB
    widths: tuple[int, ...] = (32, 64, 128, 256)  # one conv block per entry, each ends in 2x2 pooling
    convs_per_block: int = 2
    block_dropout: float = 0.15
    dense_units: int = 256
    dense_dropout: float = 0.4
    attention_heads: int = 0  # > 0 adds a multi-head self-attention block after the convolutions


@dataclass
class AugmentConfig:
    hflip: float = 0.5
    affine_p: float = 0.7
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.08  # fraction of the side
    rotate: float = 12.0  # degrees
    brightness_contrast_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    blur_noise_p: float = 0.15
    dropout_p: float = 0.3
    dropout_holes: tuple[int, int] = (1, 3)
    dropout_size: tuple[float, float] = (0.1, 0.25)  # fraction of the side
    # one of what real photos do to a detector's crop (fer.degrade): a small face blown up,
    # JPEG blocks, blur, a dim noisy room; 0 trains on clean crops only
    degrade_p: float = 0.0
    # blends of two faces and their labels across a batch (fer.mix), the alpha of each one's Beta
    # draw: MixUp ~0.2, CutMix ~1.0 in the literature; 0 = off
    mixup: float = 0.0
    cutmix: float = 0.0


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    class_weight: str = "sqrt"  # none | balanced | sqrt (balanced weights, square-rooted)
    patience: int = 12  # early stopping on val accuracy
    seed: int = 1337
    val_fraction: float = 0.1  # stratified split when no validation set is given
    tta_flip: bool = True  # average with the mirrored face at evaluation and inference
    mixed_precision: str = "auto"  # auto (on GPU) | on | off
    workers: int = 2  # threads feeding augmented batches
    # processes augmenting them (fer.augment_pool): auto = one per core but one, at most 8,
    # when training on a GPU; 0 = the threads augment
    augment_processes: int | str = "auto"
    # momentum of an exponential moving average of the weights (e.g. 0.999), which is what is
    # validated and saved as the model; 0 = off
    ema: float = 0.0


@dataclass
class DistillConfig:
    # fer-train runs' model.keras files (same labels and input) whose mean softened probabilities
    # the model learns from beside the labels (fer.distill); none = plain training
    teachers: tuple[str, ...] = ()
    alpha: float = 0.5  # the teachers' share of the loss, the labels' is 1 - alpha
    temperature: float = 4.0  # softens both sides' probabilities; Hinton et al. use 2-20


@dataclass
class FerConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CLASS_WEIGHTS = ("none", "balanced", "sqrt")


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise FerError(f"unknown setting '{where}{key}'; known: {', '.join(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise FerError(f"setting '{where}{key}' must be a mapping")
            _apply(current, value, f"{where}{key}.")
            continue
        if isinstance(current, tuple):
            value = tuple(value) if isinstance(value, (list, tuple)) else value
        setattr(obj, key, value)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML config file's top-level mapping, or one clear error (shared by every stage)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as e:
        raise FerError(f"config file {path} not found") from e
    except yaml.YAMLError as e:
        raise FerError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise FerError(f"config file {path} must hold a mapping of sections")
    return data


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> FerConfig:
    """Defaults, then the YAML file, then explicit overrides (`{'train': {'epochs': 2}}`)."""
    cfg = FerConfig()
    if path is not None:
        _apply(cfg, read_yaml_mapping(path), "")
    if overrides:
        _apply(cfg, overrides, "")
    if cfg.train.class_weight not in CLASS_WEIGHTS:
        raise FerError(f"train.class_weight must be one of {', '.join(CLASS_WEIGHTS)}")
    n = cfg.train.augment_processes
    if n != "auto" and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise FerError(f"train.augment_processes must be 'auto' or a whole number >= 0, not {n!r}")
    if not 0 <= cfg.train.ema < 1:
        raise FerError(f"train.ema must be in [0, 1), not {cfg.train.ema}")
    if cfg.augment.mixup < 0 or cfg.augment.cutmix < 0:
        raise FerError("augment.mixup and augment.cutmix must be >= 0 (0 = off)")
    d = cfg.distill
    if not isinstance(d.teachers, tuple) or not all(isinstance(t, str) for t in d.teachers):
        raise FerError("distill.teachers must be a list of model file paths")
    if not 0 <= d.alpha <= 1 or d.temperature <= 0:
        raise FerError(f"distill.alpha must be in [0, 1] and distill.temperature > 0, not "
                       f"{d.alpha} and {d.temperature}")
    if cfg.model.channels not in (1, 3):
        raise FerError("model.channels must be 1 (grayscale) or 3 (RGB)")
    return cfg


def config_from_dict(data: dict[str, Any]) -> FerConfig:
    cfg = FerConfig()
    _apply(cfg, data, "")
    return cfg
