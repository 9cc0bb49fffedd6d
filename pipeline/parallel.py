"""`fer-detect --workers N` and `--resume`: many inputs through several processes, one writer.

This process feeds the inputs' paths to N worker processes (decoding is part of the work, so it
is spread too) and writes each input's records as they come back, in input order, so the file is
the single-process run's. Each worker loads its own model sessions once and runs them with
cores // N ONNX Runtime threads: N workers with ORT's default of one thread per core each would
keep N times more threads busy than there are cores.

`--resume` appends to the --json file instead of replacing it, one input's records in one write,
so a killed run leaves every input it finished in the file (pipeline/resume.py reads them back).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import click

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError, PipelineError
from pipeline.resume import Resumed, repair_and_read


@dataclass
class Outcome:
    """One input's result on its way from a worker to the writer (plain data: it is pickled)."""

    path: str
    lines: str = ""  # its JSON records, one per line
    said: list[str] = field(default_factory=list)  # the human summary, as the plain run prints it
    failure: str | None = None  # 'skipped|incomplete <path>: <reason>', as the plain run words it
    interrupted: bool = False  # a video cut short by a signal: nothing of it is kept


def cpu_count() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or cpu_count()) // workers)


def analyse(pipe, cfg: PipelineConfig, kind: str, path: str, max_frames: int | None = None,
            halt=None) -> Outcome:
    """One input, whatever its kind, with the plain run's records, words and checks; never raises
    for a bad input. `halt` (an Event) set during a video abandons it."""
    from pipeline.cli import _describe, _failure
    from pipeline.errors import InputError, PartlyRead
    from pipeline.sources import check_all_frames_read, probe_video, read_image, read_video
    from pipeline.tracker import IouTracker

    out = Outcome(path)
    try:
        if kind.startswith("error:"):
            raise InputError(path, kind.removeprefix("error:"))
        if kind == "image":
            result = pipe.analyze_frame(read_image(path))
            out.lines = json.dumps(result.to_json()) + "\n"
            out.said.append(_describe(result))
            return out
        fps, total = probe_video(path)
        tracker = IouTracker(cfg.track_iou, cfg.max_missed, cfg.smoothing)
        lines: list[str] = []
        tracks: set[int] = set()
        started = time.monotonic()
        for _, result in pipe.analyze_stream(read_video(path), tracker, cfg.detect_every):
            lines.append(json.dumps(result.to_json()) + "\n")
            tracks.update(f.id for f in result.faces if f.id is not None)
            if halt is not None and halt.is_set():
                out.interrupted = True
                return out
            if max_frames and len(lines) >= max_frames:
                break
        else:
            try:
                check_all_frames_read(path, len(lines), total)
            except PartlyRead as e:
                out.failure = "incomplete " + _failure(path, e)
        out.lines = "".join(lines)
        fps = len(lines) / max(time.monotonic() - started, 1e-6)
        out.said.append(f"{path}: {len(lines)} frames, {fps:.1f} fps, {len(tracks)} face track(s)")
    except Exception as e:  # one input's failure, never the batch's
        out.failure = "skipped " + _failure(path, e)
    return out


# --- the worker processes ------------------------------------------------------------------

_WORKER: dict = {}


def _start_worker(cfg: PipelineConfig, threads: int, halt, parent: int) -> None:
    """Pool initializer: leave Ctrl-C and SIGTERM to the parent (a terminal or a supervisor sends
    them to the whole process group; the parent finishes the work in flight and the file), take
    this worker's share of the threads, and load the models once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent)
    _WORKER.update(pipe=pipeline_with_threads(cfg, threads), cfg=cfg, halt=halt)


def pipeline_with_threads(cfg: PipelineConfig, threads: int):
    """A FacePipeline whose ONNX Runtime sessions and OpenCV use `threads` threads: one of several
    worker processes or Ray actors sharing the cores, so together they do not oversubscribe."""
    import cv2

    from fer.predict import set_onnx_threads
    from pipeline.run import FacePipeline

    set_onnx_threads(threads)
    cv2.setNumThreads(threads)
    return FacePipeline.from_config(cfg)


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel end this worker when the parent dies: a parent killed outright
    (SIGKILL, the OOM killer) would otherwise leave the workers waiting for work forever."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # the parent was gone before the line above ran
            os._exit(1)


def _work(kind: str, path: str, max_frames: int | None) -> Outcome:
    return analyse(_WORKER["pipe"], _WORKER["cfg"], kind, path, max_frames, _WORKER["halt"])


def in_processes(items: list[tuple[str, str]], cfg: PipelineConfig, workers: int, threads: int,
                 max_frames: int | None, stop) -> Iterator[Outcome]:
    """Outcomes in input order from `workers` spawned processes. At most a few inputs per worker
    are in flight, so a huge folder costs no memory; once `stop` is true nothing new starts and
    the inputs in flight are finished (videos abandoned)."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy this process's ORT threads
    halt = ctx.Event()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker,
                               initargs=(cfg, threads, halt, os.getpid()))
    pending: deque[Future] = deque()
    todo = iter(items)
    finished = False
    try:
        while True:
            while not stop and len(pending) < 2 * workers + 2:
                item = next(todo, None)
                if item is None:
                    break
                pending.append(pool.submit(_work, *item, max_frames))
            if stop and not halt.is_set():
                halt.set()
                for future in pending:
                    future.cancel()  # those not started yet
            if not pending:
                break
            head = pending.popleft()
            if not head.cancelled():
                yield head.result()
        finished = True
    finally:
        halt.set()
        pool.shutdown(wait=finished, cancel_futures=True)


