"""Find out which layout a dataset path has and read it into `Sample` records.

A dataset is named as `PATH` or `PATH#SPLIT`. Without a split, the role picks one: training data
reads the train split, validation/evaluation data the val split (FER2013 PublicTest, AffectNet
validation.csv, a `val/` or `test/` folder).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fer.errors import FerError
from fer.labels import NUMERIC_PRESETS
from fer.readers.affectnet import (
    LISTS_DIR,
    csv_for_split,
    is_affectnet_header,
    read_affectnet_csv,
)
from fer.readers.base import Sample, SkipLog
from fer.readers.fer2013 import is_fer2013_header, read_fer2013_csv
from fer.readers.folders import LABELS_CSV, read_class_folders, read_labels_csv

__all__ = ["Dataset", "Sample", "SkipLog", "read_dataset", "parse_ref"]

SPLIT_DIR_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "publictest", "test"),
    "test": ("test", "privatetest"),
}
ALL_SPLIT_DIRS = {n for names in SPLIT_DIR_NAMES.values() for n in names}


@dataclass
class Dataset:
    samples: list[Sample]
    skips: SkipLog
    format: str
    source: str  # resolved path and split, for reports and cache names


def parse_ref(ref: str | Path) -> tuple[Path, str | None]:
    text = str(ref)
    path, _, split = text.partition("#")
    return Path(path).expanduser(), (split or None)


def _split_dir(root: Path, split: str) -> Path | None:
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in SPLIT_DIR_NAMES.get(split, (split.lower(),)):
        if name in children:
            return children[name]
    return None


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), [])


def read_dataset(ref: str | Path, role: str = "train", include_contempt: bool = False,
                 numeric: str | None = None) -> Dataset:
    """Read any supported layout. `role` is 'train' or 'val'; `numeric` names a preset for
    numbered class folders ('fer2013' or 'affectnet')."""
    path, split = parse_ref(ref)
    split = split or role
    if not path.exists():
        raise FerError(f"dataset {path} does not exist; see datasets.txt for the expected layouts")
    numeric_map = None
    if numeric is not None:
        if numeric not in NUMERIC_PRESETS:
            raise FerError(f"unknown numeric label preset '{numeric}': use "
                           f"{' or '.join(NUMERIC_PRESETS)}")
        numeric_map = NUMERIC_PRESETS[numeric]
    skips = SkipLog()
    try:
        if path.is_file():
            if path.suffix.lower() != ".csv":
                raise FerError(f"{path} is a file but not a CSV; give a FER2013/AffectNet CSV or a "
                               "dataset folder")
            header = _csv_header(path)
            if is_fer2013_header(header):
                samples, fmt = read_fer2013_csv(path, split, skips), "fer2013-csv"
            elif is_affectnet_header(header) or path.parent.name == LISTS_DIR:
                samples = read_affectnet_csv(path, skips, include_contempt)
                fmt = "affectnet-csv"
            else:
                raise FerError(f"{path}: unrecognised CSV header {header[:4]!r}; expected FER2013's "
                               "'emotion,pixels,Usage' or AffectNet's 'subDirectory_filePath,...'")
            return Dataset(samples, skips, fmt, f"{path.resolve()}#{split}")

        if (path / LISTS_DIR).is_dir():
            csv_path = csv_for_split(path, split)
            samples = read_affectnet_csv(csv_path, skips, include_contempt)
            return Dataset(samples, skips, "affectnet", f"{csv_path.resolve()}")
        root = path
        children = {p.name.lower() for p in path.iterdir() if p.is_dir()}
        if children & ALL_SPLIT_DIRS:
            found = _split_dir(path, split)
            if found is None:
                raise FerError(f"{path} has split folders {sorted(children & ALL_SPLIT_DIRS)} but "
                               f"none for '{split}'; name one as {path}#<folder>")
            root = found
        if (root / LABELS_CSV).is_file():
            samples, fmt = read_labels_csv(root, skips, include_contempt), "affectnet-export"
        else:
            samples = read_class_folders(root, skips, include_contempt, numeric_map)
            fmt = "folders"
        return Dataset(samples, skips, fmt, str(root.resolve()))
    except PermissionError as e:
        raise FerError(f"cannot read {e.filename}: permission denied") from e
    except UnicodeDecodeError as e:
        raise FerError(f"{path} is not a text CSV ({e.reason}); check the file") from e
