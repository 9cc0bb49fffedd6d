"""Photos, folders, video files and cameras as one stream of frames. Every way an input can be
unusable is turned into an `InputError` naming it here, so the loop never sees a bad frame."""

from __future__ import annotations

import io
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # no V4L2 warnings for a missing camera

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.errors import ImageTooLarge, InputError, PartlyRead  # noqa: E402

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2",
                            ".pgm", ".ppm", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                            ".wmv", ".flv"})
#: Photo formats OpenCV cannot decode: inside a folder they are reported, never silently skipped.
UNSUPPORTED_IMAGE_SUFFIXES = frozenset({".heic", ".heif", ".avif", ".jxl", ".svg", ".psd", ".dng",
                                        ".cr2", ".cr3", ".nef", ".arw", ".raw"})
#: Photos larger than this on their long side are decoded at 1/2, 1/4 or 1/8 scale, which bounds
#: memory for huge inputs (a 12000x9000 photo) while keeping faces far above detector size.
MAX_SIDE = 4096
#: Only JPEG is decoded at reduced scale (libjpeg scales while decoding); OpenCV decodes every
#: other format at full size first, 3 bytes a pixel, so those are refused above this many pixels
#: (100 megapixels: about 300 MB). A 20000x20000 PNG would otherwise take 1.2 GB.
MAX_DECODED_PIXELS = 100_000_000
REDUCIBLE_FORMATS = frozenset({"JPEG", "MPO"})  # Pillow's names; MPO is a camera's JPEG


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    source: str
    index: int | None = None  # frame number in a stream; None for photos
    time: float | None = None  # seconds into the stream
    scale: float = 1.0  # decoded size / original size (huge photos are decoded reduced)


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def expand_inputs(paths: list[str], skip: Path | None = None) -> Iterator[tuple[str, str]]:
    """(kind, path) for each input: 'image', 'video', or 'error:REASON'. Folders are searched
    recursively, except `skip` (fer-detect's own --out folder, so a rerun never analyses its
    earlier annotated copies); a file reached twice is analysed once."""
    skip = skip.resolve() if skip is not None else None
    seen: set[Path] = set()

    def first_time(path: Path) -> bool:
        real = path.resolve()
        if real in seen:
            return False
        seen.add(real)
        return True

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
                           | UNSUPPORTED_IMAGE_SUFFIXES and not _inside(p.resolve(), skip))
            if not found:
                yield "error:folder has no images or videos", raw
            for p in filter(first_time, found):
                suffix = p.suffix.lower()
                if suffix in UNSUPPORTED_IMAGE_SUFFIXES:
                    yield (f"error:{suffix[1:].upper()} photos cannot be decoded here; convert "
                           "it to JPEG or PNG"), str(p)
                else:
                    yield ("video" if suffix in VIDEO_SUFFIXES else "image"), str(p)
        elif not path.exists():
            yield "error:not found", raw
        elif first_time(path):
            yield ("video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"), raw


