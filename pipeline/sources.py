"""Photos, folders, video files and cameras as one stream of frames. Every way an input can be
unusable is turned into an `InputError` naming it here, so the loop never sees a bad frame."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # no V4L2 warnings for a missing camera

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.errors import InputError  # noqa: E402

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2",
                            ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                            ".wmv", ".flv"})
#: Photos larger than this on their long side are decoded at 1/2, 1/4 or 1/8 scale, which bounds
#: memory for huge inputs (a 12000x9000 photo) while keeping faces far above detector size.
MAX_SIDE = 4096


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    source: str
    index: int | None = None  # frame number in a stream; None for photos
    time: float | None = None  # seconds into the stream
    scale: float = 1.0  # decoded size / original size (huge photos are decoded reduced)


def expand_inputs(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(kind, path) for each input: 'image', 'video', or 'error' with the reason as kind."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                yield "error:folder has no images or videos", raw
            for p in found:
                yield ("video" if p.suffix.lower() in VIDEO_SUFFIXES else "image"), str(p)
        elif not path.exists():
            yield "error:not found", raw
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            yield "video", raw
        else:
            yield "image", raw


def _original_size(path: str) -> tuple[int, int] | None:
    """Width and height from the file header alone (Pillow reads it lazily)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:  # only the header is read, so Pillow's decompression-bomb guard does not apply
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            return im.size
    except Exception:  # not a format Pillow knows: OpenCV may still decode it
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_image(path: str, max_side: int = MAX_SIDE) -> Frame:
    """Decode a photo to BGR uint8: EXIF orientation honoured, alpha dropped, 16-bit and gray
    converted, huge photos decoded reduced."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise InputError(path, f"cannot read file ({e.strerror})") from e
    if data.size == 0:
        raise InputError(path, "empty file")
    size = _original_size(path)
    flag, scale = cv2.IMREAD_COLOR, 1.0
    if size and max(size) > max_side:
        for factor, reduced in ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                (8, cv2.IMREAD_REDUCED_COLOR_8)):
            flag, scale = reduced, 1.0 / factor
            if max(size) / factor <= max_side:
                break
    try:
        image = cv2.imdecode(data, flag)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise InputError(path, "not a readable image (corrupt, truncated or unsupported format)")
    if size and flag != cv2.IMREAD_COLOR:  # the true ratio (odd sizes round; EXIF may rotate)
        scale = max(image.shape[:2]) / max(size)
    return Frame(image=image, source=path, scale=scale)


def _frames(cap: cv2.VideoCapture, source: str, live: bool) -> Iterator[Frame]:
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    start = time.monotonic()
    index = 0
    try:
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                break
            if live:
                t = time.monotonic() - start
            else:
                t = index / fps if fps > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(image=image, source=source, index=index, time=t)
            index += 1
    finally:
        cap.release()


def read_video(path: str) -> Iterator[Frame]:
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InputError(path, "cannot open video (corrupt file or codec not supported)")
    yield from _checked(_frames(cap, path, live=False), InputError(path, "video has no frames"))


def open_camera(spec: str) -> Iterator[Frame]:
    """A camera index ('0'), a stream URL, or any path OpenCV can open, read as a live source."""
    target: int | str = int(spec) if spec.strip().isdigit() else spec
    name = f"camera {spec}"
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise InputError(name, "cannot be opened; check the index (0, 1, ...) or stream URL and "
                               "that no other program holds it")
    yield from _checked(_frames(cap, name, live=True),
                        InputError(name, "opened but delivered no frame"))


def _checked(frames: Iterator[Frame], empty: InputError) -> Iterator[Frame]:
    """The frames, or `empty` raised when the source yields none."""
    first = next(frames, None)
    if first is None:
        raise empty
    yield first
    yield from frames
