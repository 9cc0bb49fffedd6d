"""COCO detection JSON: one file for a whole split, e.g. `annotations/instances_train.json`.

    {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}, ...],
     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h],
                      "iscrowd": 0}, ...],
     "categories": [{"id": 1, "name": "face"}, ...]}

`bbox` is the top-left corner and the size in pixels (0-based, continuous), so the box is
(x, y, x + w, y + h). `iscrowd: 1` marks a region of many faces with no single box: skipped and
counted. Every listed image is yielded, those with no face annotation as negatives (no boxes):
in COCO an image without an annotation of a category has none of that object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import ImageRecord, open_record
from fer.readers.base import SkipLog


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: object) -> bool:
    """JSON ids are ints or strings; anything else cannot name an image or category."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def load_coco(annotation_json: Path) -> dict:
    """The parsed file; anything but a COCO detection file is a fatal, one-line error."""
    if not annotation_json.is_file():
        raise FdError(f"COCO annotation file {annotation_json} not found: pass the detection JSON "
                      "(e.g. annotations/instances_train.json or _annotations.coco.json)")
    try:
        data = json.loads(annotation_json.read_text(errors="replace"))
    except json.JSONDecodeError as e:
        raise FdError(f"{annotation_json} is not JSON ({e.msg} at line {e.lineno}): pass a COCO "
                      "detection annotation file") from e
    missing = [k for k in ("images", "annotations")
               if not isinstance(data, dict) or not isinstance(data.get(k), list)]
    if missing:
        raise FdError(f"{annotation_json} has no {' or '.join(missing)} list: pass a COCO detection "
                      "file (images, annotations, categories)")
    return data


def face_categories(data: dict, where: str, names: set[str] | None = None) -> set:
    """Ids of the categories named in `names` (exact), or by default of every name containing "face"."""
    categories = data.get("categories")
    known = {c["id"]: str(c.get("name", "")) for c in categories
             if isinstance(c, dict) and _is_id(c.get("id"))} if isinstance(categories, list) else {}
    ids = {i for i, n in known.items() if (n in names if names is not None else "face" in n.lower())}
    if not ids:
        asked = "no category name contains 'face'" if names is None else f"none of {sorted(names)} found"
        listed = ", ".join(f"{i}={n}" for i, n in known.items()) or "none"
        raise FdError(f"{where}: {asked}; categories are {listed}: name the face categories explicitly")
    return ids


def default_images(annotation_json: Path) -> Path:
    """`images/` beside the JSON, else the JSON's own folder (Roboflow puts them together)."""
    beside = annotation_json.parent / "images"
    return beside if beside.is_dir() else annotation_json.parent


def read_coco(annotation_json: Path, images: Path | None, skips: SkipLog,
              category_names: set[str] | None = None) -> Iterator[ImageRecord]:
    """Every listed image on disk with its face boxes; `category_names` = the face categories
    (default: every category whose name contains "face")."""
    data = load_coco(annotation_json)
    where = annotation_json.name
    faces = face_categories(data, str(annotation_json), category_names)
    images = images or default_images(annotation_json)
    if not images.is_dir():
        raise FdError(f"COCO image folder {images} not found: pass the folder the file_names are in")
    entries: dict = {}
    for i, entry in enumerate(data["images"]):
        if not (isinstance(entry, dict) and _is_id(entry.get("id"))
                and isinstance(entry.get("file_name"), str) and entry["file_name"]):
            skips.add("malformed image entry", f"{where}: images[{i}]")
        elif entry["id"] in entries:
            skips.add("duplicate image id", f"{where}: images[{i}]")
        else:
            entries[entry["id"]] = entry
    boxes: dict = {image_id: [] for image_id in entries}
    for i, ann in enumerate(data["annotations"]):
        at = f"{where}: annotations[{i}]"
        if not (isinstance(ann, dict) and _is_id(ann.get("image_id")) and _is_id(ann.get("category_id"))):
            skips.add("malformed annotation", at)
        elif ann["category_id"] not in faces:
            skips.add("not a face class", at)
        elif ann["image_id"] not in entries:
            skips.add("unknown image id", at)
        elif ann.get("iscrowd") == 1:
            skips.add("crowd box", at)
        elif not (isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4
                  and all(_is_number(v) for v in ann["bbox"])):
            skips.add("malformed box", at)
        else:
            x, y, w, h = ann["bbox"]
            boxes[ann["image_id"]].append((x, y, x + w, y + h))
    for image_id, entry in entries.items():
        name = entry["file_name"]
        record = open_record("coco", name, images / name, skips)
        if record is None:
            continue
        stated = (entry.get("width"), entry.get("height"))
        if all(_is_number(v) and v > 0 for v in stated) and stated != record.size:
            skips.add("size differs from annotation", name)
        for box in boxes[image_id]:
            record.add_box(tuple(float(v) for v in box), skips)
        yield record
