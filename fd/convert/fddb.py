"""FDDB: `FDDB-folds/FDDB-fold-NN-ellipseList.txt` and `originalPics/<name>.jpg`.

Each record is an image name (no extension), a face count, then one ellipse per face:
`major_radius minor_radius angle center_x center_y 1` (angle in radians, of the major axis).

FDDB ellipses run from the top of the forehead to the chin, taller than WIDER FACE boxes. The
tight box of the ellipse is exact; `scale` = (sx, sy) then resizes it about its centre so a user
can match the WIDER style (e.g. (1.0, 0.9)); the default keeps the tight box.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import Box, ImageRecord, open_record
from fer.readers.base import SkipLog


def ellipse_box(major: float, minor: float, angle: float, cx: float, cy: float) -> Box:
    """Tight axis-aligned box of a rotated ellipse (closed form: half extents
    sqrt(a²cos²t + b²sin²t) and sqrt(a²sin²t + b²cos²t))."""
    c, s = math.cos(angle), math.sin(angle)
    hx = math.sqrt((major * c) ** 2 + (minor * s) ** 2)
    hy = math.sqrt((major * s) ** 2 + (minor * c) ** 2)
    return (cx - hx, cy - hy, cx + hx, cy + hy)


def scale_box(box: Box, sx: float, sy: float) -> Box:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) / 2 * sx, (box[3] - box[1]) / 2 * sy
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def fold_files(root: Path) -> list[Path]:
    folds = root / "FDDB-folds" if (root / "FDDB-folds").is_dir() else root
    files = sorted(folds.glob("FDDB-fold-*-ellipseList.txt"))
    if not files:
        raise FdError(f"no FDDB-fold-NN-ellipseList.txt under {folds}; FDDB needs FDDB-folds/ "
                      "from FDDB-folds.tgz (see datasets.txt)")
    return files


def parse_ellipse_list(text: str, skips: SkipLog, where: str
                       ) -> Iterator[tuple[str, list[tuple[float, ...]]]]:
    lines = [line.strip() for line in text.splitlines()]
    i, n = 0, len(lines)
    while i < n:
        name = lines[i]
        if not name:
            i += 1
            continue
        try:
            count = int(lines[i + 1]) if i + 1 < n else -1
        except ValueError:
            count = -1
        if count < 0 or "/" not in name:
            skips.add("malformed line", f"{where}:{i + 1}")
            i += 1
            continue
        rows = []
        j = i + 2
        while j < n and len(rows) < count:
            fields = lines[j].split()
            try:
                values = tuple(float(v) for v in fields)
            except ValueError:
                values = ()
            if len(values) < 5:
                if "/" in lines[j]:  # the next image came early: the count was wrong
                    skips.add("count mismatch", f"{where}:{i + 2}")
                    break
                skips.add("malformed line", f"{where}:{j + 1}")
            else:
                rows.append(values)
            j += 1
        i = j
        yield name, rows


def read_fddb(root: Path, skips: SkipLog, scale: tuple[float, float] = (1.0, 1.0),
              images: Path | None = None) -> Iterator[ImageRecord]:
    """FDDB images present on disk, each ellipse as its (scaled) tight box clipped to the image."""
    pics = images or (root / "originalPics")
    for ann in fold_files(root):
        for name, rows in parse_ellipse_list(ann.read_text(errors="replace"), skips, ann.name):
            record = open_record("fddb", name, pics / f"{name}.jpg", skips)
            if record is None:
                continue
            for major, minor, angle, cx, cy, *_ in rows:
                if major <= 0 or minor <= 0:
                    skips.add("degenerate box", name)
                    continue
                record.add_box(scale_box(ellipse_box(major, minor, angle, cx, cy), *scale), skips)
            yield record
