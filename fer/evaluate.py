"""Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix of a FER model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fer.errors import FerError
from fer.predict import Classifier
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


def evaluate(classifier: Classifier, cache: FaceCache, tta_flip: bool | None = None
             ) -> dict[str, Any]:
    targets = align_targets(cache, classifier.labels)
    probs = classifier.predict(cache.images, tta_flip=tta_flip)
    result = classification_metrics(targets, probs, classifier.labels)
    result["tta_flip"] = classifier.tta_flip if tta_flip is None else tta_flip
    result["model"] = str(classifier.path)
    result["data"] = cache.source
    result["skipped"] = cache.skips.as_dict()
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in result["per_class"].items():
        lines.append(f"{name:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} "
                     f"{m['support']:>8d}")
    lines.append(f"accuracy {result['accuracy'] * 100:.2f}%   macro-F1 {result['macro_f1']:.4f}   "
                 f"({result['samples']} faces)")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
