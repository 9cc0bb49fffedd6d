"""Expression accuracy on the detector's own crops, not on the dataset's aligned ones: our whole
pipeline (`FacePipeline`, fer-detect's defaults) and the peer's (YuNet + mini-Xception) on the
same photos of the validation faces, in one run.

    python bench/fer_detector_crops.py [--data ../shared/data/fer2013/publictest]
                                       [--sizes 48,96,192] [--limit N] [--json out.json]

Each 48x48 validation face is scaled to a face of `size` px and edge-padded by half its side all
round, so it fills half the photo's height, as a face near a camera does. A pipeline finds the
face when one of its boxes overlaps the face's square at IoU >= 0.4 (a detector boxes brow to
chin, inside that square); the best-overlapping box's expression is read. FER2013's faces are
gray and tightly framed, so this measures the box-to-crop rule, the detector's box jitter and
its misses on faces the model never trained on, not colour photos.

Printed per face size and pipeline: faces found, accuracy over all faces (a missed face counts
as wrong: what a user gets), accuracy over the faces both pipelines found (the classifiers on
equal terms), and beside ours, our model on the aligned crops of the same faces.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.frames import shared_data  # noqa: E402
from bench.peer_pipeline import load_peer  # noqa: E402
from fd.boxes import iou  # noqa: E402
from fer.evaluate import align_targets  # noqa: E402
from fer.labels import LABELS  # noqa: E402
from fer.prepare import prepare  # noqa: E402
from fer.readers import read_dataset  # noqa: E402
from pipeline.run import FacePipeline  # noqa: E402

#: a box overlapping the face's square at least this much is that face
FOUND_IOU = 0.4


def face_photo(face: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A BGR photo of one gray face `size` px high, padded by half a side each way, and the
    face's square (x1, y1, x2, y2) in it."""
    gray = face.reshape(face.shape[:2])
    interp = cv2.INTER_CUBIC if size > gray.shape[0] else cv2.INTER_AREA
    scaled = cv2.resize(gray, (size, size), interpolation=interp)
    pad = size // 2
    photo = cv2.copyMakeBorder(scaled, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), np.array([pad, pad, pad + size, pad + size],
                                                             np.float32)


def read_face(boxes: np.ndarray, probs: list[np.ndarray], square: np.ndarray,
              labels: tuple[str, ...]) -> int | None:
    """Index into LABELS of the expression read on the box that is the face, or None when no
    box overlaps it at FOUND_IOU."""
    if not len(boxes):
        return None
    overlap = iou(np.asarray(boxes, np.float32).reshape(-1, 4), square[None])[:, 0]
    best = int(np.argmax(overlap))
    if overlap[best] < FOUND_IOU or probs[best] is None:
        return None
    return LABELS.index(labels[int(np.argmax(probs[best]))])


def ours(pipeline: FacePipeline, photo: np.ndarray, square: np.ndarray) -> int | None:
    result = pipeline.analyze(photo)
    boxes = [f.box for f in result.faces]
    probs = [np.array(list(f.probabilities.values())) if f.probabilities else None
             for f in result.faces]
    return read_face(np.array(boxes), probs, square, pipeline.labels)


def peers(peer, photo: np.ndarray, square: np.ndarray) -> int | None:
    found = peer.analyze(photo)
    return read_face(np.array([b for b, _ in found]), [p for _, p in found], square,
                     peer.classifier.labels)


def summary(pred: np.ndarray, targets: np.ndarray, both: np.ndarray) -> dict[str, float]:
    found = pred >= 0
    return {"found": float(found.mean()),
            "accuracy_all_faces": float((pred == targets).mean()),
            "accuracy_found_by_both": float((pred[both] == targets[both]).mean()) if both.any()
            else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(shared_data() / "fer2013" / "publictest"))
    ap.add_argument("--sizes", default="48,96,192", help="face heights in px, comma-separated")
    ap.add_argument("--limit", type=int, help="a seeded random subset of this many faces")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    pipeline = FacePipeline.from_config()
    classifier = pipeline.classifier
    cache = prepare(read_dataset(args.data, "val", False, None), LABELS, classifier.size,
                    classifier.channels)
    targets_model = align_targets(cache, classifier.labels)
    images = cache.images
    if args.limit and args.limit < len(images):
        # the cache is sorted by class: a prefix would be a few classes only
        pick = np.sort(np.random.default_rng(0).choice(len(images), args.limit, replace=False))
        images, targets_model = images[pick], targets_model[pick]
    targets = np.array([LABELS.index(classifier.labels[t]) for t in targets_model])
    aligned = classifier.predict(images).argmax(axis=1)
    aligned = np.array([LABELS.index(classifier.labels[t]) for t in aligned])
    peer, why = load_peer()
    if peer is None:
        print(f"peer left out: {why}")

    figures: dict[str, dict] = {}
    print(f"{len(images)} faces of {args.data}; our model on the aligned crops: "
          f"{(aligned == targets).mean() * 100:.2f}%")
    for size in (int(s) for s in args.sizes.split(",")):
        mine = np.full(len(images), -1)
        theirs = np.full(len(images), -1)
        for i, face in enumerate(tqdm(images, desc=f"{size} px faces", unit="face")):
            photo, square = face_photo(face, size)
            if (k := ours(pipeline, photo, square)) is not None:
                mine[i] = k
            if peer is not None and (k := peers(peer, photo, square)) is not None:
                theirs[i] = k
        both = (mine >= 0) & ((theirs >= 0) if peer is not None else True)
        row = {"ours": summary(mine, targets, both),
               "ours_aligned_on_found_by_both": float((aligned[both] == targets[both]).mean())
               if both.any() else float("nan")}
        if peer is not None:
            row["peer"] = summary(theirs, targets, both)
        figures[f"{size}px"] = row
        print(f"\nface {size} px high, in a {2 * (size // 2) + size} px photo "
              f"({int(both.sum())} faces found by both):")
        for name in ("ours", "peer"):
            if name in row:
                r = row[name]
                print(f"  {name:<5} found {r['found'] * 100:6.2f}%   accuracy, all faces "
                      f"{r['accuracy_all_faces'] * 100:6.2f}%   on faces both found "
                      f"{r['accuracy_found_by_both'] * 100:6.2f}%")
        print(f"  ours on the aligned crops of the faces both found: "
              f"{row['ours_aligned_on_found_by_both'] * 100:.2f}%")
    if args.json:
        args.json.write_text(json.dumps({"data": args.data, "faces": len(images),
                                         "found_iou": FOUND_IOU, "sizes": figures}, indent=2))


if __name__ == "__main__":
    main()
