"""Accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and the calibration
(ECE, NLL, reliability bins; optionally a temperature fitted here) of a FER model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fer.calibrate import (
    apply_temperature,
    calibration_report,
    fit_temperature,
    logits_from_probs,
    reliability_bins,
)
from fer.errors import FerError
from fer.metadata import LABELS_FILE, read_metadata_file, same_model, write_metadata_file
from fer.predict import Classifier, Ensemble
from fer.prepare import FaceCache


def classification_metrics(targets: np.ndarray, probs: np.ndarray,
                           labels: tuple[str, ...]) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    idx = list(range(len(labels)))
    p, r, f, n = precision_recall_fscore_support(targets, pred, labels=idx, zero_division=0)
    return {
        "samples": int(len(targets)),
        "accuracy": float((pred == targets).mean()) if len(targets) else 0.0,
        "macro_f1": float(f.mean()),
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                             "support": int(n[i])} for i, name in enumerate(labels)},
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(targets, pred, labels=idx).tolist(),
    }


def align_targets(cache: FaceCache, model_labels: tuple[str, ...]) -> np.ndarray:
    """Targets re-indexed into the model's label order (a dataset may list classes differently)."""
    missing = set(cache.labels[t] for t in np.unique(cache.targets)) - set(model_labels)
    if missing:
        raise FerError(f"{cache.source} has classes {sorted(missing)} the model does not know")
    remap = np.array([model_labels.index(n) if n in model_labels else -1 for n in cache.labels])
    return remap[cache.targets]


def _bins_json(probs: np.ndarray, targets: np.ndarray) -> dict[str, list]:
    bins = reliability_bins(probs, targets)
    return {k: [None if np.isnan(v) else float(v) for v in bins[k]] if k != "count"
            else bins[k].tolist() for k in bins}


def evaluate(classifier: Classifier, cache: FaceCache, tta_flip: bool | None = None,
             fit_calibration: bool = False) -> dict[str, Any]:
    """Figures of the model's calibrated probabilities (its stored temperature, or one fitted on
    this data when `fit_calibration`), with the uncalibrated ECE and reliability beside them.
    Temperature scaling keeps the order of the classes, so accuracy and F1 do not depend on it."""
    raw = classifier.predict(cache.images, tta_flip=tta_flip, calibrated=False)
    return _report(classifier, cache, raw, tta_flip, fit_calibration)


def evaluate_ensemble(ensemble: Ensemble, cache: FaceCache, tta_flip: bool | None = None
                      ) -> dict[str, Any]:
    """`evaluate` of the ensemble, with each member's accuracy and macro-F1 beside it, from one
    pass of each member over the data."""
    each = ensemble.predict_each(cache.images, tta_flip=tta_flip)
    result = _report(ensemble, cache, np.mean(each, axis=0).astype(np.float32), tta_flip, False)
    targets = align_targets(cache, ensemble.labels)
    result["model"] = [str(m.path) for m in ensemble.members]
    result["members"] = []
    for member, raw in zip(ensemble.members, each, strict=True):
        m = classification_metrics(targets, raw, ensemble.labels)  # the temperature keeps argmax
        result["members"].append({"model": str(member.path), "accuracy": m["accuracy"],
                                  "macro_f1": m["macro_f1"]})
    return result


def _report(classifier: Classifier | Ensemble, cache: FaceCache, raw: np.ndarray,
            tta_flip: bool | None, fit_calibration: bool) -> dict[str, Any]:
    targets = align_targets(cache, classifier.labels)
    temperature = (fit_temperature(logits_from_probs(raw), targets) if fit_calibration
                   else classifier.temperature)
    probs = apply_temperature(raw, temperature)
    result = classification_metrics(targets, probs, classifier.labels)
    result["tta_flip"] = classifier.tta_flip if tta_flip is None else tta_flip
    result["calibration"] = {**calibration_report(raw, targets, temperature),
                             "fitted_here": fit_calibration,
                             "reliability_uncalibrated": _bins_json(raw, targets),
                             "reliability": _bins_json(probs, targets)}
    result["model"] = str(classifier.path)
    result["data"] = cache.source
    result["skipped"] = cache.skips.as_dict()
    return result


