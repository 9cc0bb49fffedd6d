"""Folder-per-class layouts: FER2013 and AffectNet exports (`train/<class>/*.jpg`), numeric folders
with a mapping, and the 96x96 AffectNet export whose `labels.csv` has `pth,label[,relFCs]`."""

from __future__ import annotations

import csv
from pathlib import Path

from fer.errors import FerError
from fer.labels import CONTEMPT, canonical, resolve_folder_name
from fer.readers.base import IMAGE_SUFFIXES, Sample, SkipLog

LABELS_CSV = "labels.csv"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_class_folders(root: Path, skips: SkipLog, include_contempt: bool = False,
                       numeric: dict[int, str] | None = None) -> list[Sample]:
    """Every image under `root/<class>/`; an unknown class folder is a fatal, named error."""
    folders = class_folders(root)
    if not folders:
        raise FerError(f"{root} has no class folders; expected <class>/<image> (see datasets.txt)")
    samples: list[Sample] = []
    for folder in folders:
        label = resolve_folder_name(folder.name, numeric)
        images = _images_in(folder)
        if label == CONTEMPT and not include_contempt:
            for p in images:
                skips.add("contempt excluded", str(p.relative_to(root)))
            continue
        samples.extend(Sample(key=str(p.relative_to(root)), label=label, path=p) for p in images)
    if not samples:
        raise FerError(f"{root} has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return samples


def read_labels_csv(root: Path, skips: SkipLog, include_contempt: bool = False) -> list[Sample]:
    """The AffectNet 96x96 export: `labels.csv` rows `pth,label` relative to `root`."""
    path = root / LABELS_CSV
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        if "pth" not in fields or "label" not in fields:
            raise FerError(f"{path}: header {reader.fieldnames!r} lacks the columns 'pth,label' "
                           "of the AffectNet export")
        reader.fieldnames = fields
        samples: list[Sample] = []
        for line_no, row in enumerate(reader, start=2):
            where = f"{LABELS_CSV}:{line_no}"
            rel, name = (row.get("pth") or "").strip(), (row.get("label") or "").strip()
            if not rel or not name or None in row:
                skips.add("malformed row", where)
                continue
            label = canonical(name)
            if label is None:
                skips.add("unknown label", where)
                continue
            if label == CONTEMPT and not include_contempt:
                skips.add("contempt excluded", where)
                continue
            samples.append(Sample(key=rel, label=label, path=root / rel))
    return samples
