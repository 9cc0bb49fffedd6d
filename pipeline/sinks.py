"""Where results go: JSON Lines, annotated images and videos, per-face timelines, CSV summaries.
All of them read the same `FrameResult` records."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from pipeline.draw import draw_faces
from pipeline.records import FrameResult


class JsonlSink:
    """One JSON object per image or frame, to a file or stdout ('-')."""

    def __init__(self, target: str):
        self.stream: IO[str] = sys.stdout if target == "-" else open(target, "w")  # noqa: SIM115
        self.owned = target != "-"

    def write(self, result: FrameResult) -> None:
        self.stream.write(json.dumps(result.to_json()) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


def unique_path(folder: Path, name: str) -> Path:
    path = folder / name
    n = 1
    while path.exists():
        path = folder / f"{Path(name).stem}_{n}{Path(name).suffix}"
        n += 1
    return path


def save_annotated_image(folder: Path, result: FrameResult, image: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(result.source).name
    if Path(name).suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp", ".webp"}:
        name = Path(name).stem + ".png"
    path = unique_path(folder, name)
    if not cv2.imwrite(str(path), draw_faces(image, result.faces)):
        raise OSError(f"cannot write {path}")
    return path


class VideoSink:
    """An annotated copy of a video (mp4v), opened on the first frame."""

    def __init__(self, folder: Path, source: str, fps: float):
        self.path = unique_path(folder, f"{Path(source).stem}_fer.mp4")
        self.fps = fps if fps and fps > 0 else 25.0
        self.writer: cv2.VideoWriter | None = None

    def write(self, result: FrameResult, image: np.ndarray, fps: float | None = None) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                          self.fps, (w, h))
        self.writer.write(draw_faces(image, result.faces, fps))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


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
                "emotion": face.emotion,
                "probabilities": {k: round(v, 5) for k, v in face.probabilities.items()}})

    def to_json(self) -> dict:
        return {"source": self.source, "fps": self.fps, "frames": self.frames,
                "labels": list(self.labels), "probability_kind": "softmax",
                "tracks": {str(k): v for k, v in sorted(self.tracks.items())}}

    def summary_rows(self) -> list[dict]:
        rows = []
        for track_id, points in sorted(self.tracks.items()):
            counts = Counter(p["emotion"] for p in points)
            mean = {k: float(np.mean([p["probabilities"][k] for p in points])) for k in self.labels}
            rows.append({"id": track_id, "first_frame": points[0]["frame"],
                         "last_frame": points[-1]["frame"], "frames": len(points),
                         "dominant": counts.most_common(1)[0][0],
                         **{f"mean_{k}": round(v, 4) for k, v in mean.items()}})
        return rows

    def summary_csv(self) -> str:
        rows = self.summary_rows()
        buf = io.StringIO()
        fields = ["id", "first_frame", "last_frame", "frames", "dominant",
                  *[f"mean_{k}" for k in self.labels]]
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(self.source).stem.replace(" ", "_")
        json_path = unique_path(folder, f"{stem}_timeline.json")
        json_path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        csv_path = unique_path(folder, f"{stem}_summary.csv")
        csv_path.write_text(self.summary_csv())
        png_path = unique_path(folder, f"{stem}_timeline.png")
        self.plot(png_path)
        return [json_path, csv_path, png_path]

    def plot(self, path: Path, max_tracks: int = 6) -> None:
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
                ax.plot(x, [p["probabilities"][label] for p in points], label=label,
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
        fig.savefig(path)
        plt.close(fig)
