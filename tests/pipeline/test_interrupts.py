"""Stopping fer-detect by a signal keeps the work done (issue 15): Ctrl-C or SIGTERM on a camera
session or a video writes the JSON, timeline, plot, CSV and annotated video of the frames already
analysed, then exits 130 or 143; a kill leaves the previous --json file whole.

Each test runs the real CLI in a subprocess whose video or camera is slowed down (an endless one
for the camera, as a headless session without --duration is), and signals it once a few frames
are done."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
from pathlib import Path

import cv2
import pytest

from tests import fixtures
from tests.conftest import ROOT

SLOW_SOURCES = """
import itertools, os, sys, time
import cv2
import pipeline.sources as sources

MARK = os.environ["FER_TEST_MARK"]


def slow(frames):
    for i, frame in enumerate(frames):
        if i == 4:
            open(MARK, "w").close()  # the test signals from here on
        time.sleep(0.05)
        yield frame


def endless_camera(spec):
    image = cv2.imread(os.environ["FER_TEST_IMAGE"])
    for i in itertools.count():
        yield sources.Frame(image=image, source=f"camera {spec}", index=i, time=i * 0.05)


real_video = sources.read_video
sources.read_video = lambda path: slow(real_video(path))
sources.open_camera = lambda spec: slow(endless_camera(spec))
from pipeline.cli import main
main(sys.argv[1:])
"""


def run_until(tmp_path: Path, args: list, sig: int) -> subprocess.CompletedProcess:
    """Start fer-detect, send `sig` once it has analysed a few frames, and wait for it."""
    return fixtures.signal_when_marked(SLOW_SOURCES, args, tmp_path / "started", sig,
                                       {"FER_TEST_IMAGE": str(fixtures.astronaut_path())}, ROOT)


@pytest.mark.parametrize("source,sig,code", [("camera", signal.SIGINT, 130),
                                             ("video", signal.SIGTERM, 143)])
def test_a_signal_finishes_every_output_of_the_frames_done(tmp_path, source, sig, code):
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    if source == "camera":
        args, stem = ["--camera", "0", "--no-show"], "camera_0"
    else:
        args, stem = [fixtures.video_with_faces(tmp_path / "clip.mp4", frames=200)], "clip"
    done = run_until(tmp_path, [*args, "--whole-image", "--out", out, "--json", report], sig)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert 5 <= len(records) < 200
    timeline = json.loads((out / f"{stem}_timeline.json").read_text())
    assert timeline["frames"] == len(records)
    rows = list(csv.DictReader((out / f"{stem}_summary.csv").open()))
    assert rows and int(rows[0]["frames"]) == len(records)
    assert (out / f"{stem}_timeline.png").stat().st_size > 5000
    cap = cv2.VideoCapture(str(out / f"{stem}_fer.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(records)  # a whole, playable file
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no temporary file left behind


def test_a_headless_camera_without_duration_prints_its_summary_on_sigterm(tmp_path):
    done = run_until(tmp_path, ["--camera", "0", "--no-show", "--whole-image"], signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert "id,first_frame,last_frame,frames,dominant" in done.stderr
    assert " frames, " in done.stdout and "1 face track(s)" in done.stdout


def test_a_kill_leaves_the_previous_json_file_whole(tmp_path):
    report = tmp_path / "r.jsonl"
    report.write_text('{"source": "earlier"}\n')
    done = run_until(tmp_path, ["--camera", "0", "--no-show", "--whole-image", "--json", report,
                                "--exist-ok"], signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    assert report.read_text() == '{"source": "earlier"}\n'
