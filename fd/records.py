"""What every face-dataset converter yields: an image on disk and its face boxes in pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fer.readers.base import SkipLog

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass
class ImageRecord:
    source: str  # widerface | fddb | lfpw | combined
    key: str  # the image's path as the annotation names it
    path: Path
    boxes: list[Box] = field(default_factory=list)
    size: tuple[int, int] | None = None  # width, height, when the converter read the header
    # indices of the boxes the annotation flags as hard to find (WIDER FACE: turned, heavily
    # covered or heavily blurred); formats without such flags leave it empty
    hard: set[int] = field(default_factory=set)

    def add_box(self, box: Box, skips: SkipLog, hard: bool = False) -> None:
        """Keep the part of `box` inside the image; count it as degenerate when nothing is left."""
        clipped = clip_box(box, *self.size) if box[2] > box[0] and box[3] > box[1] else None
        if clipped is None:
            skips.add("degenerate box", self.key)
        else:
            if hard:
                self.hard.add(len(self.boxes))
            self.boxes.append(clipped)

    def hard_faces(self) -> list[int]:
        """Indices of the boxes flagged hard, in order."""
        return sorted(self.hard)


def open_record(source: str, key: str, path: Path | None, skips: SkipLog) -> ImageRecord | None:
    """A record for an image that is on disk and readable; otherwise the skip is counted."""
    if path is None or not path.is_file():
        skips.add("missing image on disk", key)
        return None
    size = image_size(path)
    if size is None:
        skips.add("unreadable image", key)
        return None
    return ImageRecord(source, key, path, size=size)


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header alone, None when the file is not a readable image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            return im.size
    except Exception:  # Pillow raises many kinds for broken files
        return None


def clip_box(box: Box, width: int, height: int) -> Box | None:
    """The part of a box inside the image, or None when nothing of it is left."""
    x1, y1, x2, y2 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], width), min(box[3], height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return (x1, y1, x2, y2)
