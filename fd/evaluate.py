"""`fd-eval`: AP50 (all-point interpolated), AP50-95, AP by face height, AP50 per event and their
mean, and P/R at the operating confidence, for any detector back end, on a YOLO val set or a WIDER
FACE val layout; plus the close-up check (the share of faces found when one face fills the frame).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from fd.boxes import iou
from fd.errors import FdError
from fer.readers.base import SkipLog

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
BUCKETS = {"all": (0, np.inf), "small": (0, 32), "medium": (32, 96), "large": (96, np.inf)}


@dataclass
class GroundTruth:
    path: Path
    boxes: np.ndarray  # N x 4 xyxy pixels
    event: str = ""  # the WIDER FACE event (or source) it belongs to; "" when unknown
    image: np.ndarray | None = None  # already decoded (generated close-ups); else read from path


def _events_manifest(base: Path) -> dict[str, str]:
    path = base / "events.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def yolo_val_items(root: Path) -> Iterator[GroundTruth]:
    """A YOLO dataset (its data.yaml or its root) -> val images with their boxes."""
    import cv2

    if root.is_file():
        try:
            data = yaml.safe_load(root.read_text(errors="replace"))
        except yaml.YAMLError:
            data = None
        if not isinstance(data, dict) or "val" not in data:
            raise FdError(f"{root} is not a dataset YAML with a 'val' entry: pass fd-prep's output "
                          "folder, its data.yaml, or a WIDER FACE root")
        base = Path(data.get("path") or root.parent)
        images = base / data["val"]
    else:
        images = root / "images" / "val"
    if not images.is_dir():
        raise FdError(f"no val images at {images}")
    events = _events_manifest(images.parent.parent)
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
        yield GroundTruth(path, boxes.reshape(-1, 4), events.get(f"{images.name}/{path.stem}", ""))


def widerface_val_items(root: Path, split: str = "val", skips: SkipLog | None = None,
                        exclude: tuple[str, ...] = ()) -> Iterator[GroundTruth]:
    """WIDER FACE's own layout; images missing on disk and excluded events are counted in `skips`."""
    from fd.convert.widerface import read_widerface
    from fd.dataset import event_of, exclude_events

    skips = skips if skips is not None else SkipLog()
    for record in exclude_events(read_widerface(root, split, skips), exclude, skips):
        yield GroundTruth(record.path, np.array(record.boxes, np.float64).reshape(-1, 4),
                          event_of(record))


def only_events(items: Iterator[GroundTruth], names: tuple[str, ...]) -> Iterator[GroundTruth]:
    from fd.dataset import event_matches

    for item in items:
        if not names or event_matches(item.event, names):
            yield item


def closeup_items(items: list[GroundTruth], per_image: int = 4, seed: int = 0
                  ) -> Iterator[tuple[GroundTruth, int, int]]:
    """Close-ups built from validation images: for each face >= 60 px (up to `per_image` per
    image), a crop in which it fills 30-90% of the height, at a varied aspect ratio and offset.
    Yields (crop with its boxes, index of the face the crop was made for among the crop's boxes,
    and among the source image's). Deterministic."""
    import cv2

    from fd.generate import CLOSEUP_MIN_FACE, closeup, rng_for

    for item in items:
        sides = np.maximum(item.boxes[:, 2] - item.boxes[:, 0], item.boxes[:, 3] - item.boxes[:, 1])
        large = np.flatnonzero(sides >= CLOSEUP_MIN_FACE)[:per_image]
        if not len(large):
            continue
        image = cv2.imread(str(item.path))
        if image is None:
            continue
        boxes = [tuple(map(float, b)) for b in item.boxes]
        for i in large:
            made = closeup(image, boxes, rng_for(f"{item.path.name}/{i}", "closeup-eval", seed),
                           face_index=int(i), max_side=10**6)
            if made is None:
                continue
            crop, kept, target = made
            yield GroundTruth(item.path, np.array(kept, np.float64).reshape(-1, 4), item.event,
                              crop), target, int(i)


def closeup_found(detector, crop: GroundTruth, target: int, conf: float) -> tuple[bool, int]:
    """Whether the detector boxes face `target` of a close-up (IoU >= 0.5 at the operating
    confidence), and how many boxes it gave at that confidence."""
    boxes, scores = detector.detect(crop.image)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
    boxes = boxes[scores >= conf]
    hit = bool(len(boxes)) and bool(iou(boxes, crop.boxes[target:target + 1]).max() >= 0.5)
    return hit, len(boxes)


