"""fer-detect --workers and --resume (issue 11): the records of N worker processes are the plain
run's, bad inputs are reported the same way, and a run killed mid-way then resumed ends with
every record exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.parallel import threads_per_worker
from pipeline.resume import repair_and_read
from tests import fixtures
from tests.conftest import ROOT


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def batch(tmp_path):
    folder = fixtures.photo_folder(tmp_path / "photos", 9)
    (folder / "part0" / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "part1" / "empty.png").write_bytes(b"")
    fixtures.video_with_faces(folder / "part1" / "clip.mp4", frames=5)
    return folder


def test_workers_write_the_plain_runs_records_and_report_bad_inputs_alike(batch, fer_model,
                                                                           tmp_path):
    common = [batch, "--detector", "haar", "--fer-model", fer_model]
    plain = run([*common, "--json", tmp_path / "plain.jsonl"])
    two = run([*common, "--json", tmp_path / "two.jsonl", "--workers", 2])
    assert plain.exit_code == two.exit_code == 3, two.output
    records = (tmp_path / "plain.jsonl").read_text().splitlines()
    assert len(records) == 9 + 5  # nine photos, five video frames
    assert (tmp_path / "two.jsonl").read_text().splitlines() == records  # same order too
    fps = re.compile(r", [0-9.]+ fps")
    assert fps.sub("", two.stdout) == fps.sub("", plain.stdout)  # the per-input summaries
    failures = [line for line in two.stderr.splitlines() if line.startswith("fer-detect:")]
    assert failures == [line for line in plain.stderr.splitlines() if line.startswith("fer-detect:")]
    assert any("broken.jpg: not a readable image" in line for line in failures)
    assert any("empty.png: empty file" in line for line in failures)
    assert failures[-1] == "fer-detect: 2 input(s) failed, 10 processed"


def test_one_worker_and_json_to_stdout(batch, fer_model):
    result = run([batch, "--detector", "haar", "--fer-model", fer_model, "--json", "-",
                  "--workers", 1])
    assert result.exit_code == 3
    sources = [json.loads(line)["source"] for line in result.stdout.splitlines()]
    assert len(sources) == 14 and sources == sorted(sources)  # the folder's sorted order
    assert "face" in result.stderr  # the summaries move to stderr, as in the plain run


def test_threads_are_shared_out_not_multiplied():
    assert [threads_per_worker(n, cores=8) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


@pytest.mark.parametrize("args,words", [
    (["--workers", 2, "--out", "o"], "--workers writes --json records only"),
    (["--workers", 2, "--camera", "0"], "not --camera"),
    (["--resume"], "--resume continues a --json FILE"),
    (["--resume", "--json", "-"], "--resume continues a --json FILE"),
    (["--worker-threads", 2, "--json", "x.jsonl"], "give that too"),
    (["--workers", 2, "--ray", "local", "--json", "x.jsonl"], "not both"),
    (["--workers", 0], "0 is not in the range"),
])
def test_batch_options_that_do_not_fit_are_one_line_and_exit_2(args, words, fer_model, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = [] if "--camera" in args else [fixtures.astronaut_path()]
    result = run([*inputs, "--fer-model", fer_model, *args])
    assert result.exit_code == 2 and words in result.output, result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_resume_needs_the_file_of_a_run(fer_model, tmp_path):
    other = tmp_path / "notes.jsonl"
    other.write_text("hello\n")
    result = run([fixtures.astronaut_path(), "--fer-model", fer_model, "--detector", "haar",
                  "--json", other, "--resume"])
    assert result.exit_code == 2 and "line 1 of" in result.output
    assert other.read_text() == "hello\n"


def _line(source: str, frame: int | None = None) -> str:
    return json.dumps({"source": source, "frame": frame, "faces": []}) + "\n"


def test_repair_cuts_a_torn_line_and_the_rest_of_its_input(tmp_path):
    path = tmp_path / "r.jsonl"
    whole = _line("a.jpg") + "".join(_line("v.mp4", i) for i in range(3))
    path.write_text(whole + _line("v.mp4", 3)[:30])  # killed inside the video's write
    state = repair_and_read(path)
    assert path.read_text() == _line("a.jpg") and state.cut == 4
    assert state.done == {os.path.abspath("a.jpg")} and state.records == 1

    path.write_text(_line("a.jpg") + _line("b.jpg")[:5])  # too little to name its input
    state = repair_and_read(path)
    assert path.read_text() == "" and state.cut == 2 and not state.done  # a.jpg is done again

    path.write_text(_line("a.jpg") + _line("b.jpg"))  # a finished file is left alone
    assert repair_and_read(path).records == 2 and path.read_text() == _line("a.jpg") + _line("b.jpg")
    assert repair_and_read(tmp_path / "absent.jsonl").records == 0


#: Imported by every Python process of the killed run, the spawned workers included: each photo
#: takes a little longer, so the test can kill the run half-way through.
SLOWER = """
import itertools, os, time
if os.environ.get("FER_TEST_SLOW"):
    import pipeline.sources as sources
    real, count = sources.read_image, itertools.count(1)
    def read_image(path, *args, **kw):
        time.sleep(0.15)
        if next(count) == 3 and os.environ.get("FER_TEST_MARK"):
            open(os.environ["FER_TEST_MARK"], "w").close()  # a few photos done: signal now
        return real(path, *args, **kw)
    sources.read_image = read_image
