"""Frames decoded ahead in a thread: the same frames in the same order, errors in order, and a
stream closed early leaves no thread and no open source behind."""

import threading
import time

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.sources import Frame, read_ahead, read_video
from tests import fixtures


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "frame-reader"]


def _counted(n: int, log: dict, fail_at: int | None = None):
    try:
        for i in range(n):
            if i == fail_at:
                raise InputError("v.mp4", "broken frame")
            log["pulled"] = i + 1
            yield Frame(image=np.full((4, 4, 3), i, np.uint8), source="v.mp4", index=i, time=None)
    finally:
        log["closed"] = True


def test_a_video_reads_the_same_with_and_without_read_ahead(tmp_path):
    path = str(fixtures.video_with_faces(tmp_path / "v.mp4", frames=9))
    plain, ahead = list(read_video(path, ahead=0)), list(read_video(path, ahead=3))
    assert [f.index for f in ahead] == list(range(9)) == [f.index for f in plain]
    assert all(np.array_equal(a.image, b.image) and a.time == b.time
               for a, b in zip(plain, ahead, strict=True))
    assert not _readers()


def test_frames_are_decoded_while_the_caller_works():
    log: dict = {}
    stream = read_ahead(_counted(20, log), depth=3)
    first = next(stream)
    deadline = time.monotonic() + 5
    while log["pulled"] < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.index == 0 and log["pulled"] >= 4  # three queued while the caller held one
    assert [f.index for f in stream] == list(range(1, 20))
    assert log["closed"] and not _readers()


def test_an_error_in_the_source_comes_after_the_good_frames():
    log: dict = {}
    got = []
    with pytest.raises(InputError, match="broken frame"):
        for frame in read_ahead(_counted(10, log, fail_at=6), depth=2):
            got.append(frame.index)
    assert got == [0, 1, 2, 3, 4, 5] and log["closed"] and not _readers()


def test_stopping_early_stops_the_thread_and_closes_the_source():
    log: dict = {}
    stream = read_ahead(_counted(1000, log), depth=2)
    assert next(stream).index == 0
    stream.close()
    assert log["closed"] and log["pulled"] < 10 and not _readers()


def test_a_stalled_source_does_not_hang_the_caller_that_stops():
    released = threading.Event()

    def stalling():
        try:
            yield Frame(image=np.zeros((4, 4, 3), np.uint8), source="camera 0", index=0, time=0.0)
            released.wait(10)  # a camera whose next read blocks
            yield Frame(image=np.zeros((4, 4, 3), np.uint8), source="camera 0", index=1, time=0.1)
        finally:
            released.set()

    stream = read_ahead(stalling(), depth=1)
    next(stream)
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 5
    released.set()  # the read returns: the thread ends and closes the source
    deadline = time.monotonic() + 5
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _readers()
