"""`fd-eval`: AP50 (all-point interpolated), AP50-95, AP by face height and P/R at the operating
confidence, for any detector back end, on a YOLO val set or a WIDER FACE val layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from fd.errors import FdError
from fer.readers.base import SkipLog

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
BUCKETS = {"all": (0, np.inf), "small": (0, 32), "medium": (32, 96), "large": (96, np.inf)}


@dataclass
class GroundTruth:
    path: Path
    boxes: np.ndarray  # N x 4 xyxy pixels


def yolo_val_items(root: Path) -> Iterator[GroundTruth]:
    """A YOLO dataset (its data.yaml or its root) -> val images with their boxes."""
    import cv2

    if root.is_file():
        data = yaml.safe_load(root.read_text())
        base = Path(data.get("path") or root.parent)
        images = base / data["val"]
    else:
        images = root / "images" / "val"
    if not images.is_dir():
        raise FdError(f"no val images at {images}")
    for path in sorted(p for p in images.iterdir() if p.is_file()):
        label = images.parent.parent / "labels" / images.name / f"{path.stem}.txt"
        image = cv2.imread(str(path))
        if image is None:
            continue
        h, w = image.shape[:2]
        rows = np.loadtxt(label, ndmin=2) if label.is_file() and label.stat().st_size else \
            np.zeros((0, 5))
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        yield GroundTruth(path, boxes.reshape(-1, 4))


def widerface_val_items(root: Path, split: str = "val") -> Iterator[GroundTruth]:
    from fd.convert.widerface import read_widerface

    for record in read_widerface(root, split, SkipLog()):
        yield GroundTruth(record.path, np.array(record.boxes, np.float64).reshape(-1, 4))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from pipeline.tracker import iou_matrix

    return iou_matrix(a, b)


def match(dets: np.ndarray, scores: np.ndarray, gts: np.ndarray, lo: float, hi: float,
          overlaps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """COCO-style greedy matching at every IoU threshold, for ground truths with height in
    [lo, hi). Returns (tp [n x 10], keep [n x 10] for detections that count, positives)."""
    heights = gts[:, 3] - gts[:, 1]
    ignored = (heights < lo) | (heights >= hi)
    order = np.argsort(-scores, kind="stable")
    dets = dets[order]
    overlaps = iou(dets, gts) if overlaps is None else overlaps[order]  # rows in score order
    n = len(dets)
    tp = np.zeros((n, len(IOU_THRESHOLDS)), bool)
    keep = np.ones((n, len(IOU_THRESHOLDS)), bool)
    det_h = dets[:, 3] - dets[:, 1]
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gts), bool)
        for d in range(n):
            free = np.where(taken, -1.0, overlaps[d])
            best = -1
            for pool in (~ignored, ignored):  # a counted ground truth wins over an ignored one
                cand = np.where(pool, free, -1.0)
                if len(cand) and cand.max() >= thr:
                    best = int(cand.argmax())
                    break
            if best >= 0:
                taken[best] = True
                tp[d, t] = keep[d, t] = not ignored[best]
            else:
                keep[d, t] = lo <= det_h[d] < hi  # an unmatched detection counts in its own size
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n)
    return tp[inverse], keep[inverse], int((~ignored).sum())


def average_precision(tp: np.ndarray, scores: np.ndarray, positives: int
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """All-point interpolated AP (the area under the precision envelope)."""
    if positives == 0:
        return float("nan"), np.zeros(0), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(float)
    tpc, fpc = np.cumsum(hits), np.cumsum(1 - hits)
    recall = tpc / positives
    precision = tpc / np.maximum(tpc + fpc, 1e-9)
    mrec = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])), recall, precision


def evaluate(detector, items: Iterator[GroundTruth], conf: float = 0.35,
             progress: bool = True) -> dict:
    import cv2
    from tqdm import tqdm

    per_bucket = {b: {"tp": [], "keep": [], "scores": [], "positives": 0} for b in BUCKETS}
    images = 0
    for item in tqdm(list(items), desc="fd-eval", unit="img", disable=not progress,
                     dynamic_ncols=True):
        image = cv2.imread(str(item.path))
        if image is None:
            continue
        images += 1
        boxes, scores = detector.detect(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
        overlaps = iou(boxes, item.boxes)  # once per image, shared by every size bucket
        for name, (lo, hi) in BUCKETS.items():
            tp, keep, positives = match(boxes, scores, item.boxes, lo, hi, overlaps)
            acc = per_bucket[name]
            acc["tp"].append(tp)
            acc["keep"].append(keep)
            acc["scores"].append(scores)
            acc["positives"] += positives
    if not images:
        raise FdError("no readable validation images")
    result: dict = {"images": images, "operating_conf": conf, "buckets": {}}
    for name, acc in per_bucket.items():
        tp = np.concatenate(acc["tp"]) if acc["tp"] else np.zeros((0, 10), bool)
        keep = np.concatenate(acc["keep"]) if acc["keep"] else np.zeros((0, 10), bool)
        scores = np.concatenate(acc["scores"]) if acc["scores"] else np.zeros(0)
        aps, curve = [], None
        for t in range(len(IOU_THRESHOLDS)):
            ap, rec, prec = average_precision(tp[keep[:, t], t], scores[keep[:, t]],
                                              acc["positives"])
            aps.append(ap)
            if t == 0:
                curve = (rec, prec)
        k0 = keep[:, 0]
        at_conf = scores[k0] >= conf
        hits = tp[k0, 0][at_conf]
        result["buckets"][name] = {
            "faces": acc["positives"], "AP50": aps[0], "AP50_95": float(np.mean(aps)),
            "precision": float(hits.mean()) if len(hits) else 0.0,
            "recall": float(hits.sum() / acc["positives"]) if acc["positives"] else float("nan"),
            "curve": {"recall": curve[0][::max(1, len(curve[0]) // 400)].tolist(),
                      "precision": curve[1][::max(1, len(curve[1]) // 400)].tolist()},
        }
    all_ = result["buckets"]["all"]
    result.update(AP50=all_["AP50"], AP50_95=all_["AP50_95"], precision=all_["precision"],
                  recall=all_["recall"])
    return result


def format_table(result: dict) -> str:
    lines = [f"{'faces':<8} {'count':>7} {'AP50':>7} {'AP50-95':>8} {'P@conf':>7} {'R@conf':>7}"]
    for name, b in result["buckets"].items():
        lines.append(f"{name:<8} {b['faces']:>7d} {b['AP50']:>7.4f} {b['AP50_95']:>8.4f} "
                     f"{b['precision']:>7.3f} {b['recall']:>7.3f}")
    lines.append(f"{result['images']} images; P/R at confidence >= {result['operating_conf']}; "
                 "small < 32 px high, medium 32-96, large > 96")
    return "\n".join(lines)


def plot_pr(result: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, b in result["buckets"].items():
        if b["curve"]["recall"]:
            ax.plot(b["curve"]["recall"], b["curve"]["precision"],
                    label=f"{name} (AP50 {b['AP50']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
