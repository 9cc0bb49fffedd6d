"""The pre-combined WIDERFACE+FDDB+LFPW export: one label file in which `# <relative image path>`
starts each image and each following line is a face `x_min y_min x_max y_max` in pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import ImageRecord, open_record
from fer.readers.base import SkipLog


def read_combined(label_file: Path, skips: SkipLog, images: Path | None = None
                  ) -> Iterator[ImageRecord]:
    if not label_file.is_file():
        raise FdError(f"combined label file {label_file} not found")
    root = images or label_file.parent
    current: tuple[str, list[tuple[float, ...]]] | None = None
    lines = label_file.read_text(errors="replace").splitlines()

    def finish(name: str, rows: list) -> Iterator[ImageRecord]:
        record = open_record("combined", name, root / name, skips)
        if record is not None:
            for box in rows:
                record.add_box(box, skips)
            yield record

    for no, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if current:
                yield from finish(*current)
            current = (line[1:].strip(), [])
            continue
        try:
            values = tuple(float(v) for v in line.split())
        except ValueError:
            values = ()
        if current is None or len(values) < 4:
            skips.add("malformed line", f"{label_file.name}:{no}")
            continue
        current[1].append(values[:4])
    if current:
        yield from finish(*current)