def _header(file: str | IO[bytes]) -> tuple[tuple[int, int], str] | None:
    """(width, height) and Pillow's format name from the header alone (a path or an open
    binary file; read lazily)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:  # only the header is read, so Pillow's decompression-bomb guard does not apply
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(file) as im:
            return im.size, im.format or ""
    except Exception:  # not a format Pillow knows: OpenCV may still decode it
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _decode_plan(header: tuple[tuple[int, int], str] | None, source: str, max_side: int,
                 max_pixels: int) -> tuple[int, float]:
    """The OpenCV flag and scale to decode at: huge photos reduced (JPEG while decoding), and
    `ImageTooLarge` when decoding would still take more than `max_pixels`."""
    flag, scale = cv2.IMREAD_COLOR, 1.0
    if header is None:
        return flag, scale
    (w, h), kind = header
    if max(w, h) > max_side:
        for factor, reduced in ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                (8, cv2.IMREAD_REDUCED_COLOR_8)):
            flag, scale = reduced, 1.0 / factor
            if max(w, h) / factor <= max_side:
                break
    # only JPEG is reduced while decoding; OpenCV shrinks the others afterwards
    if w * h * (scale ** 2 if kind in REDUCIBLE_FORMATS else 1.0) > max_pixels:
        raise ImageTooLarge(source, f"{w}x{h} pixels is too large to decode (limit "
                                    f"{max_pixels / 1_000_000:g} megapixels; only JPEG is decoded "
                                    "at reduced scale); downscale it or save it as JPEG")
    return flag, scale


def _decode(data: np.ndarray, source: str, flag: int, scale: float,
            header: tuple[tuple[int, int], str] | None) -> Frame:
    if data.size == 0:
        raise InputError(source, "empty file")
    try:
        image = cv2.imdecode(data, flag)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise InputError(source, "not a readable image (corrupt, truncated or unsupported format)")
    if header and flag != cv2.IMREAD_COLOR:  # the true ratio (odd sizes round; EXIF may rotate)
        scale = max(image.shape[:2]) / max(header[0])
    return Frame(image=image, source=source, scale=scale)


def read_image(path: str, max_side: int = MAX_SIDE) -> Frame:
    """Decode a photo to BGR uint8: EXIF orientation honoured, alpha dropped, 16-bit and gray
    converted, huge photos decoded reduced, and refused when decoding would take more than
    MAX_DECODED_PIXELS (a format Pillow cannot read the header of is left to OpenCV's own limit)."""
    header = _header(path)  # before reading: a huge BMP is as large on disk as decoded
    flag, scale = _decode_plan(header, path, max_side, MAX_DECODED_PIXELS)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise InputError(path, f"cannot read file ({e.strerror})") from e
    return _decode(data, path, flag, scale, header)


def decode_image(data: bytes, source: str, max_side: int = MAX_SIDE,
                 max_pixels: int = MAX_DECODED_PIXELS, require_header: bool = False) -> Frame:
    """`read_image` for bytes already in memory (an upload), with the same decoding rules.
    `require_header` refuses formats Pillow cannot size up front, so no decode is ever left to
    OpenCV's own (gigapixel) limit: a server takes that, the CLI does not."""
    header = _header(io.BytesIO(data)) if data else None
    if header is None and data and require_header:
        raise InputError(source, "not a readable image (corrupt, truncated or unsupported format)")
    flag, scale = _decode_plan(header, source, max_side, max_pixels)
    return _decode(np.frombuffer(data, np.uint8), source, flag, scale, header)


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


#: Frames decoded ahead of the one being analysed (`read_ahead`); a camera keeps one, so what is
#: shown is never more than a frame old.
READ_AHEAD, READ_AHEAD_LIVE = 4, 1
_END = object()


def read_ahead(frames: Iterator[Frame], depth: int = READ_AHEAD) -> Iterator[Frame]:
    """`frames`, decoded in a thread up to `depth` ahead: OpenCV's decoder and ONNX Runtime both
    release the GIL, so the next frames decode while the models work on this one. An error in
    the source is raised here, in order; closing this generator stops the thread and releases
    the source. `depth` 0 reads in the caller's thread."""
    if depth <= 0:
        yield from frames
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        end: object = _END
        try:
            for frame in frames:
                if not hand_over(frame):
                    break
        except BaseException as e:  # handed to the caller's thread, raised there
            end = e
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # the source's own cleanup (cap.release) runs in this thread
        hand_over(end)

    thread = threading.Thread(target=produce, name="frame-reader", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # a stalled camera can block its read for seconds: do not hang the caller on it (the
        # daemon thread releases the source when the read returns)
        thread.join(timeout=2.0)


def read_video(path: str, ahead: int = READ_AHEAD) -> Iterator[Frame]:
    """A video file's frames, decoded `ahead` frames ahead in a thread (0: in this one)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InputError(path, "cannot open video (corrupt file or codec not supported)")
    yield from _checked(read_ahead(_frames(cap, path, live=False), ahead),
                        InputError(path, "video has no frames"))


def probe_video(path: str) -> tuple[float | None, int | None]:
    """A video's frame rate and the frame count its header declares (None when it gives none),
    read before decoding so a truncated file can be told from a short one afterwards."""
    cap = cv2.VideoCapture(path)
    try:
        fps, total = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        cap.release()
    return (fps if fps and fps > 0 else None), (int(total) if total and total > 0 else None)


def check_all_frames_read(path: str, frames: int, total: int | None) -> None:
    """Raise PartlyRead when a video that ran out gave clearly fewer frames than its header
    declared (truncated or corrupt); headers without a frame index estimate the count, so 2% (at
    least 2 frames) short still counts as whole."""
    if total and frames < total - max(2, total // 50):
        raise PartlyRead(path, f"only {frames} of the {total} frames its header declares could be "
                               "read (truncated or corrupt?); those were analysed")


def open_camera(spec: str) -> Iterator[Frame]:
    """A camera index ('0'), a stream URL, or any path OpenCV can open, read as a live source."""
    target: int | str = int(spec) if spec.strip().isdigit() else spec
    name = f"camera {spec}"
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise InputError(name, "cannot be opened; check the index (0, 1, ...) or stream URL and "
                               "that no other program holds it")
    yield from _checked(read_ahead(_frames(cap, name, live=True), READ_AHEAD_LIVE),
                        InputError(name, "opened but delivered no frame"))


def _checked(frames: Iterator[Frame], empty: InputError) -> Iterator[Frame]:
    """The frames, or `empty` raised when the source yields none."""
    first = next(frames, None)
    if first is None:
        raise empty
    yield first
    yield from frames
