"""Stable face ids across frames by IoU matching, and per-id exponential smoothing of emotions.

Between two detections (`fer-detect --detect-every N`) `carry` moves each face seen at the last
detection along its measured velocity, so the boxes follow a pan instead of lagging behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd.boxes import iou as iou_matrix
from pipeline.records import Face

#: A face whose box moved less than this fraction of its side per frame between two detections
#: is held still: that much is the detector's own jitter on a face that did not move (a still
#: face's box moved up to ~1.5% a frame over 3 frames), and carrying it would shake the box and
#: change the crop of a still face (`pipeline.reuse`). A slower real drift lags by at most this
#: much a frame until the next detection.
STILL = 0.02


def still_or(velocity: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """`velocity` (xyxy per frame), or None when it is within STILL of standing still."""
    side = max(min(box[2] - box[0], box[3] - box[1]), 1.0)
    return None if np.abs(velocity).max() < STILL * side else velocity


@dataclass
class _Track:
    id: int
    box: np.ndarray
    probs: np.ndarray | None  # None until the face is first large enough to classify
    seen: int  # the tracker's frame count at the last detection of this face
    detected: np.ndarray  # the box detected then (`box` may since have been carried)
    score: float | None = None
    velocity: np.ndarray | None = None  # box change per frame between the last two detections
    missed: int = 0


class IouTracker:
    """Greedy highest-IoU-first matching. `smoothing` is the weight of the past (0 = off)."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 15, smoothing: float = 0.6):
        self.iou_threshold, self.max_missed, self.smoothing = iou_threshold, max_missed, smoothing
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.frame = 0  # frames seen, detected or carried

    def update(self, faces: list[Face], labels: tuple[str, ...]) -> None:
        """A frame's detected faces: give each an id and replace its probabilities by the
        smoothed ones."""
        self.frame += 1
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
                track = _Track(self.next_id, boxes[fi], None, self.frame, boxes[fi])
                self.next_id += 1
                self.tracks.append(track)
            else:
                track.velocity = still_or(
                    (boxes[fi] - track.detected) / (self.frame - track.seen), boxes[fi])
                track.box, track.detected, track.seen, track.missed = \
                    boxes[fi], boxes[fi], self.frame, 0
            track.score = face.score
            self._classified(track, face, probs, labels)
            updated.add(track.id)
        self._age(updated)

    def carry(self) -> list[tuple[int, tuple[float, float, float, float], float | None]]:
        """A frame with no detection: (id, box, last score) of each face present at the last
        detection, its box moved on by its velocity. Pass those faces back to `carried`."""
        self.frame += 1
        out = []
        for track in self.tracks:
            if track.missed == 0:
                step = 0 if track.velocity is None else track.velocity * (self.frame - track.seen)
                track.box = track.detected + step
                out.append((track.id, tuple(float(v) for v in track.box), track.score))
        return out

    def carried(self, faces: list[Face], labels: tuple[str, ...]) -> None:
        """The faces `carry` gave (their ids set), once classified: smooth their probabilities."""
        by_id = {t.id: t for t in self.tracks}
        for face in faces:
            probs = np.array([face.probabilities[k] for k in labels]) if face.probabilities else None
            self._classified(by_id[face.id], face, probs, labels)
        self._age({f.id for f in faces})

    def _classified(self, track: _Track, face: Face, probs: np.ndarray | None,
                    labels: tuple[str, ...]) -> None:
        if probs is not None:
            track.probs = probs if track.probs is None else \
                self.smoothing * track.probs + (1 - self.smoothing) * probs
        face.id = track.id
        if probs is not None:
            face.probabilities = dict(zip(labels, track.probs.tolist(), strict=True))

    def _age(self, present: set[int]) -> None:
        """Count a frame against every face not in it; forget those gone too long."""
        for track in self.tracks:
            if track.id not in present:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
