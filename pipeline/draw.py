"""Boxes and labels a person can read, on one close-up or a stadium of faces.

Sizes follow the image and each face: line widths and text grow with the face, up to a bound set
by the image, and never below what can be read. A label is placed only where it fits: inside the
image, at most a little wider than its face, over no other label and over no more than a sliver
of another face. A face whose label does not fit keeps its box, in its emotion's colour, and the
legend (a key of the colours, with how many faces show each) names it instead. Faces too small
to read (--min-face) get a plain box and a line in the legend.

`layout()` decides every position without drawing, so tests can check the geometry; `draw_faces()`
draws it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipeline.records import Face

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2, exclusive of x2 and y2

#: BGR colour per emotion: the Okabe-Ito palette, told apart with every common colour blindness.
COLOURS = {
    "angry": (0, 94, 213), "disgust": (115, 158, 0), "fear": (167, 121, 204),
    "happy": (66, 228, 240), "sad": (178, 114, 0), "surprise": (0, 159, 230),
    "neutral": (200, 200, 200), "contempt": (233, 180, 86),
}
#: Faces too small to read (no emotion): white corner marks instead of a box.
NO_EMOTION = (255, 255, 255)
TOO_SMALL = "too small to read"
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: Hershey text below this many pixels tall (capital height) cannot be read.
MIN_TEXT = 10
#: A label may be this much wider than its face's box (a 40 px face's label: 60 px at most).
LABEL_WIDER = 1.5
#: A label may cover at most this share of another face's box.
COVER = 0.15


def colour(face: Face) -> tuple[int, int, int]:
    return COLOURS.get(face.emotion, (255, 255, 255)) if face.emotion else NO_EMOTION


def _luminance(c: tuple[int, int, int]) -> float:
    """WCAG relative luminance of a BGR colour."""
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c[2]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[0])


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two BGR colours, 1 to 21 (4.5 is enough for small text)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on `fill`."""
    return max(((0, 0, 0), (255, 255, 255)), key=lambda ink: contrast(ink, fill))


_CAP = cv2.getTextSize("H", FONT, 1.0, 1)[0][1]  # capital height at scale 1 (22 px)


