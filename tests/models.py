"""Small model files for tests: an untrained FER model (Keras + ONNX) and an untrained YOLOv8n
face detector built from `yolov8n.yaml` (no download). They exercise the code paths; accuracy is
tested on the shipped models."""

from __future__ import annotations

from pathlib import Path


def tiny_fer_model(folder: Path) -> Path:
    """model.keras, model.onnx and labels.json as fer-train writes them."""
    from fer.config import ModelConfig
    from fer.export import export_onnx
    from fer.keras_env import keras
    from fer.labels import LABELS
    from fer.metadata import LABELS_FILE, make_metadata, write_metadata_file
    from fer.model import build_model

    keras().utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(ModelConfig(widths=(8, 16), dense_units=16), len(LABELS))
    meta = make_metadata(LABELS, 48, 1, tta_flip=True)
    write_metadata_file(meta, folder / LABELS_FILE)
    model.save(folder / "model.keras")
    export_onnx(model, folder / "model.onnx", meta)
    return folder / "model.onnx"


def leaning(model, biases: dict[int, float]):
    """`model` leaning to classes whatever it sees: large biases on those outputs."""
    layer = model.get_layer("probs")
    w, b = layer.get_weights()
    for index, bias in biases.items():
        b[index] = bias
    layer.set_weights([w, b])
    return model


def tiny_keras_fer(folder: Path, biases: dict[int, float] | None = None, labels=None,
                   size: int = 48, seed: int | None = None) -> Path:
    """An untrained model.keras and its labels.json, as fer-train leaves them, for what takes a
    trained model's file (a teacher, an ensemble member); `biases` make it lean to classes."""
    from fer.config import ModelConfig
    from fer.keras_env import keras
    from fer.labels import LABELS
    from fer.metadata import LABELS_FILE, make_metadata, write_metadata_file
    from fer.model import build_model

    labels = tuple(labels or LABELS)
    if seed is not None:
        keras().utils.set_random_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(ModelConfig(input_size=size, widths=(8, 16), dense_units=16), len(labels))
    leaning(model, biases or {}).save(folder / "model.keras")
    write_metadata_file(make_metadata(labels, size, 1, True), folder / LABELS_FILE)
    return folder / "model.keras"


def tiny_yolo(folder: Path, imgsz: int = 160) -> tuple[Path, Path]:
    """An untrained one-class YOLOv8n as .pt and .onnx (ultralytics offline)."""
    from fd.yolo_env import offline_ultralytics

    ultralytics = offline_ultralytics()
    folder.mkdir(parents=True, exist_ok=True)
    import yaml
    from ultralytics.utils.checks import check_yaml

    arch = yaml.safe_load(Path(check_yaml("yolov8.yaml")).read_text())
    arch["nc"] = 1
    (folder / "face-yolov8n.yaml").write_text(yaml.safe_dump(arch))
    model = ultralytics.YOLO(str(folder / "face-yolov8n.yaml"), task="detect")
    model.model.names = {0: "face"}
    pt = folder / "face.pt"
    model.save(str(pt))
    onnx = Path(ultralytics.YOLO(str(pt)).export(format="onnx", imgsz=imgsz, simplify=False,
                                                  verbose=False))
    return pt, onnx


def shipped_pipeline():
    """`FacePipeline` with the packaged models; the calling test is skipped when the install
    ships no face model."""
    import pytest

    from pipeline import FacePipeline
    from pipeline.models import default_face_model

    if default_face_model() is None:
        pytest.skip("no packaged face model")
    return FacePipeline.from_config()
