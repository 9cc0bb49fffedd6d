"""Merge converted records, split them (by image, or whole events held out), optionally add
generated training images, and write the YOLO layout atomically with a report.

Output (appears all at once; an interrupted run leaves the previous output or nothing):
    OUT/images/{train,val}/*    linked to the originals when possible, copied otherwise
    OUT/labels/{train,val}/*.txt  one `0 cx cy w h` line per face, normalised
    OUT/data.yaml                 absolute paths, one class `face` (yolov8_config.yaml's form)
    OUT/events.json               each image's event ('split/stem' -> event), for fd-eval
    OUT/prep_report.json          per source: images read/written, faces, skips by reason;
                                  the validation events; what was generated

Generated images (fd.generate) are made from training images only, so no validation face leaks
into training through a crop or a pasted face.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from fd.errors import FdError
from fd.records import ImageRecord, image_size
from fer.readers.base import SkipLog


@dataclass
class SourceReport:
    images_read: int = 0
    images_written: int = 0
    faces: int = 0
    skips: SkipLog = field(default_factory=SkipLog)

    def as_dict(self) -> dict:
        return {"images_read": self.images_read, "images_written": self.images_written,
                "faces": self.faces, "skipped": self.skips.as_dict()}


@dataclass
class GenerateSpec:
    """How many generated images per real training image (fractions; 0 turns one off)."""

    closeups: float = 0.0
    small_faces: float = 0.0
    harden: float = 0.0
    seed: int = 0
    # share of training images with a face >= 60 px flagged hard (turned, heavily covered or
    # blurred) that get one more close-up, centred on such a face
    hard_closeups: float = 0.0

    def any(self) -> bool:
        return self.closeups > 0 or self.small_faces > 0 or self.harden > 0 \
            or self.hard_closeups > 0


def event_of(record: ImageRecord) -> str:
    """The group a record is held out with: its WIDER FACE event folder, else its source."""
    if record.source == "widerface" and "/" in record.key:
        return record.key.split("/", 1)[0]
    return record.source


def event_matches(event: str, names: Iterable[str]) -> bool:
    """'19--Couple', 'Couple' and 'couple' all name the event folder '19--Couple'."""
    short = event.split("--", 1)[-1].lower()
    return any(n == event or n.lower() == short for n in names)


def _fraction_of(key: str, salt: str = "") -> float:
    digest = hashlib.sha1(f"{salt}{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def split_of(record: ImageRecord, val_fraction: float, val_events: Iterable[str] = ()) -> str:
    """A stable, seedless split: the same image lands in the same split on every run. Images of
    a held-out event are all validation; the rest are split by image at `val_fraction`."""
    if val_events and event_matches(event_of(record), val_events):
        return "val"
    return "val" if _fraction_of(f"{record.source}/{record.key}") < val_fraction else "train"


def exclude_events(records: Iterable[ImageRecord], names: Iterable[str], skips: SkipLog
                   ) -> Iterator[ImageRecord]:
    """Leave out every image of the named events (counted), e.g. a test set kept by others."""
    names = tuple(names)
    for record in records:
        if names and event_matches(event_of(record), names):
            skips.add("excluded event", record.key)
            continue
        yield record


def _safe_name(record: ImageRecord) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(record.key).with_suffix(""))).strip("_")
    return f"{record.source}__{stem}{record.path.suffix.lower() or '.jpg'}"


def shrink(image, max_side: int | None):
    """`image` with its long side brought down to `max_side` (never enlarged): YOLO labels are
    relative to the image's size, so they hold for the smaller copy unchanged."""
    import cv2

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    ratio = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * ratio)), max(1, round(h * ratio))),
                      interpolation=cv2.INTER_AREA)


