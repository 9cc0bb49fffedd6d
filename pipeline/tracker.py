"""Stable face ids across frames by IoU matching, and per-id exponential smoothing of emotions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.records import Face


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes (len(a) x len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class _Track:
    id: int
    box: np.ndarray
    probs: np.ndarray
    missed: int = 0


class IouTracker:
    """Greedy highest-IoU-first matching. `smoothing` is the weight of the past (0 = off)."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, smoothing: float = 0.6):
        self.iou_threshold, self.max_missed, self.smoothing = iou_threshold, max_missed, smoothing
        self.tracks: list[_Track] = []
        self.next_id = 1

    def update(self, faces: list[Face], labels: tuple[str, ...]) -> None:
        """Give each face an id and replace its probabilities by the smoothed ones."""
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        ious = iou_matrix(np.array([t.box for t in self.tracks]).reshape(-1, 4), boxes)
        owner: dict[int, _Track] = {}  # face index -> track
        taken: set[int] = set()  # track indices already matched
        for flat in np.argsort(-ious, axis=None):
            ti, fi = np.unravel_index(flat, ious.shape)
            if ious[ti, fi] < self.iou_threshold:
                break
            if ti not in taken and fi not in owner:
                taken.add(ti)
                owner[fi] = self.tracks[ti]
        updated: set[int] = set()
        for fi, face in enumerate(faces):
            probs = np.array([face.probabilities[k] for k in labels])
            track = owner.get(fi)
            if track is None:
                track = _Track(self.next_id, boxes[fi], probs)
                self.next_id += 1
                self.tracks.append(track)
            else:
                track.probs = self.smoothing * track.probs + (1 - self.smoothing) * probs
                track.box, track.missed = boxes[fi], 0
            updated.add(track.id)
            face.id = track.id
            face.probabilities = dict(zip(labels, track.probs.tolist(), strict=True))
        for track in self.tracks:
            if track.id not in updated:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
