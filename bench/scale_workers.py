"""fer-detect on real photos: one process vs --workers N, and what splitting the threads buys.

    python bench/scale_workers.py [--images 500] [--chunks 4]

The photos are the WIDER FACE training images under ../shared/data (sorted, the first --images).
They are cut into --chunks slices and every setting runs on each slice in turn, rotating which
goes first, so a machine whose load drifts (another job on the same cores) slows every setting
alike and the ratios stay comparable. Wall time includes each run's start (loading the models,
spawning the workers), as a user sees it. The records of every setting are compared with the
plain run's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # name -> extra fer-detect options
    "plain": [],
    "workers 1": ["--workers", "1"],
    "workers 2 (1 thread each)": ["--workers", "2"],
    "workers 2 (2 threads each)": ["--workers", "2", "--worker-threads", "2"],
}


def photos(count: int) -> list[Path]:
    shared = Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data"))
    found = sorted((shared / "widerface" / "WIDER_train" / "images").rglob("*.jpg"))
    if not found:
        sys.exit(f"no WIDER FACE images under {shared}; set FER_SHARED_DATA")
    return found[:count]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()

    images = photos(args.images)
    work = Path(tempfile.mkdtemp(prefix="fer-scale-"))
    slices = []
    for c in range(args.chunks):
        folder = work / f"slice{c}"
        folder.mkdir()
        for p in images[c::args.chunks]:
            (folder / p.name).symlink_to(p)
        slices.append(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    seconds = dict.fromkeys(SETTINGS, 0.0)
    mismatched = dict.fromkeys(SETTINGS, 0)
    names = list(SETTINGS)
    for c, folder in enumerate(slices):
        order = names[c % len(names):] + names[:c % len(names)]
        outputs = {}
        for name in order:
            out = work / f"{folder.name}-{name.replace(' ', '_')}.jsonl"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipeline.cli", str(folder), "--json", str(out),
                            *SETTINGS[name]], env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            seconds[name] += time.perf_counter() - started
            outputs[name] = out.read_text().splitlines()
        for name in names:
            mismatched[name] += sum(a != b for a, b in zip(outputs[name], outputs["plain"],
                                                           strict=True))
        print(f"slice {c + 1}/{len(slices)} done", file=sys.stderr)
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(f"{len(images)} WIDER FACE photos, {cores} cores (load average {load:.1f} at the end)")
    print(f"{'setting':30} {'seconds':>8} {'img/s':>7} {'vs workers 1':>13} {'records differing':>18}")
    for name in names:
        print(f"{name:30} {seconds[name]:8.1f} {len(images) / seconds[name]:7.2f} "
              f"{seconds['workers 1'] / seconds[name]:12.2f}x {mismatched[name]:18d}")


if __name__ == "__main__":
    main()
