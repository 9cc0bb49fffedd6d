"""fer-detect: photos, folders, videos or a camera in; JSON Lines, annotated media, timelines out.

Exit status: 0 all inputs processed; 2 a bad option, config value or output path (before any
work); 1 a fatal error (bad model, no camera or display, no usable input); 3 some inputs failed
and the rest were processed; 130 (Ctrl-C) or 143 (SIGTERM) once the outputs of the work done so
far are written.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import click

from pipeline.fer_package import exit_if_wrong_fer

exit_if_wrong_fer("fer-detect")  # PyPI's 'fer' first on the path: one line, not a traceback

from fer.cli import OneLineErrors, OptionError  # noqa: E402
from fer.errors import FerError  # noqa: E402
from pipeline.config import LIMITS, MIN_FACE  # noqa: E402
from pipeline.errors import ConfigError, InputError, PartlyRead, PipelineError  # noqa: E402

EXIT_SOME_FAILED = 3


def _limited(name: str) -> click.ParamType:
    """The click type of a numeric option, from the same limits the config file is held to."""
    limit = LIMITS[name]
    if limit.kind is int:
        return click.IntRange(int(limit.low), int(limit.high))
    return click.FloatRange(limit.low, limit.high, max_open=limit.high_open)


def _say(text: str, to_stderr: bool) -> None:
    click.echo(text, err=to_stderr)


def _describe(result) -> str:
    if not result.faces:
        return f"{result.source}: no face found"
    parts = [("too small to read" if f.emotion is None else
              f"{f.emotion} {f.probabilities[f.emotion]:.2f}")
             + f" at [{', '.join(str(round(v)) for v in f.box)}]" for f in result.faces]
    n = len(result.faces)
    return f"{result.source}: {n} face{'s' if n > 1 else ''}: " + "; ".join(parts)


def _failure(path: str, error: Exception) -> str:
    """One line for an input that failed: its own words for a known problem, else the error's."""
    if isinstance(error, InputError):
        return str(error)
    detail = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{path}: analysis failed ({type(error).__name__}: {detail})"


