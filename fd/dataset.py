"""Merge converted records, split by image, and write the YOLO layout atomically with a report.

Output (appears all at once; an interrupted run leaves the previous output or nothing):
    OUT/images/{train,val}/*    linked to the originals when possible, copied otherwise
    OUT/labels/{train,val}/*.txt  one `0 cx cy w h` line per face, normalised
    OUT/data.yaml                 absolute paths, one class `face` (yolov8_config.yaml's form)
    OUT/prep_report.json          per source: images read/written, faces, skips by reason
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
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


def split_of(record: ImageRecord, val_fraction: float) -> str:
    """A stable, seedless split: the same image lands in the same split on every run."""
    digest = hashlib.sha1(f"{record.source}/{record.key}".encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") / 2**32 < val_fraction else "train"


def _safe_name(record: ImageRecord) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(record.key).with_suffix(""))).strip("_")
    return f"{record.source}__{stem}{record.path.suffix.lower() or '.jpg'}"


def _place(src: Path, dst: Path, mode: str) -> str:
    """Hard link, else symbolic link, else copy (mode 'link'); or always copy."""
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


def write_dataset(sources: dict[str, Iterable[ImageRecord]], skips: dict[str, SkipLog],
                  out: Path, val_fraction: float = 0.1, mode: str = "link",
                  keep_empty: bool = True, progress: bool = True) -> dict:
    """Write every record into a temporary sibling of `out`, then swap it in."""
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
                split = split_of(record, val_fraction)
                filename = _safe_name(record)
                target = tmp / "images" / split / filename
                if target.exists():
                    report.skips.add("duplicate image", record.key)
                    continue
                how = _place(record.path, target, mode)
                placed[how] = placed.get(how, 0) + 1
                label = tmp / "labels" / split / (Path(filename).stem + ".txt")
                label.write_text("".join(yolo_line(b, *size) + "\n" for b in record.boxes))
                report.images_written += 1
                report.faces += len(record.boxes)
                splits[split] += 1
        if not sum(splits.values()):
            raise FdError("no image was written: every annotated image was missing or skipped "
                          f"({'; '.join(f'{n}: {r.skips.summary()}' for n, r in reports.items())})")
        (tmp / "data.yaml").write_text(yaml.safe_dump({
            "path": str(out), "train": "images/train", "val": "images/val",
            "names": {0: "face"}}, sort_keys=False))
        report = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "out": str(out),
            "val_fraction": val_fraction, "images": splits, "placed": placed,
            "faces": sum(r.faces for r in reports.values()),
            "sources": {n: r.as_dict() for n, r in reports.items()},
        }
        (tmp / "prep_report.json").write_text(json.dumps(report, indent=2) + "\n")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return report
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