@dataclass(frozen=True)
class Text:
    """One line of text: its size in pixels and how to draw it."""

    text: str
    scale: float
    thickness: int
    width: int
    height: int  # capital height
    descent: int  # below the baseline

    @classmethod
    @functools.lru_cache(maxsize=4096)  # a crowd asks for the same few words at the same sizes
    def make(cls, text: str, height: float) -> Text:
        scale = height / _CAP
        thickness = max(1, round(height / 11))
        (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
        return cls(text, scale, thickness, w, h, base)


@dataclass(frozen=True)
class Label:
    face: int  # index into the faces
    text: Text
    rect: Rect  # the label's background, inside the image


@dataclass(frozen=True)
class Legend:
    rows: list[tuple[tuple[int, int, int], Text]]  # swatch colour, "happy 12"
    rect: Rect
    pad: int
    across: bool  # entries side by side in one row, else one above the other


@dataclass(frozen=True)
class Layout:
    boxes: list[Rect]
    lines: list[int]  # each box's line width
    labels: list[Label]
    legend: Legend | None
    fps: Text | None


def _box(face: Face, w: int, h: int) -> Rect:
    x1, y1, x2, y2 = (round(v) for v in face.box)
    return max(0, min(x1, w - 1)), max(0, min(y1, h - 1)), max(0, min(x2, w - 1)), max(0, min(y2, h - 1))


def _area(r: Rect) -> int:
    return max(0, r[2] - r[0]) * max(0, r[3] - r[1])


def _overlap(a: Rect, b: Rect) -> int:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _texts(face: Face) -> list[str]:
    """The label, longest first: shorter forms are tried when the long one does not fit."""
    if face.emotion is None:
        return []
    tag = f"#{face.id} " if face.id is not None else ""
    full = f"{face.emotion} {face.probabilities[face.emotion]:.2f}"
    return list(dict.fromkeys([tag + full, full, tag + face.emotion, face.emotion]))


def _line_width(side: int, short: int) -> int:
    """Box line: about 1/40 of the face, at most 1/300 of the image's short side, at least 1."""
    return max(1, min(round(side / 40), max(1, round(short / 300))))


def layout(shape: tuple[int, ...], faces: list[Face], fps: float | None = None) -> Layout:
    """Where every box, label and the legend go on an image of `shape`; nothing is drawn."""
    h, w = shape[:2]
    short = min(h, w)
    boxes = [_box(f, w, h) for f in faces]
    lines = [_line_width(min(b[2] - b[0], b[3] - b[1]), short) for b in boxes]
    fixed: list[Rect] = []  # what labels must keep clear of besides each other
    fps_text = None
    if fps is not None:
        fps_text = Text.make(f"{fps:.1f} fps", max(MIN_TEXT + 2, min(short / 30, 40)))
        fixed.append((0, 0, fps_text.width + 12, fps_text.height + fps_text.descent + 12))
    labels = _labels(faces, boxes, lines, w, h, short, fixed)
    legend = None
    if len(labels) < len(faces):  # some emotions are shown by colour only: a key is needed
        legend = _legend(faces, boxes, [r.rect for r in labels] + fixed, w, h, short)
        if legend is not None:  # place the labels again, around it
            labels = _labels(faces, boxes, lines, w, h, short, [*fixed, legend.rect])
    return Layout(boxes, lines, labels, legend, fps_text)


def _labels(faces: list[Face], boxes: list[Rect], lines: list[int], w: int, h: int, short: int,
            fixed: list[Rect]) -> list[Label]:
    """Each face's label where one fits, large faces first."""
    biggest = max(MIN_TEXT, short / 28)  # text never grows past this, however large the face
    placed: list[Label] = []
    faces_at = np.array(boxes, np.int64).reshape(-1, 4)
    limit = COVER * np.maximum(_areas(faces_at), 1)
    taken = np.zeros((len(fixed) + len(faces), 4), np.int64)  # labels so far, and `fixed`
    taken[:len(fixed)] = np.array(fixed, np.int64).reshape(-1, 4)
    count = len(fixed)
    for i in sorted(range(len(faces)), key=lambda i: -_area(boxes[i])):
        x1, y1, x2, y2 = boxes[i]
        bw, bh = x2 - x1, y2 - y1
        height = round(min(biggest, max(MIN_TEXT, 0.25 * min(bw, bh))), 1)
        for candidate in _texts(faces[i]):
            sized = _fit(candidate, height, bw * LABEL_WIDER)
            if sized is None:
                continue
            text, pad = sized
            lw, lh = text.width + 2 * pad, text.height + text.descent + 2 * pad
            if lw > w or lh > h:
                continue
            rect = _place(faces_at, limit, i, lines[i], lw, lh, w, h, taken[:count])
            if rect is not None:
                placed.append(Label(i, text, rect))
                taken[count] = rect
                count += 1
                break
    return placed


def _fit(candidate: str, height: float, width: float) -> tuple[Text, int] | None:
    """`candidate` at `height`, or smaller (down to 70% of it, never below MIN_TEXT) so that it
    is at most `width` wide with its padding; None when it cannot be."""
    lowest = max(MIN_TEXT, 0.7 * height)
    for _ in range(4):  # the padding and stroke do not shrink in proportion: a few steps
        text = Text.make(candidate, height)
        pad = max(2, round(text.height * 0.3))
        if text.width + 2 * pad <= width:
            return text, pad
        height = round(0.98 * height * width / (text.width + 2 * pad), 1)
        if height < lowest:
            return None
    return None


def _areas(rects: np.ndarray) -> np.ndarray:
    return np.maximum(rects[:, 2] - rects[:, 0], 0) * np.maximum(rects[:, 3] - rects[:, 1], 0)


def _overlaps(rect: Rect, rects: np.ndarray) -> np.ndarray:
    """The area `rect` shares with each of `rects` (N x 4)."""
    x1, y1, x2, y2 = rect
    return np.maximum(np.minimum(x2, rects[:, 2]) - np.maximum(x1, rects[:, 0]), 0) * \
        np.maximum(np.minimum(y2, rects[:, 3]) - np.maximum(y1, rects[:, 1]), 0)


def _place(faces_at: np.ndarray, limit: np.ndarray, i: int, line: int, lw: int, lh: int, w: int,
           h: int, taken: np.ndarray) -> Rect | None:
    """Above the box, else below it, else inside its top edge; shifted sideways to stay inside
    the image. None when every spot covers another label or too much of another face."""
    x1, y1, x2, y2 = (int(v) for v in faces_at[i])
    x = min(max(0, x1 - line // 2), w - lw)
    for y in (y1 - line // 2 - lh, y2 + line // 2 + 1, y1 + line):
        if y < 0 or y + lh > h:
            continue
        rect = (x, y, x + lw, y + lh)
        if len(taken) and _overlaps(rect, taken).any():
            continue
        covered = _overlaps(rect, faces_at) > limit
        covered[i] = False
        if covered.any():
            continue
        return rect
    return None


def _legend(faces: list[Face], boxes: list[Rect], taken: list[Rect], w: int, h: int,
            short: int) -> Legend | None:
    """A key of the colours with each emotion's count: one row along an edge when the image is
    wide enough, else a column, in the corner that hides the fewest faces and labels; None when
    the image is too small to hold it."""
    counts: dict[str, int] = {}
    for face in faces:
        name = face.emotion or TOO_SMALL
        counts[name] = counts.get(name, 0) + 1
    order = [*COLOURS, TOO_SMALL]
    names = sorted(counts, key=lambda n: order.index(n) if n in order else len(order))
    size = max(MIN_TEXT + 1, min(short / 45, 28))
    texts = [Text.make(f"{n} {counts[n]}", size) for n in names]
    pad = max(3, round(size * 0.45))
    swatch = texts[0].height
    row_h = max(t.height + t.descent for t in texts) + pad
    cells = [pad + swatch + pad + t.width for t in texts]  # swatch, gap, text
    shapes = [(pad + sum(c + pad for c in cells), pad + row_h, True),  # one row
              (pad + max(cells) + pad, pad + row_h * len(texts), False)]  # one column
    best: tuple[float, Rect, bool] | None = None
    for lw, lh, across in shapes:
        if lw > w or lh > h:
            continue
        for x, y in ((w - lw, h - lh), (0, h - lh), (w - lw, 0), (0, 0)):
            rect = (x, y, x + lw, y + lh)
            cost = sum(_overlap(rect, b) / max(_area(b), 1) for b in boxes) \
                + sum(1.0 for t in taken if _overlap(rect, t)) + (0 if across else 0.01)
            if best is None or cost < best[0]:
                best = (cost, rect, across)
    if best is None:
        return None
    rows = [(COLOURS.get(n, NO_EMOTION), t) for n, t in zip(names, texts, strict=True)]
    return Legend(rows, best[1], pad, best[2])


def _text(image: np.ndarray, text: Text, x: int, y: int, ink: tuple[int, int, int]) -> None:
    """`text` with its top-left corner at x, y."""
    cv2.putText(image, text.text, (x, y + text.height), FONT, text.scale, ink, text.thickness,
                cv2.LINE_AA)


def faces_at_scale(faces: list[Face], scale: float) -> list[Face]:
    """Faces with boxes in the pixels of an image decoded at `scale` (huge JPEGs are decoded at
    1/2 to 1/8 size while records keep original pixels), so drawings land on the faces."""
    if scale == 1.0:
        return faces
    return [replace(f, box=tuple(v * scale for v in f.box)) for f in faces]


def draw_faces(image: np.ndarray, faces: list[Face], fps: float | None = None) -> np.ndarray:
    """A copy of `image` with each face's box, the labels that fit and, when some do not, the
    legend; same size as the input (video frames stay one size)."""
    out = image.copy()
    plan = layout(out.shape, faces, fps)
    for face, (x1, y1, x2, y2), line in zip(faces, plan.boxes, plan.lines, strict=True):
        if face.emotion is None:
            _corners(out, (x1, y1, x2, y2), NO_EMOTION, line)
            continue
        # a dark outline keeps a thin coloured line visible on any background
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 0), line + 2)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour(face), line)
    for label in plan.labels:
        fill = colour(faces[label.face])
        x1, y1, x2, y2 = label.rect
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), fill, -1)
        pad = (x2 - x1 - label.text.width) // 2
        _text(out, label.text, x1 + pad, y1 + pad, text_colour(fill))
    if plan.legend is not None:
        _draw_legend(out, plan.legend)
    if plan.fps is not None:
        box = (0, 0, plan.fps.width + 12, plan.fps.height + plan.fps.descent + 12)
        _shade(out, box)
        _text(out, plan.fps, 6, 6, (255, 255, 255))
    return out