def closeup_check(detector, items: list[GroundTruth], conf: float, per_image: int = 4,
                  seed: int = 0, progress: bool = True) -> dict:
    """The share of close-up faces found at the operating confidence (IoU >= 0.5)."""
    from tqdm import tqdm

    found = total = 0
    missed: list[str] = []
    nothing = 0
    for crop, target, _ in tqdm(list(closeup_items(items, per_image, seed)),
                                desc="fd-eval close-ups", unit="img", disable=not progress,
                                dynamic_ncols=True):
        hit, boxes = closeup_found(detector, crop, target, conf)
        total += 1
        nothing += not boxes
        if hit:
            found += 1
        elif len(missed) < 10:
            missed.append(crop.path.name)
    return {"faces": total, "found": found, "found_share": found / total if total else float("nan"),
            "images_with_no_detection": nothing, "operating_conf": conf, "per_image": per_image,
            "seed": seed, "missed_examples": missed}


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
    per_event: dict[str, dict] = {}
    images = 0
    for item in tqdm(list(items), desc="fd-eval", unit="img", disable=not progress,
                     dynamic_ncols=True):
        image = item.image if item.image is not None else cv2.imread(str(item.path))
        if image is None:
            continue
        images += 1
        boxes, scores = detector.detect(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
        overlaps = iou(boxes, item.boxes)  # once per image, shared by every size bucket
        for name, (lo, hi) in BUCKETS.items():
            tp, keep, positives = match(boxes, scores, item.boxes, lo, hi, overlaps)
            for acc in (per_bucket[name], per_event.setdefault(item.event or "?", {}).setdefault(
                    name, {"tp": [], "keep": [], "scores": [], "positives": 0})):
                acc["tp"].append(tp)
                acc["keep"].append(keep)
                acc["scores"].append(scores)
                acc["positives"] += positives
    if not images:
        raise FdError("no readable validation images")
    result: dict = {"images": images, "operating_conf": conf, "buckets": {}, "events": {}}
    for name, acc in per_bucket.items():
        result["buckets"][name] = _summarise(acc, conf)
    all_ = result["buckets"]["all"]
    result.update(AP50=all_["AP50"], AP50_95=all_["AP50_95"], precision=all_["precision"],
                  recall=all_["recall"])
    if len(per_event) > 1 or "?" not in per_event:
        for event, buckets in sorted(per_event.items()):
            summary = {b: _summarise(acc, conf, curve=False) for b, acc in buckets.items()}
            result["events"][event] = {
                "images": len(buckets["all"]["tp"]), "faces": summary["all"]["faces"],
                "AP50": summary["all"]["AP50"], "AP50_small": summary["small"]["AP50"],
                "AP50_medium": summary["medium"]["AP50"], "AP50_large": summary["large"]["AP50"]}
        for key in ("AP50", "AP50_small", "AP50_medium", "AP50_large"):
            values = [e[key] for e in result["events"].values() if not np.isnan(e[key])]
            result[f"mean_event_{key}"] = float(np.mean(values)) if values else float("nan")
    return result


def _summarise(acc: dict, conf: float, curve: bool = True) -> dict:
    """AP50, AP50-95 and P/R at `conf` from accumulated per-image matches."""
    tp = np.concatenate(acc["tp"]) if acc["tp"] else np.zeros((0, 10), bool)
    keep = np.concatenate(acc["keep"]) if acc["keep"] else np.zeros((0, 10), bool)
    scores = np.concatenate(acc["scores"]) if acc["scores"] else np.zeros(0)
    aps, pr = [], None
    for t in range(len(IOU_THRESHOLDS) if curve else 1):
        ap, rec, prec = average_precision(tp[keep[:, t], t], scores[keep[:, t]], acc["positives"])
        aps.append(ap)
        if t == 0:
            pr = (rec, prec)
    k0 = keep[:, 0]
    hits = tp[k0, 0][scores[k0] >= conf]
    out = {"faces": acc["positives"], "AP50": aps[0], "AP50_95": float(np.mean(aps)),
           "precision": float(hits.mean()) if len(hits) else 0.0,
           "recall": float(hits.sum() / acc["positives"]) if acc["positives"] else float("nan")}
    if curve:
        out["curve"] = {"recall": pr[0][::max(1, len(pr[0]) // 400)].tolist(),
                        "precision": pr[1][::max(1, len(pr[1]) // 400)].tolist()}
    return out


def format_comparison(results: dict[str, dict]) -> str:
    """Models side by side: AP by size, mean AP50 over events, close-ups found."""
    names = list(results)
    width = max(12, *(len(n) for n in names))
    rows = [("AP50", lambda r: r["AP50"]), ("AP50-95", lambda r: r["AP50_95"])]
    rows += [(f"AP50 {b}", lambda r, b=b: r["buckets"][b]["AP50"]) for b in ("small", "medium", "large")]
    if all("mean_event_AP50" in r for r in results.values()):
        rows += [("event mean AP50", lambda r: r["mean_event_AP50"]),
                 ("event mean small", lambda r: r["mean_event_AP50_small"])]
    if all("closeups" in r for r in results.values()):
        rows.append(("close-ups found", lambda r: r["closeups"]["found_share"]))
    lines = [f"{'':<18}" + "".join(f"{n:>{width + 2}}" for n in names)]
    for label, get in rows:
        lines.append(f"{label:<18}" + "".join(f"{get(results[n]):>{width + 2}.4f}" for n in names))
    return "\n".join(lines)


def format_events(result: dict) -> str:
    if not result.get("events"):
        return ""
    lines = [f"{'event':<28} {'images':>6} {'faces':>6} {'AP50':>7} {'small':>7} {'medium':>7} "
             f"{'large':>7}"]
    for event, e in result["events"].items():
        lines.append(f"{event[:28]:<28} {e['images']:>6d} {e['faces']:>6d} {e['AP50']:>7.4f} "
                     f"{e['AP50_small']:>7.4f} {e['AP50_medium']:>7.4f} {e['AP50_large']:>7.4f}")
    lines.append(f"{'mean over events':<28} {'':>6} {'':>6} {result['mean_event_AP50']:>7.4f} "
                 f"{result['mean_event_AP50_small']:>7.4f} {result['mean_event_AP50_medium']:>7.4f} "
                 f"{result['mean_event_AP50_large']:>7.4f}")
    return "\n".join(lines)


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
