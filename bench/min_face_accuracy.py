"""How small may a face be before its expression cannot be read? The measurement behind
fer-detect's `--min-face` default (README: "Faces too small to read").

Each FER2013 PublicTest face (48x48, tightly cropped, like a detector's box) is shrunk to N x N
pixels with area averaging, as a camera or a downscaled photo renders a face N pixels tall, and
then goes through exactly what fer-detect does with an N-pixel face box: `to_model_input` scales
the crop to the model's input size, and the model classifies it with its own test-time
augmentation. The table is the expression model's accuracy at each N.

    python bench/min_face_accuracy.py [--data DIR] [--fer-model fer.onnx] [--sizes 8,12,16,...]

DIR holds one folder per class (../shared/data/fer2013/publictest by default, or under
$FER_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer.predict import load_classifier  # noqa: E402
from fer.preprocess import to_model_input  # noqa: E402
from pipeline.models import default_fer_model  # noqa: E402

SHARED = Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data"))
SIZES = (6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 28, 32, 40, 48)


def load_faces(folder: Path, labels: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Gray faces and their label indices, from a folder per class named as the model's labels."""
    faces, truth = [], []
    for index, label in enumerate(labels):
        for path in sorted((folder / label).glob("*")):
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                faces.append(image)
                truth.append(index)
    if not faces:
        raise SystemExit(f"no faces under {folder} (a folder per class: {', '.join(labels)})")
    return faces, np.array(truth)


def at_size(face: np.ndarray, side: int, size: tuple[int, int], channels: int) -> np.ndarray:
    """The model input fer-detect makes from this face when its box is `side` pixels."""
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return to_model_input(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR), size, channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "fer2013" / "publictest")
    parser.add_argument("--fer-model", type=Path, default=default_fer_model())
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()

    model = load_classifier(args.fer_model)
    faces, truth = load_faces(args.data, model.labels)
    majority = np.bincount(truth).max() / len(truth)
    rows = []
    for side in sorted(int(s) for s in args.sizes.split(",")):
        batch = np.stack([at_size(f, side, model.size, model.channels) for f in faces])
        guess = model.predict(batch).argmax(axis=1)
        recall = np.mean([(guess[truth == k] == k).mean() for k in np.unique(truth)])
        rows.append((side, float((guess == truth).mean()), float(recall)))
    full = rows[-1][1]
    print(f"{len(faces)} faces from {args.data}; model {args.fer_model.name}, flip TTA "
          f"{model.tta_flip}; always answering the commonest class scores {majority:.1%}\n")
    print(f"| face side (px) | accuracy | mean per-class recall | share of the {rows[-1][0]} px accuracy |")
    print("|---:|---:|---:|---:|")
    for side, accuracy, recall in rows:
        print(f"| {side} | {accuracy:.1%} | {recall:.1%} | {accuracy / full:.0%} |")

if __name__ == "__main__":
    main()
