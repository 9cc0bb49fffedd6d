"""Shared test set-up: where ../shared/data is, and a per-test cache root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under the shared data, or skip the test when that data is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set FER_SHARED_DATA)")
    return path


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"