def _shade(image: np.ndarray, rect: Rect, alpha: float = 0.65) -> None:
    """Darken a rectangle so white text on it reads over any photo."""
    x1, y1, x2, y2 = rect
    part = image[y1:y2, x1:x2]
    part[:] = (part * (1 - alpha)).astype(image.dtype)


def _draw_legend(image: np.ndarray, legend: Legend) -> None:
    x1, y1, _, _ = legend.rect
    _shade(image, legend.rect)
    pad = legend.pad
    swatch = legend.rows[0][1].height
    step = max(t.height + t.descent for _, t in legend.rows) + pad
    x, y = x1 + pad, y1 + pad
    for fill, text in legend.rows:
        _swatch(image, fill, x, y, swatch)
        _text(image, text, x + swatch + pad, y, (255, 255, 255))
        if legend.across:
            x += swatch + pad + text.width + 2 * pad
        else:
            y += step


def _swatch(image: np.ndarray, fill: tuple[int, int, int], x: int, y: int, side: int) -> None:
    """The legend's sample of a colour: a filled square, or the too-small faces' corner marks."""
    if fill == NO_EMOTION:
        _corners(image, (x, y, x + side, y + side), fill, 1)
    else:
        cv2.rectangle(image, (x, y), (x + side, y + side), fill, -1)


def _corners(image: np.ndarray, rect: Rect, fill: tuple[int, int, int], line: int) -> None:
    """Only the four corners of a box: a face found but too small to read, unlike any emotion's
    full box."""
    x1, y1, x2, y2 = rect
    arm = max(2, round(min(x2 - x1, y2 - y1) * 0.3))
    for ink, width in (((0, 0, 0), line + 2), (fill, line)):
        for (ax, ay), (dx, dy) in (((x1, y1), (1, 1)), ((x2, y1), (-1, 1)), ((x1, y2), (1, -1)),
                                   ((x2, y2), (-1, -1))):
            cv2.line(image, (ax, ay), (ax + dx * arm, ay), ink, width)
            cv2.line(image, (ax, ay), (ax, ay + dy * arm), ink, width)