class Stop:
    """Ctrl-C or SIGTERM during a run: finish the photo or frame at hand, write every output for
    the work done so far, then exit 128 + the signal (130, 143). A second signal stops at once
    (the outputs are still closed on the way out)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():  # signals reach only that one
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():  # None: a handler set outside Python
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        click.echo(f"\nfer-detect: {signal.Signals(signum).name} received: finishing the outputs "
                   "(send it again to stop at once)", err=True)

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


class Outputs:
    """The sinks the options asked for, written to together."""

    def __init__(self, json_target: str | None, append: bool, plan):
        from pipeline.sinks import JsonlSink

        self.jsonl = JsonlSink(json_target, append) if json_target else None
        self.plan = plan  # OutputPlan for --out, or None
        self.human_to_stderr = json_target == "-"

    def photo(self, frame, result) -> None:
        from pipeline.sinks import save_annotated_image

        if self.plan:
            save_annotated_image(self.plan.photos[frame.source], result, frame.image,
                                 frame.scale)
        if self.jsonl:
            self.jsonl.write(result)
        _say(_describe(result), self.human_to_stderr)

    def close(self, commit: bool = True) -> None:
        if self.jsonl:
            self.jsonl.close(commit)


def _run_stream(pipe, frames, cfg, outputs: Outputs, source: str, live: bool, show: bool,
                max_frames: int | None, duration: float | None, fps_hint: float | None,
                total: int | None, stop: Stop) -> tuple[int, bool]:
    """Analyse a video or camera; returns the frames done and whether the source ran out by
    itself. The timeline, summary and annotated video of the frames done are written however the
    loop ends: a limit, q, a signal, or an error in a frame."""
    from tqdm import tqdm

    from pipeline.draw import draw_faces
    from pipeline.sinks import Timeline, VideoSink
    from pipeline.tracker import IouTracker

    tracker = IouTracker(cfg.track_iou, cfg.max_missed, cfg.smoothing)
    timeline = Timeline(source, pipe.labels, fps_hint)
    files = outputs.plan.streams[source] if outputs.plan else None
    video = VideoSink(files.video, fps_hint or 25.0) if files else None
    bar = tqdm(total=total, desc=Path(source).name, unit="frame", disable=show or None,
               dynamic_ncols=True, leave=False)
    started, fps, ran_out = time.monotonic(), None, False
    try:
        for n, (frame, result) in enumerate(pipe.analyze_stream(frames, tracker,
                                                                        cfg.detect_every), start=1):
            timeline.add(result)
            if outputs.jsonl:
                outputs.jsonl.write(result)
            now = time.monotonic()
            fps = n / max(now - started, 1e-6)
            if video:
                video.write(result, frame.image, fps if live else None)
            bar.update(1)
            if show:
                import cv2

                cv2.imshow("fer-detect (q quits)", draw_faces(frame.image, result.faces, fps))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            if stop or (max_frames and n >= max_frames) or (duration and now - started >= duration):
                break
        else:
            ran_out = True
    finally:
        bar.close()
        if video:
            video.close()
        if show:
            import cv2

            cv2.destroyAllWindows()
        if timeline.frames:
            rate = f", {fps:.1f} fps" if fps else ""
            _say(f"{source}: {timeline.frames} frames{rate}, {len(timeline.tracks)} face track(s)",
                 outputs.human_to_stderr)
            if files:
                for path in timeline.save(files):
                    _say(f"  wrote {path}", outputs.human_to_stderr)
            elif live:  # a camera session always ends with its summary
                click.echo(timeline.summary_csv(), err=True, nl=False)
    return timeline.frames, ran_out


def _check_camera(spec: str) -> None:
    """--camera takes an index, a stream URL or a video file; anything else is a typo, refused
    before the models load instead of reported as a camera that 'cannot be opened'."""
    text = spec.strip()
    if re.fullmatch(r"-\d+", text):
        raise ConfigError(f"--camera {spec}: camera indexes start at 0 (0 is the first camera)")
    if not text.isdigit() and "://" not in text and not os.path.exists(text):
        raise ConfigError(f"--camera {spec}: not a camera index (0, 1, ...), a stream URL "
                          "(rtsp://..., http://...) or an existing video file")


def _plan(inputs: tuple[str, ...], camera: str | None, json_target: str | None, append: bool,
          out_dir: str | None, exist_ok: bool):
    """Every input and output path, checked before any model is loaded: nothing may overwrite an
    input, and nothing existing is replaced without --exist-ok (or appended to without --append)."""
    from pipeline.sinks import OutputPlan
    from pipeline.sources import expand_inputs

    if camera is not None:
        _check_camera(camera)
    out = Path(out_dir) if out_dir else None
    if append and (not json_target or json_target == "-"):
        raise ConfigError("--append adds to a --json FILE; give one")
    if out is not None:
        for raw in inputs:
            if os.path.isdir(raw) and out.resolve() == Path(raw).resolve():
                raise ConfigError(f"--out {out} is the input folder itself; choose another folder "
                                  "(one inside it is fine: it is not read back as input)")
    items = list(expand_inputs(list(inputs), skip=out))
    if json_target and json_target != "-":
        target = Path(json_target)
        used = {Path(p).resolve() for kind, p in items if not kind.startswith("error:")}
        if target.resolve() in used | {Path(p).resolve() for p in inputs}:
            raise ConfigError(f"--json {target} is one of the inputs; choose another file")
        if target.is_dir():
            raise ConfigError(f"--json {target} is a folder; give a file name")
        if target.exists() and not (exist_ok or append):
            raise ConfigError(f"--json {target} already exists; add --exist-ok to replace it or "
                              "--append to add to it")
    plan = None
    if out is not None:
        plan = OutputPlan(out, list(inputs), [i for i in items if not i[0].startswith("error:")],
                          camera)
        plan.check(exist_ok)
        if json_target and json_target != "-" and \
                Path(json_target).resolve() in {p.resolve() for p in plan.paths()}:
            raise ConfigError(f"--json {json_target} is also one of the --out files; choose "
                              "another file")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--out {out}: cannot create it ({e.strerror})") from None
    return items, plan


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1)
@click.option("--camera", help="camera index (0, 1, ...) or stream URL, instead of INPUTS")
@click.option("--whole-image", is_flag=True, help="each input is already one face crop: classify only")
@click.option("--detector", type=click.Choice(["auto", "yolo", "haar"]),
              help="face detector [auto: YOLO when a face model is installed or given, else Haar]")
@click.option("--fd-model", type=click.Path(dir_okay=False), help="face model (.onnx or .pt)")
@click.option("--fer-model", type=click.Path(dir_okay=False), help="expression model (.onnx or .keras)")
@click.option("--json", "json_target",
              help="write JSON Lines to this file (replaced when the run ends), or - for stdout")
@click.option("--append", is_flag=True,
              help="add to the --json file line by line (under a lock) instead of replacing it")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="folder for annotated images/videos, timelines and summaries (mirrors the "
                   "input folders)")
@click.option("--exist-ok", is_flag=True,
              help="replace outputs (--out files, the --json file) that already exist")
@click.option("--workers", type=click.IntRange(1, 256),
              help="analyse in N processes, each with its share of the CPU threads (--json records "
                   "only; README: Scaling out)")
@click.option("--worker-threads", type=click.IntRange(1, 256),
              help="ONNX Runtime threads per worker [cores // workers]")
@click.option("--resume", is_flag=True,
              help="skip the inputs already in the --json file and append the rest to it")
@click.option("--ray", "ray_address", metavar="ADDRESS|local",
              help="run on a Ray cluster (ray://host:10001, auto) or a local Ray; needs the [ray] "
                   "extra")
@click.option("--imgsz", type=_limited("imgsz"),
              help="detector input size (long side), rounded up to a multiple of 32 [each image "
                   "at its own size, 160-1280]")
@click.option("--zoom-out/--no-zoom-out", default=None,
              help="run the detector again at half size to find faces that fill the frame [on]")
@click.option("--conf", type=_limited("conf"), help="detector confidence threshold [0.35]")
@click.option("--iou", type=_limited("iou"), help="detector NMS IoU threshold [0.5]")
@click.option("--max-det", type=_limited("max_det"), help="at most N faces per image [1000]")
@click.option("--margin", type=_limited("margin"),
              help="grow face boxes by this fraction per side [0]")
@click.option("--min-face", type=_limited("min_face"),
              help="faces whose shorter side is under N pixels are boxed and reported with no "
                   f"emotion (too small to read; 0 reads all) [{MIN_FACE}]")
@click.option("--smoothing", type=_limited("smoothing"),
              help="video/camera emotion smoothing, 0 = off [0.6]")
@click.option("--detect-every", type=_limited("detect_every"),
              help="video/camera: find faces on every Nth frame only and carry the boxes along "
                   "their motion in between (1: every frame) [3]")
@click.option("--tta/--no-tta", default=None, help="mirrored test-time augmentation [model's]")
@click.option("--no-show", is_flag=True, help="camera: no window (headless)")
@click.option("--max-frames", type=click.IntRange(min=1), help="video/camera: stop after N frames")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True),
              help="camera: stop after N seconds")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML with pipeline settings (flags override it)")
def main(inputs, camera, whole_image, detector, fd_model, fer_model, json_target, append, out_dir,
         exist_ok, imgsz, zoom_out, conf, iou, max_det, margin, min_face, smoothing, detect_every, tta,
         no_show,
         max_frames, duration, config_path, **scale):
    """Find every face in photos, folders, videos or a camera and name its emotion.

    \b
    fer-detect photo.jpg
    fer-detect photos/ --json results.jsonl --out annotated/
    fer-detect clip.mp4 --out runs/clip
    fer-detect --camera 0
    """
    from pipeline.config import load_config
    from pipeline.run import FacePipeline

    if not inputs and camera is None:
        raise click.UsageError("give photos, folders or videos, or --camera INDEX")
    if inputs and camera is not None:
        raise click.UsageError("give either INPUTS or --camera, not both")
    try:
        cfg = load_config(config_path, {
            "detector": "whole" if whole_image else detector, "fd_model": fd_model,
            "fer_model": fer_model, "imgsz": imgsz, "zoom_out": zoom_out, "conf": conf,
            "iou": iou, "max_det": max_det, "margin": margin, "min_face": min_face,
            "smoothing": smoothing, "tta": tta, "detect_every": detect_every})
        batch = any(scale.values())  # --workers, --worker-threads, --resume, --ray
        if batch:
            from pipeline import parallel

            parallel.check_options(camera, out_dir, json_target, **scale)
        items, plan = _plan(inputs, camera, json_target, append or scale["resume"], out_dir,
                            exist_ok)
        resumed = None
        if scale["resume"]:
            items, resumed = parallel.skip_done(items, json_target)
    except ConfigError as e:
        raise OptionError(str(e)) from None
    try:
        show = camera is not None and not no_show
        if show and sys.platform.startswith("linux") and not (
                os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise PipelineError("no display to show the camera window; add --no-show")
        pipe = FacePipeline.from_config(cfg)
        outputs = Outputs(json_target, append or scale["resume"], plan)
    except FerError as e:  # PipelineError, the detector's and the classifier's own model errors
        if isinstance(e.__cause__, ModuleNotFoundError):  # Keras missing, worded as a bad model
            raise click.ClickException(_missing_extra(e.__cause__, cfg)) from None
        raise click.ClickException(str(e)) from None
    except ModuleNotFoundError as e:  # a .pt or .keras model on the core install
        raise click.ClickException(_missing_extra(e, cfg)) from None
    except OSError as e:
        raise click.ClickException(f"cannot write {e.filename}: {e.strerror}") from None
    except KeyboardInterrupt:  # while loading: nothing written yet
        click.echo("\nfer-detect: interrupted before any input was read", err=True)
        raise SystemExit(130) from None

    if batch:  # pipeline/parallel.py: worker processes or Ray, one writer here
        done, failed = parallel.run_batch(items, cfg, outputs, resumed, scale["workers"],
                                          scale["worker_threads"], scale["ray_address"], max_frames)
    else:
        done, failed = _run(pipe, cfg, items, camera, outputs, show, max_frames, duration)
    if failed:
        click.echo(f"fer-detect: {failed} input(s) failed, {done} processed", err=True)
        raise SystemExit(EXIT_SOME_FAILED if done else 1)


def _missing_extra(error: ModuleNotFoundError, cfg) -> str:
    """The core install runs ONNX models only; `.pt` (ultralytics, torch) and `.keras`
    (TensorFlow) models need the [train] extra."""
    models = [m for m in (cfg.fd_model, cfg.fer_model) if m and Path(m).suffix.lower() != ".onnx"]
    which = f"{' and '.join(models)} needs" if models else "this needs"
    return (f"{which} the Python package '{error.name}', which the core install leaves out; "
            "install the training extra (pip install 'fer-detect[train]') or use .onnx models")


def _run(pipe, cfg, items, camera, outputs: Outputs, show: bool, max_frames: int | None,
         duration: float | None) -> tuple[int, int]:
    """The batch: each input's failure, whatever its kind, is reported as one line and the rest go
    on; a signal ends it after the input at hand with every output finished."""
    from pipeline.sources import (
        check_all_frames_read,
        open_camera,
        probe_video,
        read_image,
        read_video,
    )

    done = failed = 0
    with Stop() as stop:
        try:
            if camera is not None:
                try:
                    _run_stream(pipe, open_camera(camera), cfg, outputs, f"camera {camera}", True,
                                show, max_frames, duration, None, None, stop)
                    done += 1
                except Exception as e:  # the only input: its failure is the run's
                    outputs.close()
                    raise click.ClickException(_failure(f"camera {camera}", e)) from None
            for kind, path in items:
                if stop:
                    break
                try:
                    if kind.startswith("error:"):
                        raise InputError(path, kind.removeprefix("error:"))
                    if kind == "image":
                        frame = read_image(path)
                        outputs.photo(frame, pipe.analyze_frame(frame))
                    else:
                        fps, total = probe_video(path)
                        frames, ran_out = _run_stream(pipe, read_video(path), cfg, outputs, path,
                                                      False, False, max_frames, None, fps, total,
                                                      stop)
                        if ran_out:
                            check_all_frames_read(path, frames, total)
                    done += 1
                except Exception as e:  # one input's failure, never the batch's
                    failed += 1
                    what = "incomplete" if isinstance(e, PartlyRead) else "skipped"
                    click.echo(f"fer-detect: {what} {_failure(path, e)}", err=True)
        except KeyboardInterrupt:  # a second signal, or one that arrived outside the handler
            outputs.close()
            click.echo(f"fer-detect: stopped; {done} input(s) processed, their outputs written",
                       err=True)
            raise SystemExit(stop.exit_code) from None
        except BaseException:
            outputs.close(commit=False)  # a crash: the previous --json file stays as it was
            raise
    outputs.close()
    exit_if_stopped(stop, done, failed)
    return done, failed


def exit_if_stopped(stop, done: int, failed: int) -> None:
    """After a signal, the outputs already closed: say what was done and exit with the signal's
    code (130/143), the same for a plain run and a --workers/--ray one."""
    if stop:
        if failed:
            click.echo(f"fer-detect: {failed} input(s) failed", err=True)
        click.echo(f"fer-detect: stopped; {done} input(s) processed, their outputs written",
                   err=True)
        raise SystemExit(stop.exit_code)


if __name__ == "__main__":
    main()
