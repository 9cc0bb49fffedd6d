"""Where results go: JSON Lines, annotated images and videos, per-face timelines, CSV summaries.
All of them read the same `FrameResult` records.

Nothing is lost: every file appears whole or not at all (written beside its target, then renamed
into place), `--json` is replaced only when the run ends (or appended to line by line under a
lock), and `OutputPlan` fixes every output path before work starts, so overwrites and clashes are
refused up front instead of piling up `_1` copies.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import functools
import io
import json
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from pipeline.draw import draw_faces, faces_at_scale
from pipeline.errors import ConfigError
from pipeline.records import FrameResult

#: Annotated photos keep their name when OpenCV can write that format; others get '.png' added.
ANNOTATED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@functools.cache
def _file_mode() -> int:
    """The mode a plain open() would give a new file (temporary files are created 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(path: Path, suffix: str = ".part") -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    return fd, Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    os.chmod(tmp, _file_mode())
    os.replace(tmp, path)


def write_atomic(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, whatever happens meanwhile."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class JsonlSink:
    """One JSON object per image or frame, to stdout ('-') or a file.

    A file is written to a temporary file beside it and renamed over the target by `close()`: a
    crash or a kill leaves the previous file whole, and of two runs writing the same file the last
    to finish wins with all its lines. With `append=True` each line is appended whole under an
    exclusive lock instead, so several runs can share one file and it grows as results come."""

    def __init__(self, target: str, append: bool = False):
        self.target, self.append = target, append
        self.stream: IO[str] | None = sys.stdout if target == "-" else None
        self.tmp: Path | None = None
        self.fd: int | None = None
        if target == "-":
            return
        path = Path(target)
        if append:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        else:
            self.fd, self.tmp = _temp_beside(path)

    def write(self, result: FrameResult) -> None:
        self.write_lines(json.dumps(result.to_json()) + "\n")

    def write_lines(self, line: str) -> None:
        """Whole lines, each ending in a newline, written in one go (all of one input's records,
        so that a run appending for --resume never leaves an input half written but for a kill
        in the middle of this very write)."""
        if self.stream is not None:
            self.stream.write(line)
            self.stream.flush()
        elif self.append:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                _write_all(self.fd, line.encode())
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        else:
            _write_all(self.fd, line.encode())

    def close(self, commit: bool = True) -> None:
        """Finish the file: renamed into place when `commit`, else dropped (the old file stays)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        if self.tmp is None:
            os.close(fd)
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if commit:
            _commit(self.tmp, Path(self.target))
        else:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


@dataclass(frozen=True)
class StreamFiles:
    """A video's or camera session's outputs under --out."""

    video: Path  # <name>_fer.mp4, annotated
    timeline: Path  # <name>_timeline.json
    summary: Path  # <name>_summary.csv
    plot: Path  # <name>_timeline.png

    @classmethod
    def under(cls, folder: Path, stem: str) -> StreamFiles:
        return cls(folder / f"{stem}_fer.mp4", folder / f"{stem}_timeline.json",
                   folder / f"{stem}_summary.csv", folder / f"{stem}_timeline.png")

    def paths(self) -> list[Path]:
        return [self.video, self.timeline, self.summary, self.plot]


def camera_stem(spec: str) -> str:
    """'camera_0' for camera 0; a stream URL made safe for a file name."""
    return "camera_" + (re.sub(r"[^A-Za-z0-9.-]+", "_", spec).strip("_.") or "stream")


class OutputPlan:
    """Where every output of a run goes under --out, fixed before any work starts.

    The inputs' folder tree is mirrored below their deepest common folder (so `a/x.jpg` and
    `b/x.jpg` stay apart); `check()` refuses an output that would replace an input, two inputs
    writing one file, and, without `exist_ok`, any output that already exists."""

    def __init__(self, out: Path, inputs: list[str], items: list[tuple[str, str]],
                 camera: str | None = None):
        self.out = out
        roots = [os.path.abspath(p) if os.path.isdir(p) else os.path.dirname(os.path.abspath(p))
                 for p in inputs if os.path.exists(p)]
        self.root = Path(os.path.commonpath(roots)) if roots else Path.cwd()
        self.photos: dict[str, Path] = {}
        self.streams: dict[str, StreamFiles] = {}
        videos: dict[Path, list[tuple[Path, str]]] = defaultdict(list)  # out folder -> videos
        for kind, path in items:
            rel = Path(os.path.abspath(path)).relative_to(self.root)
            if kind == "image":
                name = rel.name if rel.suffix.lower() in ANNOTATED_SUFFIXES else rel.name + ".png"
                self.photos[path] = out / rel.parent / name
            elif kind == "video":
                videos[out / rel.parent].append((rel, path))
        for folder, found in videos.items():
            stems = Counter(rel.stem for rel, _ in found)
            for rel, path in found:  # x.mp4 beside x.avi: both keep their whole name
                stem = rel.stem if stems[rel.stem] == 1 else rel.name.replace(".", "_")
                self.streams[path] = StreamFiles.under(folder, stem)
        if camera is not None:
            self.streams[f"camera {camera}"] = StreamFiles.under(out, camera_stem(camera))

    def paths(self) -> list[Path]:
        return [*self.photos.values(), *(p for s in self.streams.values() for p in s.paths())]

    def check(self, exist_ok: bool) -> None:
        """Raise `ConfigError` for an output that would replace an input, be written twice, or
        (without `exist_ok`) replace an earlier run's file."""
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out} is a file; give a folder")
        inputs = {Path(p).resolve() for p in self.photos} | {
            Path(p).resolve() for p in self.streams if not p.startswith("camera ")}
        paths = self.paths()
        for path in paths:
            if path.resolve() in inputs:
                raise ConfigError(f"--out {self.out} would write {path} over the input itself; "
                                  "choose another --out folder")
        twice = [p for p, n in Counter(p.resolve() for p in paths).items() if n > 1]
        if twice:
            raise ConfigError(f"two inputs would both be written to {twice[0]}; rename one or "
                              "run them separately")
        existing = [p for p in paths if p.exists()]
        if existing and not exist_ok:
            more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
            raise ConfigError(f"{existing[0]} already exists{more}; add --exist-ok to replace, "
                              "or choose another --out folder")


