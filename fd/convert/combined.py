"""The pre-combined WIDERFACE+FDDB+LFPW export: one label file in which `# <relative image path>`
starts each image and each following line is a face `x_min y_min x_max y_max` in pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import ImageRecord, clip_box, image_size
from fer.readers.base import SkipLog


def read_combined(label_file: Path, skips: SkipLog, images: Path | None = None
                  ) -> Iterator[ImageRecord]:
    if not label_file.is_file():
        raise FdError(f"combined label file {label_file} not found")
    root = images or label_file.parent
    current: tuple[str, list[tuple[float, ...]]] | None = None
    lines = label_file.read_text(errors="replace").splitlines()

    def finish(name: str, rows: list) -> Iterator[ImageRecord]:
        path = root / name
        if not path.is_file():
            skips.add("missing image on disk", name)
            return
        size = image_size(path)
        if size is None:
            skips.add("unreadable image", name)
            return
        record = ImageRecord("combined", name, path, size=size)
        for x1, y1, x2, y2 in rows:
            box = clip_box((x1, y1, x2, y2), *size) if x2 > x1 and y2 > y1 else None
            if box is None:
                skips.add("degenerate box", name)
                continue
            record.boxes.append(box)
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
