"""Keras -> ONNX with the model's metadata embedded, checked against Keras on real crops."""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fer.metadata import ONNX_KEY


def export_onnx(model, path: Path, meta: dict[str, Any]) -> Path:
    import onnx

    shape = tuple(int(d) for d in model.input_shape[1:])
    model(np.zeros((1, *shape), np.float32), training=False)  # a loaded model must be called once
    tmp = path.with_name(path.name + ".tmp.onnx")
    # Keras prints "Saved artifact at ..." and its bundled tf2onnx warns about numpy aliases.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(tmp), format="onnx", verbose=False)
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, json.dumps(meta)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def max_abs_difference(model, onnx_path: Path, crops: np.ndarray) -> float:
    """Largest probability difference between Keras and ONNX Runtime on the same crops."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = crops.astype(np.float32)
    ours = session.run(None, {session.get_inputs()[0].name: x})[0]
    theirs = np.asarray(model(x, training=False))
    return float(np.abs(ours - theirs).max()) if len(x) else 0.0
