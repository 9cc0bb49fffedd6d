"""Pascal VOC XML: one `<annotation>` file per image, e.g. `annotations/a.xml` for `images/a.png`.

    <annotation>
        <filename>a.png</filename>
        <size><width>512</width><height>366</height><depth>3</depth></size>
        <object>
            <name>with_mask</name>
            <bndbox><xmin>79</xmin><ymin>105</ymin><xmax>109</xmax><ymax>142</ymax></bndbox>
        </object>
    </annotation>

VOC boxes are 1-based inclusive pixel indices: the box covers pixels xmin..xmax. In this package's
0-based continuous coordinates (pixel i spans [i, i + 1)) that is x1 = xmin - 1, x2 = xmax (same
for y), so a one-pixel box `xmin == xmax` keeps a width of 1. `difficult`, `truncated`, `pose` and
`occluded` are ignored: a hard face is still a face.

Only child elements' text is read, so stray text between elements (one real dataset has a
`file:/Users/...xml` path after `</bndbox>`) is harmless. `<size>` is only a check: the real image
header gives the size, and a disagreement is counted but the image is kept.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from fd.errors import FdError
from fd.records import Box, ImageRecord, open_record
from fer.readers.base import SkipLog

FALLBACK_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG", ".BMP")


def default_images(annotations: Path) -> Path:
    """`images/` beside the annotation folder, else VOC's own `JPEGImages/`, else the folder itself."""
    for name in ("images", "JPEGImages"):
        if (annotations.parent / name).is_dir():
            return annotations.parent / name
    return annotations


def find_image(images: Path, filename: str, xml_rel: Path) -> Path | None:
    """The image by `<filename>`, else by the annotation file's name with a common image suffix."""
    folder = images / xml_rel.parent
    candidates = [folder / filename, images / filename] if filename else []
    candidates += [folder / (xml_rel.stem + suffix) for suffix in FALLBACK_SUFFIXES]
    return next((p for p in candidates if p.is_file()), None)


def _number(element: ET.Element | None, tag: str) -> float | None:
    text = element.findtext(tag) if element is not None else None
    try:
        value = float(text.strip()) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def voc_box(obj: ET.Element) -> Box | None:
    """The object's box in 0-based pixel coordinates, or None when a coordinate is missing/not a number."""
    bndbox = obj.find("bndbox")
    values = [_number(bndbox, tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
    if any(v is None for v in values):
        return None
    xmin, ymin, xmax, ymax = values
    return (xmin - 1, ymin - 1, xmax, ymax)


def read_voc(annotations: Path, images: Path | None, skips: SkipLog, classes: set[str] | None = None
             ) -> Iterator[ImageRecord]:
    """Every annotated image on disk with its face boxes; `classes` = the object names that are
    faces (None: every object, e.g. Face Mask Detection's with_mask/without_mask/...)."""
    if not annotations.is_dir():
        raise FdError(f"VOC annotation folder {annotations} not found: pass the folder of .xml files "
                      "(e.g. annotations/ or Annotations/)")
    files = sorted(annotations.rglob("*.xml"))
    if not files:
        raise FdError(f"no .xml files in {annotations}: pass the folder of Pascal VOC annotations")
    images = images or default_images(annotations)
    if not images.is_dir():
        raise FdError(f"VOC image folder {images} not found: pass the folder the <filename>s are in")
    for file in files:
        rel = file.relative_to(annotations)
        where = rel.as_posix()
        try:
            root = ET.parse(file).getroot()
        except (ET.ParseError, OSError):
            skips.add("malformed XML", where)
            continue
        if root.tag != "annotation":
            skips.add("malformed XML", where)
            continue
        filename = (root.findtext("filename") or "").strip()
        path = find_image(images, filename, rel)
        key = path.relative_to(images).as_posix() if path else (filename or where)
        record = open_record("voc", key, path, skips)
        if record is None:
            continue
        size = root.find("size")
        stated = (_number(size, "width"), _number(size, "height"))
        if all(stated) and stated != record.size:  # a missing or 0 size is no claim to check
            skips.add("size differs from annotation", where)
        for i, obj in enumerate(root.findall("object"), start=1):
            name = (obj.findtext("name") or "").strip()
            if classes is not None and name not in classes:
                skips.add("not a face class", f"{where}: object {i}")
                continue
            box = voc_box(obj)
            if box is None:
                skips.add("malformed box", f"{where}: object {i}")
                continue
            record.add_box(box, skips)
        yield record