"""


def slowed(tmp_path: Path) -> dict[str, str]:
    """The environment of a run whose every process (workers too) reads photos slowly."""
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SLOWER)
    return {"FER_TEST_SLOW": "1",
            "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_worker_run_with_the_records_done(fer_model, tmp_path, sig, code):
    folder = fixtures.photo_folder(tmp_path / "photos", 30)
    common = [folder, "--detector", "haar", "--fer-model", fer_model]
    assert run([*common, "--json", tmp_path / "clean.jsonl"]).exit_code == 0
    expected = (tmp_path / "clean.jsonl").read_text().splitlines()
    report = tmp_path / "r.jsonl"
    done = fixtures.signal_when_marked("import sys\nfrom pipeline.cli import main\nmain(sys.argv[1:])",
                                       [*common, "--json", report, "--workers", 2],
                                       tmp_path / "started", sig, slowed(tmp_path), ROOT)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "their outputs written" in done.stderr
    lines = report.read_text().splitlines()
    assert 2 <= len(lines) < 30 and lines == expected[:len(lines)]  # whole lines, in order
    assert [p.name for p in tmp_path.glob(".*")] == []  # no temporary file left behind


def test_a_killed_run_resumes_with_no_record_lost_or_repeated(fer_model, tmp_path):
    folder = fixtures.photo_folder(tmp_path / "photos", 30)
    common = [folder, "--detector", "haar", "--fer-model", fer_model]
    clean = run([*common, "--json", tmp_path / "clean.jsonl"])
    assert clean.exit_code == 0, clean.output
    expected = (tmp_path / "clean.jsonl").read_text().splitlines(keepends=True)

    report = tmp_path / "r.jsonl"
    env = {**os.environ, **slowed(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *map(str, common), "--json",
                             str(report), "--workers", "2", "--resume"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and (
                not report.exists() or report.read_text().count("\n") < 6):
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, as a crash would
        proc.wait()
        proc.stderr.close()
    killed = report.read_text().splitlines(keepends=True)
    assert 6 <= len(killed) < 30 and killed == expected[:len(killed)]
    with report.open("a") as f:  # and as if it died half-way through writing the next line
        f.write(expected[len(killed)][:len(expected[len(killed)]) // 2])

    resumed = run([*common, "--json", report, "--workers", 2, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert report.read_text().splitlines(keepends=True) == expected
    assert f"{len(killed)} input(s) already in {report} skipped as done; cut 1 line(s)" \
        in resumed.stderr
    assert f"{30 - len(killed)} input(s) processed now, {len(killed)} skipped as done" \
        in resumed.stderr

    again = run([*common, "--json", report, "--resume"])  # nothing left: nothing added
    assert again.exit_code == 0 and report.read_text().splitlines(keepends=True) == expected
