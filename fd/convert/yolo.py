"""YOLO detection labels, as ultralytics reads and writes them.

Images are found anywhere under `root` (recursively, by suffix). Each image's label file is, in
this order:

- the ultralytics mirror: the image path relative to `root` with its last `images` folder replaced
  by `labels` and its suffix by `.txt` (`images/train/a.jpg` -> `labels/train/a.txt`; Roboflow's
  `train/images/a.jpg` -> `train/labels/a.txt`);
- else the `.txt` beside the image (`a.jpg` + `a.txt` in one folder).

An image with neither is a negative (no faces), as in ultralytics. Each label line is
`class cx cy w h`: an integer class id, then the box centre and size divided by the image width
and height, so every value lies in [0, 1]. Blank lines are ignored.

Class names live outside the labels, in `data.yaml` (`names: [face, ...]` or `names: {0: face}`)
or `classes.txt` (one name per line, line number = id); `yolo_face_classes` reads them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from pathlib import Path

import yaml

from fd.errors import FdError
from fd.records import ImageRecord, open_record
from fer.readers.base import IMAGE_SUFFIXES, SkipLog

TOLERANCE = 1e-3  # exporters round to 6 digits and some overshoot [0, 1] slightly; clipping fixes it


def label_path(root: Path, image: Path) -> Path | None:
    """The label file of `image`: the `labels/` mirror, else the `.txt` beside it, else None."""
    parts = image.relative_to(root).parts
    folders = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if folders:
        i = folders[-1]
        mirror = root.joinpath(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
        if mirror.is_file():
            return mirror
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else None


def parse_line(line: str) -> tuple[int, float, float, float, float] | str:
    """(class, cx, cy, w, h), or the skip reason when the line is not a valid YOLO box."""
    fields = line.split()
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return "malformed line"
    if len(values) != 5 or not all(math.isfinite(v) for v in values):
        return "malformed line"
    if values[0] < 0 or not values[0].is_integer():  # class ids are 0, 1, ...
        return "malformed line"
    cls, cx, cy, w, h = values
    if w < 0 or h < 0:
        return "negative size"
    if not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in (cx, cy, w, h)):
        return "coordinates out of range"
    return int(cls), cx, cy, w, h


def read_yolo(root: Path, skips: SkipLog, classes: set[int] | None = None) -> Iterator[ImageRecord]:
    """Every image under `root` with its boxes in pixels; `classes` = the face class ids (None: all)."""
    if not root.is_dir():
        raise FdError(f"YOLO folder {root} not found: pass the folder that holds images/ and labels/ "
                      "(or images with a .txt beside each)")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise FdError(f"no images under {root}: pass the YOLO dataset folder (with images/ and labels/)")
    labels = {image: label_path(root, image) for image in images}
    if not any(labels.values()):
        raise FdError(f"no YOLO label file for any of the {len(images)} images under {root}: expected "
                      "labels/ mirroring images/, or a .txt beside each image")
    for image in images:
        key = image.relative_to(root).as_posix()
        record = open_record("yolo", key, image, skips)
        if record is None:
            continue
        label = labels[image]
        if label is None:
            yield record  # ultralytics' background image
            continue
        where = label.relative_to(root).as_posix()
        try:
            text = label.read_text(errors="replace")
        except OSError:
            skips.add("unreadable label file", where)
            continue
        width, height = record.size
        for no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parsed = parse_line(line)
            if isinstance(parsed, str):
                skips.add(parsed, f"{where}:{no}")
                continue
            cls, cx, cy, w, h = parsed
            if classes is not None and cls not in classes:
                skips.add("not a face class", f"{where}:{no}")
                continue
            record.add_box(((cx - w / 2) * width, (cy - h / 2) * height,
                            (cx + w / 2) * width, (cy + h / 2) * height), skips)
        yield record


def class_names(root: Path) -> dict[int, str] | None:
    """Class id -> name from `root/data.yaml` or `root/classes.txt`; None when neither exists."""
    data, listing = root / "data.yaml", root / "classes.txt"
    if data.is_file():
        try:
            content = yaml.safe_load(data.read_text(errors="replace"))
        except yaml.YAMLError as e:
            raise FdError(f"{data} is not valid YAML ({type(e).__name__}); fix it or pass the face "
                          "class ids explicitly") from e
        names = content.get("names") if isinstance(content, dict) else None
        if isinstance(names, list):
            return {i: str(n) for i, n in enumerate(names)}
        if isinstance(names, dict):
            try:
                return {int(i): str(n) for i, n in names.items()}
            except (TypeError, ValueError) as e:
                raise FdError(f"{data}: names keys must be class ids (0, 1, ...)") from e
        raise FdError(f"{data} has no names: list (e.g. names: [face]); pass the face class ids instead")
    if listing.is_file():
        lines = listing.read_text(errors="replace").splitlines()
        return {i: line.strip() for i, line in enumerate(lines) if line.strip()}
    return None


def yolo_face_classes(root: Path, names: Collection[str] | None = None) -> set[int] | None:
    """The face class ids by name: those named in `names` (exact), or by default every class whose
    name contains "face" (any case). None when the dataset names no classes: then all count."""
    known = class_names(root)
    if known is None:
        return None
    ids = {i for i, n in known.items() if (n in names if names is not None else "face" in n.lower())}
    if not ids:
        asked = "no class name contains 'face'" if names is None else f"none of {sorted(names)} found"
        raise FdError(f"{root}: {asked}; classes are {', '.join(f'{i}={n}' for i, n in known.items())}: "
                      "name the face classes explicitly")
    return ids
