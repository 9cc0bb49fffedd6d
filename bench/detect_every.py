"""What `fer-detect --detect-every N` costs and saves on a video with motion (bench/frames.py's pan
over a real photo): for each N, mean box IoU and face recall against detecting every frame, id
switches, and frames per second, all N run turn by turn on each frame so the machine's load
hits them alike.

    python bench/detect_every.py [--frames 120] [--every 1,2,3,4,6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compare(reference: list[list], runs: list[list]) -> tuple[float, float, int]:
    """Mean IoU of each reference face with its best match, the share of reference faces matched
    at IoU >= 0.5, and id switches: how often the id matched to one reference id changes."""
    from fd.boxes import iou

    ious, found, switches = [], 0, 0
    last: dict[int, int] = {}
    total = 0
    for ref_faces, faces in zip(reference, runs, strict=True):
        ref = np.array([f.box for f in ref_faces]).reshape(-1, 4)
        got = np.array([f.box for f in faces]).reshape(-1, 4)
        overlaps = iou(ref, got)
        for r, face in enumerate(ref_faces):
            total += 1
            if not overlaps.shape[1]:
                ious.append(0.0)
                continue
            g = int(overlaps[r].argmax())
            ious.append(float(overlaps[r, g]))
            if overlaps[r, g] >= 0.5:
                found += 1
                if face.id in last and last[face.id] != faces[g].id:
                    switches += 1
                last[face.id] = faces[g].id
    return float(np.mean(ious)) if ious else float("nan"), found / max(total, 1), switches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--every", default="1,2,3,4,6")
    args = ap.parse_args()

    from bench.frames import moving_video
    from pipeline import FacePipeline
    from pipeline.sources import Frame
    from pipeline.tracker import IouTracker

    video = moving_video(args.frames)
    if not video:
        sys.exit("no shared data: bench/frames.py needs WIDER FACE in ../shared/data")
    every = [int(n) for n in args.every.split(",")]
    if 1 not in every:
        every.insert(0, 1)
    pipe = FacePipeline.from_config()
    trackers = {n: IouTracker() for n in every}
    faces: dict[int, list] = {n: [] for n in every}
    seconds = dict.fromkeys(every, 0.0)
    for i, image in enumerate(video):
        frame = Frame(image, "pan", i, i / 30)
        order = every if i % 2 == 0 else every[::-1]
        for n in order:
            t = time.perf_counter()
            result = pipe.track_frame(frame, trackers[n], i % n == 0)
            seconds[n] += time.perf_counter() - t
            faces[n].append(result.faces)
    print(f"moving video ({len(video)} frames, 640x480, a pan and zoom over a real photo with 3 "
          f"faces), against detecting every frame:")
    print(f"{'detect every':<14}{'mean IoU':>9}{'recall':>8}{'id switches':>12}{'fps':>7}{'speed-up':>9}")
    for n in every:
        mean_iou, recall, switches = compare(faces[1], faces[n])
        fps = len(video) / seconds[n]
        print(f"{n:<14}{mean_iou:>9.3f}{recall:>8.3f}{switches:>12}{fps:>7.1f}"
              f"{seconds[1] / seconds[n]:>9.2f}")


if __name__ == "__main__":
    main()
