"""Training images made from the real ones, for what the real photos lack.

WIDER FACE is crowds and events: almost no face fills the frame, and the tiny faces it has are few
per event. Three generators, each deterministic for a given image and seed:

- `closeup`: a crop around one face (>= `CLOSEUP_MIN_FACE` px) so that it fills 30-90% of the
  crop's height, at a random position in the crop and a random aspect ratio: webcams, selfies and
  face crops.
- `paste_small_faces`: real face crops from other images shrunk to 8-30 px and pasted where no
  face is, with their boxes.
- `harden`: a photometric copy (grayscale, blur, low light, sensor noise, JPEG artefacts) through
  albumentations.

Each returns a new BGR image and its boxes (x1, y1, x2, y2 pixels); the caller writes them. The
close-up check in `fd.evaluate` uses `closeup` too, on validation images only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from fd.records import Box, clip_box

CLOSEUP_MIN_FACE = 60  # px of the face's longer side: below this a zoomed crop is mostly blur
ASPECTS = (9 / 16, 3 / 4, 1.0, 4 / 3, 16 / 9)  # width / height of the crop
MIN_VISIBLE = 0.4  # a face cut by a crop keeps its box when this much of it is still inside


def rng_for(key: str, kind: str, seed: int = 0) -> np.random.Generator:
    """The same image gets the same generated copies on every run."""
    digest = hashlib.sha1(f"{seed}/{kind}/{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def crop_boxes(boxes: list[Box], window: tuple[int, int, int, int]) -> list[Box]:
    """Boxes moved into a crop; a face mostly cut away is dropped, not half-labelled."""
    x0, y0, x1, y1 = window
    kept = []
    for box in boxes:
        shifted = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        inside = clip_box(shifted, x1 - x0, y1 - y0)
        if inside is not None and _area(inside) >= MIN_VISIBLE * _area(box):
            kept.append(inside)
    return kept


def closeup_window(face: Box, width: int, height: int, rng: np.random.Generator,
                   fill: tuple[float, float] = (0.3, 0.9)) -> tuple[int, int, int, int] | None:
    """A crop window in which `face` fills `fill` of the height, inside the image."""
    fh = face[3] - face[1]
    fw = face[2] - face[0]
    for _ in range(8):
        frac = rng.uniform(*fill)
        aspect = ASPECTS[rng.integers(len(ASPECTS))]
        ch = fh / frac
        cw = ch * aspect
        if cw < fw * 1.05:  # the face must fit across
            cw = fw * 1.05
        if cw > width or ch > height:
            continue
        # anywhere the face stays whole inside the crop and the crop inside the image
        xlo, xhi = max(0.0, face[2] - cw), min(face[0], width - cw)
        ylo, yhi = max(0.0, face[3] - ch), min(face[1], height - ch)
        if xlo > xhi or ylo > yhi:
            continue
        x0, y0 = rng.uniform(xlo, xhi), rng.uniform(ylo, yhi)
        return int(x0), int(y0), min(width, int(round(x0 + cw))), min(height, int(round(y0 + ch)))
    return None


def closeup(image: np.ndarray, boxes: list[Box], rng: np.random.Generator,
            face_index: int | None = None, max_side: int = 640,
            among: Iterable[int] | None = None) -> tuple[np.ndarray, list[Box], int] | None:
    """One zoomed crop around a large face (one of the boxes `among`, when given): (crop, its
    boxes, the index among those boxes of the face it was made for); None when no such face is
    big enough."""
    h, w = image.shape[:2]
    large = [i for i in (range(len(boxes)) if among is None else among)
             if max(boxes[i][2] - boxes[i][0], boxes[i][3] - boxes[i][1]) >= CLOSEUP_MIN_FACE]
    if face_index is None:
        if not large:
            return None
        face_index = large[int(rng.integers(len(large)))]
    window = closeup_window(boxes[face_index], w, h, rng)
    if window is None:
        return None
    x0, y0, x1, y1 = window
    crop = image[y0:y1, x0:x1]
    kept = crop_boxes(boxes, window)
    # the chosen face lies whole inside the window, so it is kept; the faces kept before it give
    # its place among the crop's boxes
    target = len(crop_boxes(boxes[:face_index], window))
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
        kept = [tuple(v * scale for v in b) for b in kept]
    return crop, kept, target


@dataclass
class FacePatch:
    pixels: np.ndarray  # BGR crop of one face, with a little context


def face_patches(image: np.ndarray, boxes: list[Box], min_side: int = 24,
                 limit: int = 4) -> list[FacePatch]:
    """Donor faces for pasting: clear enough (>= min_side px) to stay faces when shrunk."""
    patches = []
    for b in boxes:
        if min(b[2] - b[0], b[3] - b[1]) < min_side:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        patch = image[max(0, y1):y2, max(0, x1):x2]
        if patch.size:
            patches.append(FacePatch(patch.copy()))
        if len(patches) >= limit:
            break
    return patches


def paste_small_faces(image: np.ndarray, boxes: list[Box], donors: list[FacePatch],
                      rng: np.random.Generator, count: tuple[int, int] = (3, 12),
                      side: tuple[int, int] = (8, 30)) -> tuple[np.ndarray, list[Box]]:
    """Paste shrunk real faces where no face is; returns the new image and all its boxes."""
    out = image.copy()
    h, w = out.shape[:2]
    taken = [tuple(b) for b in boxes]
    added: list[Box] = []
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        if not donors:
            break
        donor = donors[int(rng.integers(len(donors)))].pixels
        fh = int(rng.integers(side[0], side[1] + 1))
        fw = max(4, int(round(fh * donor.shape[1] / max(donor.shape[0], 1))))
        if fw >= w or fh >= h:
            continue
        small = cv2.resize(donor, (fw, fh), interpolation=cv2.INTER_AREA)
        for _try in range(10):
            x, y = int(rng.integers(0, w - fw)), int(rng.integers(0, h - fh))
            box = (float(x), float(y), float(x + fw), float(y + fh))
            if all(_overlap(box, t) == 0 for t in taken):
                break
        else:
            continue
        region = out[y:y + fh, x:x + fw]
        # feathered edge, so the paste has no hard rectangle for the detector to learn instead
        mask = np.zeros((fh, fw), np.float32)
        cv2.ellipse(mask, (fw // 2, fh // 2), (max(fw // 2, 1), max(fh // 2, 1)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(fh / 12, 0.6))[..., None]
        # match brightness to the spot it lands on
        gain = (region.mean() + 1) / (small.mean() + 1)
        small = np.clip(small.astype(np.float32) * np.clip(gain, 0.6, 1.6), 0, 255)
        out[y:y + fh, x:x + fw] = (small * mask + region * (1 - mask)).astype(np.uint8)
        taken.append(box)
        added.append(box)
    return out, [tuple(b) for b in boxes] + added


def _overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def hardening_transform():
    """Grayscale, blur, low light, noise and JPEG artefacts; built once (albumentations)."""
    import albumentations as A

    return A.Compose([
        A.ToGray(p=0.4),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 9)),
                 A.Downscale(scale_range=(0.3, 0.6))], p=0.6),
        A.OneOf([A.RandomGamma(gamma_limit=(150, 300)),
                 A.RandomBrightnessContrast(brightness_limit=(-0.5, -0.2),
                                            contrast_limit=(-0.4, 0.0))], p=0.6),
        A.GaussNoise(std_range=(0.02, 0.08), p=0.4),
        A.ImageCompression(quality_range=(10, 40), p=0.7),
    ])


def harden(image: np.ndarray, transform, rng: np.random.Generator) -> np.ndarray:
    """A photometric copy; boxes do not move. Seeded from `rng` so the copy is reproducible."""
    transform.set_random_seed(int(rng.integers(2**31)))
    return transform(image=image)["image"]
