"""The models shipped inside the package, found through package resources (never the CWD)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

FER_MODEL = "fer.onnx"
FACE_MODEL = "face_yolov8n.onnx"


def packaged(name: str) -> Path | None:
    path = Path(str(files(__name__) / name))
    return path if path.is_file() else None


def default_fer_model() -> Path | None:
    return packaged(FER_MODEL)


def default_face_model() -> Path | None:
    return packaged(FACE_MODEL)
