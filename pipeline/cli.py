"""fer-detect: photos, folders, videos or a camera in; JSON Lines, annotated media, timelines out.

Exit status: 0 all inputs processed, 1 fatal error (bad model, bad option), 3 some inputs failed
and the rest were processed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from fer.errors import FerError
from pipeline.errors import InputError, PipelineError

EXIT_SOME_FAILED = 3


def _say(text: str, to_stderr: bool) -> None:
    click.echo(text, err=to_stderr)


def _describe(result) -> str:
    if not result.faces:
        return f"{result.source}: no face found"
    parts = [f"{f.emotion} {f.probabilities[f.emotion]:.2f} at "
             f"[{', '.join(str(round(v)) for v in f.box)}]" for f in result.faces]
    n = len(result.faces)
    return f"{result.source}: {n} face{'s' if n > 1 else ''}: " + "; ".join(parts)


class Outputs:
    """The sinks the options asked for, written to together."""

    def __init__(self, json_target: str | None, out_dir: str | None):
        from pipeline.sinks import JsonlSink

        self.jsonl = JsonlSink(json_target) if json_target else None
        self.out = Path(out_dir) if out_dir else None
        self.human_to_stderr = json_target == "-"

    def photo(self, frame, result) -> None:
        from pipeline.sinks import save_annotated_image

        if self.jsonl:
            self.jsonl.write(result)
        if self.out:
            save_annotated_image(self.out, result, frame.image)
        _say(_describe(result), self.human_to_stderr)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()


def _run_stream(pipe, frames, cfg, outputs: Outputs, source: str, live: bool, show: bool,
                max_frames: int | None, duration: float | None, fps_hint: float | None,
                total: int | None) -> None:
    from tqdm import tqdm

    from pipeline.draw import draw_faces
    from pipeline.sinks import Timeline, VideoSink
    from pipeline.tracker import IouTracker

    tracker = IouTracker(cfg.track_iou, cfg.max_missed, cfg.smoothing)
    timeline = Timeline(source, pipe.labels, fps_hint)
    video = VideoSink(outputs.out, source, fps_hint or 25.0) if outputs.out else None
    bar = tqdm(total=total, desc=Path(source).name, unit="frame", disable=show or None,
               dynamic_ncols=True, leave=False)
    started, fps = time.monotonic(), None
    try:
        for n, (frame, result) in enumerate(pipe.analyze_stream(frames, tracker), start=1):
            timeline.add(result)
            if outputs.jsonl:
                outputs.jsonl.write(result)
            now = time.monotonic()
            fps = n / max(now - started, 1e-6)
            if video:
                video.write(result, frame.image, fps if live else None)
            if show:
                import cv2

                cv2.imshow("fer-detect (q quits)", draw_faces(frame.image, result.faces, fps))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            bar.update(1)
            if (max_frames and n >= max_frames) or (duration and now - started >= duration):
                break
    finally:
        bar.close()
        if video:
            video.close()
        if show:
            import cv2

            cv2.destroyAllWindows()
    ids = sorted(timeline.tracks)
    rate = f", {fps:.1f} fps" if fps else ""
    _say(f"{source}: {timeline.frames} frames{rate}, {len(ids)} face track(s)",
         outputs.human_to_stderr)
    if outputs.out:
        for path in timeline.save(outputs.out):
            _say(f"  wrote {path}", outputs.human_to_stderr)
    elif live:  # a camera session always ends with its summary
        click.echo(timeline.summary_csv(), err=True, nl=False)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1)
@click.option("--camera", help="camera index (0, 1, ...) or stream URL, instead of INPUTS")
@click.option("--whole-image", is_flag=True, help="each input is already one face crop: classify only")
@click.option("--detector", type=click.Choice(["auto", "yolo", "haar"]),
              help="face detector [auto: YOLO when a face model is installed or given, else Haar]")
@click.option("--fd-model", type=click.Path(dir_okay=False), help="face model (.onnx or .pt)")
@click.option("--fer-model", type=click.Path(dir_okay=False), help="expression model (.onnx or .keras)")
@click.option("--json", "json_target", help="write JSON Lines to this file, or - for stdout")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="folder for annotated images/videos, timelines and summaries")
@click.option("--imgsz", type=int, help="detector input size [the model's]")
@click.option("--conf", type=float, help="detector confidence threshold [0.35]")
@click.option("--margin", type=float, help="grow face boxes by this fraction per side [0]")
@click.option("--smoothing", type=float, help="video/camera emotion smoothing, 0 = off [0.6]")
@click.option("--tta/--no-tta", default=None, help="mirrored test-time augmentation [model's]")
@click.option("--no-show", is_flag=True, help="camera: no window (headless)")
@click.option("--max-frames", type=int, help="video/camera: stop after N frames")
@click.option("--duration", type=float, help="camera: stop after N seconds")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML with pipeline settings (flags override it)")
def main(inputs, camera, whole_image, detector, fd_model, fer_model, json_target, out_dir, imgsz,
         conf, margin, smoothing, tta, no_show, max_frames, duration, config_path):
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
            "fer_model": fer_model, "imgsz": imgsz, "conf": conf, "margin": margin,
            "smoothing": smoothing, "tta": tta})
        show = camera is not None and not no_show
        if show and sys.platform.startswith("linux") and not (
                os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise PipelineError("no display to show the camera window; add --no-show")
        pipe = FacePipeline.from_config(cfg)
        outputs = Outputs(json_target, out_dir)
    except FerError as e:  # PipelineError and the classifier's own model errors
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot write {e.filename}: {e.strerror}") from None

    from pipeline.sources import expand_inputs, open_camera, read_image, read_video

    done = failed = 0
    try:
        if camera is not None:
            try:
                _run_stream(pipe, open_camera(camera), cfg, outputs, f"camera {camera}", True,
                            show, max_frames, duration, None, None)
                done += 1
            except InputError as e:
                raise click.ClickException(str(e)) from None
        for kind, path in expand_inputs(list(inputs)):
            try:
                if kind.startswith("error:"):
                    raise InputError(path, kind.removeprefix("error:"))
                if kind == "image":
                    frame = read_image(path)
                    outputs.photo(frame, pipe.analyze_frame(frame))
                else:
                    import cv2

                    cap = cv2.VideoCapture(path)
                    fps, total = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                    cap.release()
                    _run_stream(pipe, read_video(path), cfg, outputs, path, False, False,
                                max_frames, None, fps or None, total or None)
                done += 1
            except InputError as e:
                failed += 1
                click.echo(f"fer-detect: skipped {e}", err=True)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        raise SystemExit(130) from None
    finally:
        outputs.close()
    if failed:
        click.echo(f"fer-detect: {failed} input(s) failed, {done} processed", err=True)
        raise SystemExit(EXIT_SOME_FAILED if done else 1)


if __name__ == "__main__":
    main()
