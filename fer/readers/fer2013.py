"""FER2013 as Kaggle ships it: one CSV with `emotion,pixels,Usage`, 48x48 grayscale as text."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer.errors import FerError
from fer.labels import FER2013_CODES
from fer.readers.base import Sample, SkipLog

REQUIRED = ("emotion", "pixels")
#: Our split names mapped to the `Usage` column.
USAGES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
SIDE = 48


def usage_for(split: str) -> str | None:
    """The `Usage` value a split selects (None = every row)."""
    if split == "all":
        return None
    lowered = {v.lower(): v for v in USAGES.values()}
    if split.lower() in lowered:
        return lowered[split.lower()]
    if split in USAGES:
        return USAGES[split]
    raise FerError(f"unknown FER2013 split '{split}': use train, val, test, all or a Usage value "
                   f"({', '.join(USAGES.values())})")


def is_fer2013_header(header: list[str]) -> bool:
    names = {h.strip().lower() for h in header}
    return all(r in names for r in REQUIRED)


def read_fer2013_csv(path: Path, split: str, skips: SkipLog) -> list[Sample]:
    """Rows of the requested split; a malformed row is skipped and counted, a wrong header is fatal."""
    usage = usage_for(split)
    samples: list[Sample] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not is_fer2013_header(header):
            raise FerError(f"{path}: header {header!r} is not FER2013's 'emotion,pixels,Usage'; "
                           "check that this is the Kaggle fer2013.csv")
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        i_emo, i_pix, i_use = cols["emotion"], cols["pixels"], cols.get("usage")
        for line_no, row in enumerate(reader, start=2):
            where = f"{path.name}:{line_no}"
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                skips.add("malformed row", where)
                continue
            if usage is not None and i_use is not None and row[i_use].strip() != usage:
                continue
            try:
                code = int(row[i_emo])
            except ValueError:
                skips.add("malformed row", where)
                continue
            if code not in FER2013_CODES:
                skips.add("unknown label code", where)
                continue
            try:
                pixels = np.array(row[i_pix].split(), dtype=np.int32)
            except ValueError:
                skips.add("malformed row", where)
                continue
            if pixels.size != SIDE * SIDE or pixels.min() < 0 or pixels.max() > 255:
                skips.add("malformed row", where)
                continue
            samples.append(Sample(key=f"{path.name}:{line_no}", label=FER2013_CODES[code],
                                  pixels=pixels.astype(np.uint8).reshape(SIDE, SIDE)))
    return samples