def _place(src: Path, dst: Path, mode: str, size: tuple[int, int],
           max_side: int | None = None) -> str:
    """Hard link, else symbolic link, else copy (mode 'link'); or always copy; an image larger
    than `max_side` is written shrunk instead (a dataset light enough to carry elsewhere)."""
    if max_side and max(size) > max_side:
        import cv2

        image = cv2.imread(str(src))
        if image is not None:
            if not cv2.imwrite(str(dst), shrink(image, max_side), [cv2.IMWRITE_JPEG_QUALITY, 90]):
                raise FdError(f"cannot write {dst}")
            return "shrunk"
    if mode == "link":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError:
            try:
                os.symlink(src.resolve(), dst)
                return "symlink"
            except OSError:
                pass
    shutil.copy2(src, dst)
    return "copy"


def yolo_line(box: tuple[float, float, float, float], width: int, height: int) -> str:
    x1, y1, x2, y2 = box
    return (f"0 {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")


def _content_hash(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_dataset(sources: dict[str, Iterable[ImageRecord]], skips: dict[str, SkipLog],
                  out: Path, val_fraction: float = 0.1, mode: str = "link",
                  keep_empty: bool = True, progress: bool = True, val_events: Iterable[str] = (),
                  generate: GenerateSpec | None = None, max_side: int | None = None) -> dict:
    """Write every record into a temporary sibling of `out`, then swap it in; with `max_side`,
    every image (generated ones too) is at most that many pixels on its long side."""
    val_events = tuple(val_events)
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FdError(f"cannot create {out.parent}: {e.strerror}") from e
    if not os.access(out.parent, os.W_OK):
        raise FdError(f"output folder {out.parent} is not writable")
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run; never trusted
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    reports = {name: SourceReport(skips=skips[name]) for name in sources}
    splits = {"train": 0, "val": 0}
    placed: dict[str, int] = {}
    seen: set[str] = set()
    events: dict[str, dict[str, int]] = {}
    manifest: dict[str, str] = {}  # split/stem -> event, so fd-eval can report per event
    kept_train: list[ImageRecord] = []
    generated: dict = {}
    try:
        for split in ("train", "val"):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
        for name, records in sources.items():
            report = reports[name]
            for record in tqdm(records, desc=f"fd-prep {name}", unit="img", disable=not progress,
                               dynamic_ncols=True):
                report.images_read += 1
                if not record.boxes and not keep_empty:
                    report.skips.add("no faces left", record.key)
                    continue
                size = record.size or image_size(record.path)
                if size is None:
                    report.skips.add("unreadable image", record.key)
                    continue
                split = split_of(record, val_fraction, val_events)
                filename = _safe_name(record)
                target = tmp / "images" / split / filename
                if target.exists():
                    report.skips.add("duplicate image", record.key)
                    continue
                digest = _content_hash(record.path)
                if digest in seen:  # the same photo under two names would straddle the split
                    report.skips.add("duplicate content", record.key)
                    continue
                seen.add(digest)
                how = _place(record.path, target, mode, size, max_side)
                placed[how] = placed.get(how, 0) + 1
                label = tmp / "labels" / split / (Path(filename).stem + ".txt")
                label.write_text("".join(yolo_line(b, *size) + "\n" for b in record.boxes))
                report.images_written += 1
                report.faces += len(record.boxes)
                splits[split] += 1
                counts = events.setdefault(f"{name}:{event_of(record)}", {"train": 0, "val": 0})
                counts[split] += 1
                manifest[f"{split}/{Path(filename).stem}"] = event_of(record)
                if split == "train" and generate is not None and generate.any():
                    kept_train.append(ImageRecord(record.source, record.key, record.path,
                                                  list(record.boxes), size, set(record.hard)))
        if not sum(splits.values()):
            raise FdError("no image was written: every annotated image was missing or skipped "
                          f"({'; '.join(f'{n}: {r.skips.summary()}' for n, r in reports.items())})")
        seen_events = sorted({key.split(":", 1)[1] for key in events})
        unmatched = [n for n in val_events if not any(event_matches(e, [n]) for e in seen_events)]
        if unmatched:  # a typo would quietly validate on random images of the training scenes
            raise FdError(f"--val-events {', '.join(unmatched)}: no image of such an event or "
                          f"source; these were read: {', '.join(seen_events[:12])}"
                          f"{' ...' if len(seen_events) > 12 else ''}")
        if kept_train:
            generated = _write_generated(kept_train, generate, tmp, progress, max_side)
            splits["train"] += sum(g["images"] for g in generated.values())
        (tmp / "data.yaml").write_text(yaml.safe_dump({
            "path": str(out), "train": "images/train", "val": "images/val",
            "names": {0: "face"}}, sort_keys=False))
        report = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "out": str(out),
            "val_fraction": val_fraction, "val_events": list(val_events), "max_side": max_side,
            "images": splits,
            "placed": placed, "events": events, "generated": generated,
            "faces": sum(r.faces for r in reports.values()),
            "sources": {n: r.as_dict() for n, r in reports.items()},
        }
        (tmp / "prep_report.json").write_text(json.dumps(report, indent=2) + "\n")
        (tmp / "events.json").write_text(json.dumps(manifest, indent=0) + "\n")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return report
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_generated(records: list[ImageRecord], spec: GenerateSpec, tmp: Path,
                     progress: bool, max_side: int | None = None) -> dict:
    """Close-ups, pasted small faces and hardened copies of training images, as new files."""
    import cv2

    from fd import generate as gen

    stats = {k: {"images": 0, "faces": 0}
             for k in ("closeup", "closeup_hard", "small_faces", "harden")}
    transform = gen.hardening_transform() if spec.harden > 0 else None
    donors: list[gen.FacePatch] = []
    images_dir, labels_dir = tmp / "images" / "train", tmp / "labels" / "train"

    def save(kind: str, record: ImageRecord, image, boxes) -> None:
        stem = Path(_safe_name(record)).stem
        name = f"gen-{kind}__{stem}"
        cv2.imwrite(str(images_dir / f"{name}.jpg"), shrink(image, max_side),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        h, w = image.shape[:2]  # the labels are relative: the same for the shrunk copy
        (labels_dir / f"{name}.txt").write_text("".join(yolo_line(b, w, h) + "\n" for b in boxes))
        stats[kind]["images"] += 1
        stats[kind]["faces"] += len(boxes)

    shares = {"closeup": spec.closeups, "small": spec.small_faces, "harden": spec.harden,
              "closeup_hard": spec.hard_closeups}

    def picked(record: ImageRecord, kind: str) -> bool:
        """Whether this image gets a `kind` copy: a stable draw per image, kind and seed (a hard
        close-up only where a face is flagged hard)."""
        if kind == "closeup_hard" and not record.hard:
            return False
        return _fraction_of(record.key, f"{spec.seed}/{kind}") < shares[kind]

    wanted = [r for r in records if any(picked(r, kind) for kind in shares)]
    for record in tqdm(wanted, desc="fd-prep generate", unit="img", disable=not progress,
                       dynamic_ncols=True):
        image = cv2.imread(str(record.path))
        if image is None:
            continue
        if picked(record, "closeup"):
            made = gen.closeup(image, record.boxes, gen.rng_for(record.key, "closeup", spec.seed))
            if made is not None:
                save("closeup", record, made[0], made[1])
        if picked(record, "closeup_hard"):
            made = gen.closeup(image, record.boxes,
                               gen.rng_for(record.key, "closeup_hard", spec.seed),
                               among=record.hard_faces())
            if made is not None:
                save("closeup_hard", record, made[0], made[1])
        if picked(record, "small") and donors:
            pasted, boxes = gen.paste_small_faces(image, record.boxes, donors,
                                                  gen.rng_for(record.key, "small", spec.seed))
            save("small_faces", record, pasted, boxes)
        if picked(record, "harden"):
            save("harden", record, gen.harden(image, transform,
                                              gen.rng_for(record.key, "harden", spec.seed)),
                 record.boxes)
        # donors come from images already seen, so the result does not depend on memory size
        if len(donors) < 400:
            donors.extend(gen.face_patches(image, record.boxes, limit=2))
    return stats
