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
    shape = tuple(int(d) for d in model.input_shape[1:])
    model(np.zeros((1, *shape), np.float32), training=False)  # a loaded model must be called once
    tmp = path.with_name(path.name + ".tmp.onnx")
    # Keras prints "Saved artifact at ..." and its bundled tf2onnx warns about numpy aliases.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(tmp), format="onnx", verbose=False)
    _set_metadata(tmp, meta)
    os.replace(tmp, path)
    return path


def _set_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != ONNX_KEY]
    del proto.metadata_props[:]
    for key, value in [*kept, (ONNX_KEY, json.dumps(meta))]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def embed_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Replace the metadata embedded in an ONNX file (the graph and weights stay as they are),
    atomically: a copy is edited, then renamed over the original."""
    import shutil

    tmp = path.with_name(path.name + ".tmp.onnx")
    shutil.copy2(path, tmp)
    _set_metadata(tmp, meta)
    os.replace(tmp, path)


def max_abs_difference(model, onnx_path: Path, crops: np.ndarray) -> float:
    """Largest probability difference between Keras and ONNX Runtime on the same crops."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = crops.astype(np.float32)
    ours = session.run(None, {session.get_inputs()[0].name: x})[0]
    theirs = np.asarray(model(x, training=False))
    return float(np.abs(ours - theirs).max()) if len(x) else 0.0


def package_model(run_dir: Path, target_dir: Path, name: str = "fer") -> list[Path]:
    """Copy a run's best model into `target_dir` for shipping: `<name>.onnx` (metadata embedded),
    `<name>.keras` without optimizer state (a third of the size) and `labels.json`."""
    import shutil
    import tempfile

    import yaml

    from fer.config import config_from_dict
    from fer.keras_env import keras
    from fer.labels import label_set
    from fer.metadata import LABELS_FILE, make_metadata, read_metadata_file, write_metadata_file

    run_dir, target_dir = Path(run_dir), Path(target_dir)
    if (run_dir / LABELS_FILE).is_file():
        meta = read_metadata_file(run_dir / LABELS_FILE)
    else:  # a run still training: its best checkpoint so far, described by its config
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        cfg = config_from_dict(saved["config"])
        labels = (tuple(saved["classes"]) if saved.get("classes")
                  else label_set(saved["include_contempt"]))
        meta = make_metadata(labels, cfg.model.input_size,
                             cfg.model.channels, cfg.train.tta_flip)
    if (run_dir / "metrics.json").is_file():  # the figure a user can reproduce with fer-eval
        import json

        m = json.loads((run_dir / "metrics.json").read_text())
        meta["validation"] = {"data": m["validation"]["source"].split("/shared/data/")[-1],
                              "faces": m["validation"]["samples"], "accuracy": m["val_accuracy"],
                              "macro_f1": m["val_macro_f1"], "tta_flip": m["tta_flip"]}
    with tempfile.TemporaryDirectory() as tmp:  # the trainer may rewrite model.keras meanwhile
        shutil.copy2(run_dir / "model.keras", Path(tmp) / "model.keras")
        model = keras().models.load_model(Path(tmp) / "model.keras", compile=False)
    target_dir.mkdir(parents=True, exist_ok=True)
    model.save(target_dir / f"{name}.keras")  # not compiled: weights only, no optimizer slots
    export_onnx(model, target_dir / f"{name}.onnx", meta)
    write_metadata_file(meta, target_dir / LABELS_FILE)
    return [target_dir / f"{name}.onnx", target_dir / f"{name}.keras", target_dir / LABELS_FILE]
