"""AffectNet's official release: `Manually_Annotated_file_lists/{training,validation}.csv` with face
boxes and expression codes 0-10, images under `Manually_Annotated_Images/`."""

from __future__ import annotations

import csv
from pathlib import Path

from fer.errors import FerError
from fer.labels import AFFECTNET_CODES, AFFECTNET_NON_EXPRESSIONS, CONTEMPT
from fer.readers.base import Sample, SkipLog

COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal")
LISTS_DIR = "Manually_Annotated_file_lists"
IMAGES_DIR = "Manually_Annotated_Images"
SPLIT_FILES = {"train": "training.csv", "val": "validation.csv"}


def is_affectnet_header(header: list[str]) -> bool:
    return bool(header) and header[0].strip() == COLUMNS[0]


def _looks_like_data(row: list[str]) -> bool:
    """validation.csv is shipped without a header in some copies: accept a first row of data."""
    if len(row) != len(COLUMNS):
        return False
    try:
        [float(row[i]) for i in (1, 2, 3, 4, 6)]
    except ValueError:
        return False
    return True


def csv_for_split(root: Path, split: str) -> Path:
    name = SPLIT_FILES.get(split.lower(), split if split.endswith(".csv") else None)
    if name is None:
        raise FerError(f"unknown AffectNet split '{split}': use train or val")
    path = root / LISTS_DIR / name
    if not path.is_file():
        raise FerError(f"{path} not found: AffectNet's official layout has "
                       f"{LISTS_DIR}/training.csv and validation.csv (see datasets.txt)")
    return path


def images_root_for(csv_path: Path) -> Path:
    """Images sit beside the file-lists folder; fall back to the CSV's grandparent."""
    base = csv_path.parent.parent
    return base / IMAGES_DIR if (base / IMAGES_DIR).is_dir() else base


def read_affectnet_csv(csv_path: Path, skips: SkipLog, include_contempt: bool = False,
                       images_root: Path | None = None) -> list[Sample]:
    """Records with a usable box and one of the 7 (or 8) expressions; everything else is counted."""
    images_root = images_root or images_root_for(csv_path)
    samples: list[Sample] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            raise FerError(f"{csv_path} is empty; expected AffectNet's header {','.join(COLUMNS)}")
        if is_affectnet_header(first):
            if [c.strip() for c in first[: len(COLUMNS)]] != list(COLUMNS):
                raise FerError(f"{csv_path}: header {first!r} differs from AffectNet's "
                               f"{','.join(COLUMNS)}")
            rows = enumerate(reader, start=2)
        elif _looks_like_data(first):
            rows = enumerate([first, *reader], start=1)
        else:
            raise FerError(f"{csv_path}: header {first!r} is not AffectNet's "
                           f"{','.join(COLUMNS)}")
        for line_no, row in rows:
            where = f"{csv_path.name}:{line_no}"
            if not row:
                continue
            if len(row) != len(COLUMNS):
                skips.add("malformed row", where)
                continue
            try:
                x, y, w, h = (int(round(float(v))) for v in row[1:5])
                code = int(row[6])
            except ValueError:
                skips.add("malformed row", where)
                continue
            if code in AFFECTNET_NON_EXPRESSIONS:
                skips.add(f"not an expression ({AFFECTNET_NON_EXPRESSIONS[code]})", where)
                continue
            label = AFFECTNET_CODES.get(code)
            if label is None:
                skips.add("unknown label code", where)
                continue
            if label == CONTEMPT and not include_contempt:
                skips.add("contempt excluded", where)
                continue
            if w <= 0 or h <= 0:
                skips.add("degenerate box", where)
                continue
            rel = row[0].strip()
            samples.append(Sample(key=rel, label=label, path=images_root / rel, box=(x, y, w, h)))
    return samples
