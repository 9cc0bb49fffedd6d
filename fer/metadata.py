"""What a FER model needs to be used correctly, stored beside it as `labels.json` and inside the ONNX
file, so preprocessing is defined once, by the model, never guessed by a caller."""

from __future__ import annotations

import json
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
    path.write_text(json.dumps(meta, indent=2) + "\n")