def evaluate_degraded(classifier: Classifier, cache: FaceCache, names: tuple[str, ...],
                      tta_flip: bool | None = None) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 on copies of the data under each corruption of `fer.degrade`:
    how much of the clean figure survives the crops real photos give."""
    from fer.degrade import CORRUPTIONS

    targets = align_targets(cache, classifier.labels)
    out = {}
    for name in names:
        probs = classifier.predict(CORRUPTIONS[name](cache.images), tta_flip=tta_flip)
        m = classification_metrics(targets, probs, classifier.labels)
        out[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    return out


def format_degraded(clean: dict[str, Any], degraded: dict[str, dict[str, float]]) -> str:
    lines = [f"{'data':<10} {'accuracy':>9} {'macro-F1':>9} {'vs clean':>9}",
             f"{'clean':<10} {clean['accuracy'] * 100:>8.2f}% {clean['macro_f1']:>9.4f} {'':>9}"]
    for name, m in degraded.items():
        lines.append(f"{name:<10} {m['accuracy'] * 100:>8.2f}% {m['macro_f1']:>9.4f} "
                     f"{(m['accuracy'] - clean['accuracy']) * 100:>+8.2f}")
    mean = float(np.mean([m["accuracy"] for m in degraded.values()]))
    lines.append(f"{'mean':<10} {mean * 100:>8.2f}%")
    return "\n".join(lines)


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in result["per_class"].items():
        lines.append(f"{name:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} "
                     f"{m['support']:>8d}")
    lines.append(f"accuracy {result['accuracy'] * 100:.2f}%   macro-F1 {result['macro_f1']:.4f}   "
                 f"({result['samples']} faces)")
    c = result.get("calibration")
    if c:
        how = "fitted here" if c["fitted_here"] else "from the model"
        lines.append(f"calibration: temperature {c['temperature']:.4f} ({how}); ECE ({c['bins']} bins) "
                     f"{c['ece_uncalibrated']:.4f} -> {c['ece']:.4f}, NLL {c['nll_uncalibrated']:.4f} "
                     f"-> {c['nll']:.4f}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    """Atomically, so an interrupted run never leaves half a report."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)


def _short_source(source: str) -> str:
    """The last two parts of a dataset path (`fer2013/publictest`): where a figure came from,
    without the user's own folders."""
    path = source.split("#")[0]
    split = source.partition("#")[2]
    short = "/".join(Path(path).parts[-2:])
    return f"{short}#{split}" if split else short


def store_calibration(classifier: Classifier, result: dict[str, Any]) -> Path:
    """Write the temperature `evaluate(..., fit_calibration=True)` fitted into the labels.json
    beside the model (atomically), which the loader reads for .keras and for .onnx alike; the
    model's weights file is left untouched. Returns the file written."""
    target = classifier.path.with_name(LABELS_FILE)
    meta = dict(classifier.meta)
    if target.exists():
        try:
            local = read_metadata_file(target)
        except FerError as e:
            raise FerError(f"{target} is not this model's metadata ({e}); not replacing it: put "
                           f"{classifier.path.name} in a folder of its own to calibrate it") from e
        if not same_model(local, meta):
            raise FerError(f"{target} describes another model (labels or input differ); not "
                           f"replacing it: put {classifier.path.name} in a folder of its own")
        meta = local  # keep what only the file holds (validation figures and the like)
    c = result["calibration"]
    meta["calibration"] = {
        "temperature": c["temperature"],
        "method": "temperature scaling: softmax(log(p) / T), p after flip TTA when tta_flip",
        "fitted_on": _short_source(result["data"]), "faces": result["samples"],
        "tta_flip": result["tta_flip"], "ece_bins": c["bins"],
        "ece_before": c["ece_uncalibrated"], "ece_after": c["ece"],
        "nll_before": c["nll_uncalibrated"], "nll_after": c["nll"],
    }
    try:
        write_metadata_file(meta, target)
    except OSError as e:
        raise FerError(f"cannot write the calibration into {target}: {e.strerror}") from e
    return target
