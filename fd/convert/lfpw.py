"""LFPW in the 300-W layout: `lfpw/{trainset,testset}/<name>.{png,jpg}` with `<name>.pts`
(`version: 1`, `n_points: 68`, `{`, 68 `x y` lines, `}`).

The 68 landmarks stop at the eyebrows, while detector boxes (WIDER FACE style) include the
forehead. The box is the landmarks' extent grown by `margin` = (side, top, bottom) fractions of
its width/height: by default 5% each side, 30% on top for the forehead, 5% below the chin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import Box, ImageRecord, open_record
from fer.readers.base import SkipLog

DEFAULT_MARGIN = (0.05, 0.30, 0.05)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parse_pts(text: str) -> list[tuple[float, float]]:
    """The landmark list of a .pts file; ValueError with the reason when malformed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError("no { } block") from None
    header = dict(line.split(":", 1) for line in lines[:start] if ":" in line)
    points = [tuple(float(v) for v in line.split()) for line in lines[start + 1:end]]
    if any(len(p) != 2 for p in points):
        raise ValueError("a point is not 'x y'")
    expected = int(header.get("n_points", len(points)))
    if len(points) != expected or not points:
        raise ValueError(f"{len(points)} points, header says {expected}")
    return points  # type: ignore[return-value]


def landmark_box(points: list[tuple[float, float]],
                 margin: tuple[float, float, float] = DEFAULT_MARGIN) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
    w, h = x2 - x1, y2 - y1
    side, top, bottom = margin
    return (x1 - side * w, y1 - top * h, x2 + side * w, y2 + bottom * h)


def read_lfpw(root: Path, skips: SkipLog, margin: tuple[float, float, float] = DEFAULT_MARGIN
              ) -> Iterator[ImageRecord]:
    base = root / "lfpw" if (root / "lfpw").is_dir() else root
    sets = [base / s for s in ("trainset", "testset") if (base / s).is_dir()]
    if not sets:
        raise FdError(f"no trainset/ or testset/ under {base}: LFPW needs the 300-W layout "
                      "(see datasets.txt)")
    for folder in sets:
        for pts in sorted(folder.glob("*.pts")):
            key = f"{folder.name}/{pts.stem}"
            image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES
                          if pts.with_suffix(s).is_file()), None)
            record = open_record("lfpw", key, image, skips)
            if record is None:
                continue
            try:
                points = parse_pts(pts.read_text(errors="replace"))
            except ValueError:
                skips.add("malformed landmarks", key)
                continue
            record.add_box(landmark_box(points, margin), skips)
            if record.boxes:
                yield record
