"""What every reader yields: small records that name an image, its label and an optional face box."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One labelled face. Exactly one of `path` (decoded later) or `pixels` (already decoded) is set."""

    key: str
    label: str
    path: Path | None = None
    pixels: np.ndarray | None = field(default=None, compare=False, hash=False)
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in the source image


@dataclass
class SkipLog:
    """Counts records left out and keeps a few examples per reason for the report."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < self.max_examples:
            shown.append(where)

    def merge(self, other: SkipLog) -> None:
        for reason, n in other.counts.items():
            self.counts[reason] += n
            shown = self.examples.setdefault(reason, [])
            shown.extend(other.examples.get(reason, [])[: self.max_examples - len(shown)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"total": self.total, "by_reason": dict(self.counts), "examples": self.examples}

    def summary(self) -> str:
        if not self.counts:
            return "nothing skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common())
        return f"skipped {self.total}: {parts}"


def fingerprint(samples: list[Sample]) -> str:
    """Stable hash of a sample list, so a cache is reused only for exactly the same records."""
    h = hashlib.sha1()
    for s in samples:
        h.update(f"{s.key}\t{s.label}\t{s.box}\n".encode())
        if s.pixels is not None:
            h.update(np.ascontiguousarray(s.pixels).tobytes())
    return h.hexdigest()


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
