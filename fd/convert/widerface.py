"""WIDER FACE: `wider_face_split/wider_face_{train,val}_bbx_gt.txt` and `WIDER_{split}/images/`.

Each record is an image path line, a face-count line, then one row per face:
`x1 y1 w h blur expression illumination invalid occlusion pose`. An image with no face is written
as `0` + one all-zero row (train) or `1` + one all-zero row (val).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import ImageRecord, open_record
from fer.readers.base import SkipLog

IMAGE_ENDINGS = (".jpg", ".jpeg", ".png")
# The val images of these events are the maintainers' held-out test set: fd-prep leaves them out
# of every dataset unless told otherwise, so no figure this project reports is trained on them.
HELD_OUT_VAL_EVENTS = ("0--Parade", "4--Dancing", "13--Interview", "19--Couple", "20--Family_Group")


def annotation_file(root: Path, split: str) -> Path:
    path = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    if not path.is_file():
        raise FdError(f"{path} not found: WIDER FACE needs wider_face_split/ from "
                      "wider_face_split.zip (see datasets.txt)")
    return path


def _is_name(line: str) -> bool:
    return line.lower().endswith(IMAGE_ENDINGS)


def parse_annotations(text: str, skips: SkipLog, where: str = "bbx_gt"
                      ) -> Iterator[tuple[str, list[list[float]]]]:
    """(image name, rows) per record; a bad line or count is counted, never fatal."""
    lines = [line.strip() for line in text.splitlines()]
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line:
            i += 1
            continue
        if not _is_name(line):
            skips.add("malformed line", f"{where}:{i + 1}")
            i += 1
            continue
        name, start = line, i + 1
        try:
            count = int(lines[start]) if start < n else None
        except ValueError:
            count = None
        if count is None or count < 0:
            skips.add("malformed count", f"{where}:{start + 1}")
            i = start
            while i < n and not _is_name(lines[i]):
                i += 1
            continue
        rows, j = [], start + 1
        while j < n and lines[j] and not _is_name(lines[j]):
            fields = lines[j].split()
            try:
                values = [float(v) for v in fields]
            except ValueError:
                values = None
            if values is None or len(values) < 4:
                skips.add("malformed line", f"{where}:{j + 1}")
            else:
                rows.append(values)
            j += 1
        consumed = j - start - 1
        if consumed != max(count, 1) and not (count == 0 and consumed == 0):
            skips.add("count mismatch", f"{where}:{start + 1}")
        i = j
        yield name, rows


def is_hard(row: list[float]) -> bool:
    """WIDER FACE flags a face as atypical pose, heavy occlusion or heavy blur: the close-ups the
    detector misses most (MODEL_CARD.md, bench/closeup_attributes.py)."""
    if len(row) < 10:
        return False
    blur, occlusion, pose = row[4], row[8], row[9]
    return pose == 1 or occlusion == 2 or blur == 2


def read_widerface(root: Path, split: str, skips: SkipLog, min_size: float = 0.0
                   ) -> Iterator[ImageRecord]:
    """Images present on disk with their valid faces, clipped to the image."""
    ann = annotation_file(root, split)
    images = root / f"WIDER_{split}" / "images"
    for name, rows in parse_annotations(ann.read_text(errors="replace"), skips, ann.name):
        record = open_record("widerface", name, images / name, skips)
        if record is None:
            continue
        for row in rows:
            x, y, w, h = row[:4]
            if not any(row):
                continue  # the no-face placeholder row
            if len(row) >= 8 and row[7] == 1:
                skips.add("invalid flag", name)
                continue
            if w <= 0 or h <= 0:
                skips.add("degenerate box", name)
                continue
            if max(w, h) < min_size:
                skips.add("below minimum size", name)
                continue
            record.add_box((x, y, x + w, y + h), skips, hard=is_hard(row))
        yield record
