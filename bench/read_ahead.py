"""What decoding video frames ahead in a thread (`pipeline.sources.read_ahead`) buys: fer-detect's
video loop over a real video file, frames read in the loop's thread against read 4 ahead, in
alternating runs on the same file.

    python bench/read_ahead.py [--frames 150] [--rounds 3] [--detect-every 3]

The file is bench/frames.py's moving video (a pan over a real WIDER FACE photo), written as MPEG-4
at 640x480 and at 1280x720, the sizes of a webcam and of a phone clip.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_video(frames, path: Path, size: tuple[int, int]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for frame in frames:
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    writer.release()
    return path


def main() -> None:
    from bench.frames import moving_video
    from pipeline.config import PipelineConfig
    from pipeline.run import FacePipeline
    from pipeline.sources import READ_AHEAD, read_video
    from pipeline.tracker import IouTracker

    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--detect-every", type=int, default=PipelineConfig.detect_every)
    args = ap.parse_args()
    frames = moving_video(args.frames)
    if not frames:
        sys.exit("read_ahead: needs the WIDER FACE photos in ../shared/data (or FER_SHARED_DATA)")
    pipe = FacePipeline.from_config(PipelineConfig())

    def run(path: Path, ahead: int) -> float:
        start = time.perf_counter()
        count = sum(1 for _ in pipe.analyze_stream(read_video(str(path), ahead), IouTracker(),
                                                    args.detect_every))
        return count / (time.perf_counter() - start)

    print(f"{len(frames)} frames of a pan over a real photo, --detect-every {args.detect_every}; "
          f"{args.rounds} alternating rounds, median fps")
    with tempfile.TemporaryDirectory() as tmp:
        for size in [(640, 480), (1280, 720)]:
            path = write_video(frames, Path(tmp) / f"pan_{size[0]}.mp4", size)
            run(path, 0)  # warm-up: models and file cache
            fps: dict[int, list[float]] = {0: [], READ_AHEAD: []}
            for _ in range(args.rounds):
                for ahead in fps:
                    fps[ahead].append(run(path, ahead))
            plain, ahead = statistics.median(fps[0]), statistics.median(fps[READ_AHEAD])
            print(f"{size[0]}x{size[1]}: read in the loop {plain:6.1f} fps, "
                  f"{READ_AHEAD} ahead in a thread {ahead:6.1f} fps  (x{ahead / plain:.2f})")


if __name__ == "__main__":
    main()