def save_annotated_image(path: Path, result: FrameResult, image: np.ndarray,
                         scale: float = 1.0) -> Path:
    """The photo with its boxes and labels, written whole to `path` (its suffix picks the format).
    `scale` is the decoded size over the original, as `Frame.scale`."""
    ok, data = cv2.imencode(path.suffix, draw_faces(image, faces_at_scale(result.faces, scale)))
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_atomic(path, data.tobytes())
    return path


class VideoSink:
    """An annotated copy of a video (mp4v), opened on the first frame and renamed into place by
    `close()`, so an interrupted run leaves a playable file of the frames done, never a torn one."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.fps = fps if fps and fps > 0 else 25.0
        self.writer: cv2.VideoWriter | None = None
        self.tmp: Path | None = None

    def write(self, result: FrameResult, image: np.ndarray, fps: float | None = None) -> None:
        if self.writer is None:
            fd, self.tmp = _temp_beside(self.path, suffix=self.path.suffix)  # the suffix picks
            os.close(fd)  # the container; OpenCV opens the file by name
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                self.writer = None
                self.tmp.unlink(missing_ok=True)
                raise OSError(f"cannot write video {self.path}")
        self.writer.write(draw_faces(image, result.faces, fps))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            _commit(self.tmp, self.path)


class Timeline:
    """Per face id, per frame: the emotion and probabilities. Saved as JSON and a PNG plot."""

    def __init__(self, source: str, labels: tuple[str, ...], fps: float | None = None):
        self.source, self.labels, self.fps = source, labels, fps
        self.tracks: dict[int, list[dict]] = defaultdict(list)
        self.frames = 0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        for face in result.faces:
            if face.id is None:
                continue
            self.tracks[face.id].append({
                "frame": result.frame, "time": None if result.time is None else round(result.time, 3),
                "emotion": face.emotion,  # None, with probabilities None, for a face too small
                "probabilities": {k: round(v, 5) for k, v in face.probabilities.items()} or None})

    def to_json(self) -> dict:
        return {"source": self.source, "fps": self.fps, "frames": self.frames,
                "labels": list(self.labels), "probability_kind": "softmax",
                "tracks": {str(k): v for k, v in sorted(self.tracks.items())}}

    def summary_rows(self) -> list[dict]:
        rows = []
        for track_id, points in sorted(self.tracks.items()):
            read = [p for p in points if p["probabilities"]]  # frames where it was not too small
            counts = Counter(p["emotion"] for p in read)
            mean = {k: round(float(np.mean([p["probabilities"][k] for p in read])), 4) if read
                    else "" for k in self.labels}
            rows.append({"id": track_id, "first_frame": points[0]["frame"],
                         "last_frame": points[-1]["frame"], "frames": len(points),
                         "frames_read": len(read),
                         "dominant": counts.most_common(1)[0][0] if read else "",
                         **{f"mean_{k}": v for k, v in mean.items()}})
        return rows

    def summary_csv(self) -> str:
        rows = self.summary_rows()
        buf = io.StringIO()
        fields = ["id", "first_frame", "last_frame", "frames", "dominant",
                  *[f"mean_{k}" for k in self.labels], "frames_read"]
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def save(self, files: StreamFiles) -> list[Path]:
        """The timeline JSON, the CSV summary and the plot, each written whole."""
        write_atomic(files.timeline, (json.dumps(self.to_json(), indent=1) + "\n").encode())
        write_atomic(files.summary, self.summary_csv().encode())
        png = io.BytesIO()
        self.plot(png)
        write_atomic(files.plot, png.getvalue())
        return [files.timeline, files.summary, files.plot]

    def plot(self, path: Path | IO[bytes], max_tracks: int = 6) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from pipeline.draw import COLOURS

        ids = sorted(self.tracks, key=lambda k: -len(self.tracks[k]))[:max_tracks]
        fig, axes = plt.subplots(max(len(ids), 1), 1, figsize=(9, 1.9 * max(len(ids), 1) + 0.6),
                                 dpi=110, sharex=True, squeeze=False)
        use_time = all(p["time"] is not None for k in ids for p in self.tracks[k])
        for ax, track_id in zip(axes[:, 0], ids, strict=False):
            points = self.tracks[track_id]
            x = [p["time"] if use_time else p["frame"] for p in points]
            for label in self.labels:
                b, g, r = COLOURS.get(label, (128, 128, 128))
                ax.plot(x, [p["probabilities"][label] if p["probabilities"] else np.nan
                            for p in points], label=label,  # gaps where it was too small
                        color=(r / 255, g / 255, b / 255), linewidth=1.4,
                        marker="." if len(points) < 20 else None)  # short tracks stay visible
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"face #{track_id}\n({len(points)} frames)", fontsize=8)
            ax.grid(alpha=0.3)
        if not ids:
            axes[0, 0].text(0.5, 0.5, "no faces tracked", ha="center", va="center")
        axes[0, 0].legend(ncol=len(self.labels), fontsize=7, loc="upper center",
                          bbox_to_anchor=(0.5, 1.45), frameon=False)
        axes[-1, 0].set_xlabel("seconds" if use_time else "frame")
        fig.suptitle(f"Emotion probabilities over time: {Path(self.source).name}", y=0.995,
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
