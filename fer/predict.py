"""Run a trained FER model on prepared face crops: ONNX Runtime (no TensorFlow import) or Keras."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fer.calibrate import apply_temperature
from fer.errors import FerError
from fer.metadata import LABELS_FILE, ONNX_KEY, read_metadata_file, same_model, temperature, validate


class Classifier:
    """Probabilities for uint8 NxHxWxC crops, with optional mirrored test-time augmentation and
    the temperature scaling stored in the model's metadata (`calibration.temperature`)."""

    def __init__(self, meta: dict[str, Any], run, path: Path):
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.size = (int(meta["input"]["height"]), int(meta["input"]["width"]))
        self.channels = int(meta["input"]["channels"])
        self.tta_flip = bool(meta.get("tta_flip", False))
        self.temperature = temperature(meta, str(path))
        self.path = path
        self._run = run

    def predict(self, crops: np.ndarray, batch_size: int = 256, tta_flip: bool | None = None,
                calibrated: bool = True) -> np.ndarray:
        """Probabilities in the order of `labels`; `calibrated=False` gives the network's own
        (fer-eval compares the two and fits the temperature on them)."""
        flip = self.tta_flip if tta_flip is None else tta_flip
        expected = (*self.size, self.channels)
        if crops.ndim != 4 or tuple(crops.shape[1:]) != expected:
            raise FerError(f"model {self.path.name} expects crops of shape N x "
                           f"{' x '.join(map(str, expected))}, got {crops.shape}")
        out = []
        for i in range(0, len(crops), batch_size):
            x = crops[i:i + batch_size].astype(np.float32)
            p = self._run(x)
            if flip:
                p = (p + self._run(np.ascontiguousarray(x[:, :, ::-1]))) / 2.0
            out.append(p)
        if not out:
            return np.zeros((0, len(self.labels)), np.float32)
        probs = np.concatenate(out).astype(np.float32)
        return apply_temperature(probs, self.temperature) if calibrated else probs


class Ensemble:
    """Several classifiers of the same labels and input used as one: the mean of their own
    (uncalibrated) probabilities, the teacher `fer-train --teacher` makes of the same models,
    so `fer-eval` can say whether a set of models is worth distilling before a run is spent.
    It has no stored temperature (1); `fer-eval` measures its calibration like any model's."""

    def __init__(self, members: list[Classifier]):
        first = members[0]
        for m in members[1:]:
            if m.labels != first.labels or (m.size, m.channels) != (first.size, first.channels):
                raise FerError(f"{m.path} and {first.path} differ in labels or input; an "
                               "ensemble needs models of the same classes, in order, and input")
        self.members = members
        self.labels, self.size, self.channels = first.labels, first.size, first.channels
        self.tta_flip = all(m.tta_flip for m in members)
        self.temperature = 1.0
        self.path = Path("+".join(m.path.stem for m in members))

    def predict_each(self, crops: np.ndarray, batch_size: int = 256,
                     tta_flip: bool | None = None) -> list[np.ndarray]:
        """Each member's own probabilities, with its own flip setting unless `tta_flip` says
        otherwise."""
        return [m.predict(crops, batch_size, tta_flip, calibrated=False) for m in self.members]

    def predict(self, crops: np.ndarray, batch_size: int = 256, tta_flip: bool | None = None,
                calibrated: bool = True) -> np.ndarray:
        """The members' mean (`calibrated` changes nothing: the temperature is 1)."""
        return np.mean(self.predict_each(crops, batch_size, tta_flip), axis=0).astype(np.float32)


#: Intra-op threads of each ONNX Runtime session this process opens; None leaves ORT's default
#: (one per core). Parallel workers set their share, so N workers never run N x cores threads.
_INTRA_OP_THREADS: int | None = None


def set_onnx_threads(threads: int | None) -> None:
    """Threads for the ONNX Runtime sessions opened from now on in this process (None: ORT's)."""
    global _INTRA_OP_THREADS
    _INTRA_OP_THREADS = threads


def onnx_session(path: Path):
    """An ONNX Runtime session on the best provider present (CUDA, else CPU), for both of the
    pipeline's models; ORT's own exceptions pass through for the caller to word.

    Spin-waiting is off: the face detector and the classifier run one after the other, and with
    ORT's default each session's idle threads keep the cores busy while the other runs (measured
    on 2 cores: detect 83 -> 54 ms, classify 8.4 -> 5.4 ms with spinning off)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if _INTRA_OP_THREADS:
        options.intra_op_num_threads = _INTRA_OP_THREADS
    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), options, providers=chosen)


def _onnx_session(path: Path):
    try:
        return onnx_session(path)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise FerError(f"{path} is not a loadable ONNX model ({str(e).splitlines()[0][:120]})") from e


def _with_calibration_beside(meta: dict[str, Any], beside: Path) -> dict[str, Any]:
    """The embedded metadata, with the calibration from the labels.json beside the ONNX file when
    that file describes the same model: `fer-eval --calibrate` writes a temperature there, so a
    shipped model is calibrated without rewriting its weights file. A labels.json that is absent,
    unreadable or for another model is ignored, as before calibration existed."""
    try:
        local = read_metadata_file(beside)
    except FerError:  # absent or foreign: the embedded metadata is complete on its own
        return meta
    if same_model(local, meta) and "calibration" in local:
        return {**meta, "calibration": local["calibration"]}
    return meta


def load_classifier(path: str | Path) -> Classifier:
    """Open `.onnx` (preferred for inference) or `.keras`; metadata comes from the model."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"FER model {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        session = _onnx_session(path)
        embedded = session.get_modelmeta().custom_metadata_map.get(ONNX_KEY)
        if embedded:
            meta = _with_calibration_beside(validate(json.loads(embedded), f"{path} metadata"),
                                            path.with_name(LABELS_FILE))
        else:
            meta = read_metadata_file(path.with_name(LABELS_FILE))
        name = session.get_inputs()[0].name
        return Classifier(meta, lambda x: session.run(None, {name: x})[0], path)
    if suffix == ".keras":
        meta = read_metadata_file(path.with_name(LABELS_FILE))
        from fer.keras_env import keras

        try:
            model = keras().models.load_model(path, compile=False)
        except Exception as e:  # keras raises ValueError/OSError/zipfile errors for bad files
            raise FerError(f"{path} is not a loadable Keras model ({type(e).__name__})") from e
        return Classifier(meta, lambda x: np.asarray(model(x, training=False)), path)
    raise FerError(f"{path}: unsupported FER model type '{suffix}'; use .onnx or .keras")
