"""What a FER model needs to be used correctly, stored beside it as `labels.json` and inside the ONNX
file, so preprocessing is defined once, by the model, never guessed by a caller."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fer.errors import FerError

FORMAT = "fer-model/1"
LABELS_FILE = "labels.json"
ONNX_KEY = "fer_metadata"


def make_metadata(labels: tuple[str, ...], input_size: int, channels: int, tta_flip: bool,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "labels": list(labels),
        "input": {"height": input_size, "width": input_size, "channels": channels,
                  "color": "gray" if channels == 1 else "rgb", "layout": "NHWC",
                  "dtype": "float32", "range": [0, 255]},
        "crop": {"square": True, "resize": "area"},
        "output": "softmax probabilities in the order of 'labels'",
        "tta_flip": tta_flip,
        **(extra or {}),
    }


def validate(meta: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        assert meta["format"] == FORMAT
        assert isinstance(meta["labels"], list) and meta["labels"]
        int(meta["input"]["height"]), int(meta["input"]["width"]), int(meta["input"]["channels"])
    except (AssertionError, KeyError, TypeError, ValueError) as e:
        raise FerError(f"{where} is not FER model metadata ({FORMAT}); retrain or re-export "
                       "the model with fer-train") from e
    return meta


def read_metadata_file(path: Path) -> dict[str, Any]:
    try:
        return validate(json.loads(path.read_text()), str(path))
    except FileNotFoundError as e:
        raise FerError(f"{path} not found: a FER model needs its {LABELS_FILE} beside it") from e
    except json.JSONDecodeError as e:
        raise FerError(f"{path} is not valid JSON ({e.msg})") from e


def write_metadata_file(meta: dict[str, Any], path: Path) -> None:
    """Atomically (temp file + rename): a reader never sees half a labels.json, and an
    interrupted write leaves the old one in place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)


def temperature(meta: dict[str, Any], where: str) -> float:
    """The calibration temperature the probabilities are divided by (1 when uncalibrated)."""
    value = (meta.get("calibration") or {}).get("temperature", 1.0)
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.01 <= t <= 100.0:  # also refuses NaN
        raise FerError(f"{where}: calibration temperature {value!r} is not a number in [0.01, 100]; "
                       "refit it with fer-eval --calibrate")
    return t


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two metadata records describe the same classifier interface (labels and input)."""
    return a.get("labels") == b.get("labels") and a.get("input") == b.get("input")
