"""Stable face ids across frames by IoU matching, and per-id exponential smoothing of emotions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd.boxes import iou as iou_matrix
from pipeline.records import Face


@dataclass
class _Track:
    id: int
    box: np.ndarray
    probs: np.ndarray | None  # None until the face is first large enough to classify
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
            # a face too small to read (--min-face) gets its id, and leaves the average untouched
            probs = np.array([face.probabilities[k] for k in labels]) if face.probabilities else None
            track = owner.get(fi)
            if track is None:
                track = _Track(self.next_id, boxes[fi], probs)
                self.next_id += 1
                self.tracks.append(track)
            else:
                if probs is not None:
                    track.probs = probs if track.probs is None else \
                        self.smoothing * track.probs + (1 - self.smoothing) * probs
                track.box, track.missed = boxes[fi], 0
            updated.add(track.id)
            face.id = track.id
            if probs is not None:
                face.probabilities = dict(zip(labels, track.probs.tolist(), strict=True))
        for track in self.tracks:
            if track.id not in updated:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