# --- the CLI's side ------------------------------------------------------------------------

def check_options(camera: str | None, out_dir: str | None, json_target: str | None,
                  workers: int | None, worker_threads: int | None, resume: bool,
                  ray_address: str | None) -> None:
    """Refuse batch options that do not go with the others (ConfigError: exit 2)."""
    what = "--ray" if ray_address else "--workers" if workers else "--resume"
    if camera is not None:
        raise ConfigError(f"{what} is for photos, folders and videos, not --camera")
    if out_dir is not None:
        raise ConfigError(f"{what} writes --json records only; drop --out, or run without {what} "
                          "for annotated copies")
    if workers and ray_address:
        raise ConfigError("give --workers (this machine) or --ray (a cluster), not both")
    if worker_threads and not workers:
        raise ConfigError("--worker-threads sets the threads of each of --workers N; give that too")
    if resume and (not json_target or json_target == "-"):
        raise ConfigError("--resume continues a --json FILE; give the one the run wrote")


def skip_done(items: list[tuple[str, str]], json_target: str
              ) -> tuple[list[tuple[str, str]], Resumed]:
    """Repair the --json file of an interrupted run and leave out the inputs it already holds
    (bad inputs are never in it: they are tried, and reported, again)."""
    resumed = repair_and_read(Path(json_target))
    return [(kind, path) for kind, path in items
            if kind.startswith("error:") or not resumed.is_done(path)], resumed


def _echo(text: str, err: bool, bar) -> None:
    with bar.external_write_mode(file=sys.stderr if err else sys.stdout):
        click.echo(text, err=err)


def write_outcomes(outcomes: Iterable[Outcome], outputs, total: int) -> tuple[int, int]:
    """The one writer: each input's records in one write, its summary, a progress bar with the
    rate and time left; returns (processed, failed)."""
    from tqdm import tqdm

    done = failed = 0
    with tqdm(total=total, unit="img", dynamic_ncols=True, leave=False, file=sys.stderr,
              disable=None) as bar:  # no bar when stderr is not a terminal
        for outcome in outcomes:
            if outcome.interrupted:
                continue
            if outcome.lines and outputs.jsonl:
                outputs.jsonl.write_lines(outcome.lines)
            for line in outcome.said:
                _echo(line, outputs.human_to_stderr, bar)
            if outcome.failure:
                failed += 1
                _echo(f"fer-detect: {outcome.failure}", True, bar)
            else:
                done += 1
            bar.update(1)
    return done, failed


def run_batch(items: list[tuple[str, str]], cfg: PipelineConfig, outputs, resumed: Resumed | None,
              workers: int | None, worker_threads: int | None, ray_address: str | None,
              max_frames: int | None) -> tuple[int, int]:
    """The batch through worker processes (or Ray), with the plain run's exit rules: returns
    (processed, failed), inputs skipped as done counting as processed; a signal writes what is
    done and exits 130/143."""
    from pipeline.cli import Stop, exit_if_stopped

    resumed = resumed or Resumed()
    if resumed.done or resumed.cut:
        cut = f"; cut {resumed.cut} line(s) of an input a kill interrupted" if resumed.cut else ""
        click.echo(f"fer-detect: resuming: {len(resumed.done)} input(s) already in "
                   f"{outputs.jsonl.target} skipped as done{cut}", err=True)
    with Stop() as stop:
        try:
            if ray_address:
                from pipeline.ray_batch import on_ray

                outcomes = on_ray(items, cfg, ray_address, max_frames=max_frames, stop=stop)
            else:
                n = workers or 1
                outcomes = in_processes(items, cfg, n, worker_threads or threads_per_worker(n),
                                        max_frames, stop)
            done, failed = write_outcomes(outcomes, outputs, len(items))
        except KeyboardInterrupt:  # a second signal: stop at once, keep what is written
            outputs.close()
            click.echo("fer-detect: stopped; the inputs written so far are kept", err=True)
            raise SystemExit(stop.exit_code) from None
        except BrokenProcessPool as e:
            outputs.close()
            raise click.ClickException(f"a worker process died ({e}); the inputs before it are "
                                       "written (add --resume to go on from there)") from None
        except PipelineError as e:  # Ray missing or out of reach
            outputs.close(commit=False)
            raise click.ClickException(str(e)) from None
        except BaseException:
            outputs.close(commit=False)
            raise
    outputs.close()
    if resumed.done:
        click.echo(f"fer-detect: {done} input(s) processed now, {len(resumed.done)} skipped as done "
                   f"(already in {outputs.jsonl.target})", err=True)
    exit_if_stopped(stop, done, failed)
    return done + len(resumed.done), failed
