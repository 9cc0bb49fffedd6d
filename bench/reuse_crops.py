"""What not classifying unchanged crops again (`pipeline.reuse`, config `reuse_tolerance`) buys
and costs on video: frames per second with it and without (tolerance 0), alternating runs on
the same frames, the share of faces the classifier still read, and how far the reported
probabilities moved.

    python bench/reuse_crops.py [--frames 90] [--rounds 3] [--detect-every 3]

Two videos from real WIDER FACE photos (bench/frames.py), 640x480: a still camera on a photo with
fresh sensor noise (sigma 2 grey levels) on every frame, and the moving pan.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def still_video(photo: np.ndarray, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.clip(photo + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8)
            for _ in range(count)]


def main() -> None:
    from bench.frames import PAN_PHOTO, moving_video, shared_data
    from pipeline.config import PipelineConfig
    from pipeline.run import FacePipeline
    from pipeline.sources import Frame
    from pipeline.tracker import IouTracker

    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--detect-every", type=int, default=PipelineConfig.detect_every)
    args = ap.parse_args()
    pan = moving_video(args.frames)
    if not pan:
        sys.exit("reuse_crops: needs the WIDER FACE photos in ../shared/data (or FER_SHARED_DATA)")
    import cv2

    photo = cv2.resize(cv2.imread(str(shared_data() / "widerface" / "WIDER_train" / "images"
                                      / PAN_PHOTO)), (640, 480), interpolation=cv2.INTER_AREA)
    pipe = FacePipeline.from_config(PipelineConfig())
    default, predict, given = pipe.reuse_tolerance, pipe.classifier.predict, [0]

    def counted(batch, tta_flip=None):  # the faces the classifier is given
        given[0] += len(batch)
        return predict(batch, tta_flip=tta_flip)

    pipe.classifier.predict = counted

    def run(images: list[np.ndarray], tolerance: float) -> tuple[float, int, list]:
        pipe.reuse_tolerance, given[0] = tolerance, 0
        frames = (Frame(im, "video", i, i / 30) for i, im in enumerate(images))
        start = time.perf_counter()
        results = [r for _, r in pipe.analyze_stream(frames, IouTracker(), args.detect_every)]
        return len(images) / (time.perf_counter() - start), given[0], results

    print(f"{args.frames} frames at 640x480, --detect-every {args.detect_every}, "
          f"{args.rounds} alternating rounds, median fps; reuse_tolerance {default} against 0")
    for name, images in [("still camera", still_video(photo, args.frames)), ("moving pan", pan)]:
        run(images, 0.0)  # warm-up
        fps: dict[float, list[float]] = {default: [], 0.0: []}
        for _ in range(args.rounds):
            for tolerance in fps:
                speed, read, results = run(images, tolerance)
                fps[tolerance].append(speed)
                if tolerance == default:
                    read_with, with_reuse = read, results
                else:
                    read_all, without = read, results
        moved = max((abs(a.probabilities[k] - b.probabilities[k])
                     for ra, rb in zip(with_reuse, without, strict=True)
                     for a, b in zip(ra.faces, rb.faces, strict=True) if a.probabilities
                     for k in a.probabilities), default=0.0)
        on, off = statistics.median(fps[default]), statistics.median(fps[0.0])
        print(f"{name:12s}: {off:5.1f} -> {on:5.1f} fps (x{on / off:.2f}); faces read "
              f"{read_with} of {read_all}; largest change of a reported probability {moved:.4f}")


if __name__ == "__main__":
    main()
