"""ONNX Runtime against OpenVINO on the shipped models, on the same inputs, in alternating rounds.

    python bench/runtime_speed.py [--frames 40] [--rounds 5] [--fd-model extra.onnx ...]

Issue 9 asked for OpenVINO as an optional back end if it is measurably faster on this CPU. The
detector runs the default passes of a 640x480 frame (640x480, then the 320x240 zoom-out pass) and
the expression model a batch of one face. OpenVINO is not a dependency (`pip install openvino`);
without it only ONNX Runtime is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn, inputs: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for x in inputs:
        fn(x)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    from bench.frames import wider_photos
    from fd.predict import input_sizes, yolo_input
    from fer.predict import onnx_session
    from pipeline.models import default_face_model, default_fer_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40, help="640x480 frames")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per runtime")
    ap.add_argument("--fd-model", action="append", default=[],
                    help="another detector ONNX to time as well (an fp32 export, say)")
    args = ap.parse_args()
    try:
        import openvino as ov
    except ImportError:
        ov = None
        print("openvino is not installed: timing ONNX Runtime only")

    frames = wider_photos(args.frames)
    if not frames:
        sys.exit("runtime_speed: needs the WIDER FACE photos in ../shared/data (or FER_SHARED_DATA)")
    det_inputs = [yolo_input(f, size, 32)[0] for f in frames
                  for size in input_sizes(f.shape, None, zoom_out=True)]
    faces = [np.random.default_rng(i).random((1, 48, 48, 1), np.float32) for i in range(100)]
    models = [(Path(default_face_model()), det_inputs, len(frames), "frame")]
    models += [(Path(p), det_inputs, len(frames), "frame") for p in args.fd_model]
    models.append((Path(default_fer_model()), faces, len(faces), "face"))
    print(f"inputs: {len(frames)} WIDER FACE photos with 1-3 faces, resized to 640x480; "
          f"{args.rounds} rounds, each runtime in turn")
    for path, inputs, count, unit in models:
        session = onnx_session(path)
        name = session.get_inputs()[0].name
        runtimes = {"onnxruntime": lambda x, s=session, n=name: s.run(None, {n: x})}
        if ov is not None:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                          {"PERFORMANCE_HINT": "LATENCY"})
            request = compiled.create_infer_request()
            runtimes["openvino"] = lambda x, r=request: r.infer({0: x})
        times: dict[str, list[float]] = {k: [] for k in runtimes}
        for fn in runtimes.values():  # warm-up
            _timed(fn, inputs[:4])
        for _ in range(args.rounds):
            for key, fn in runtimes.items():
                times[key].append(_timed(fn, inputs) / count)
        base = statistics.median(times["onnxruntime"])
        for key, values in times.items():
            med = statistics.median(values)
            print(f"{path.name:28s} {key:12s} median {med:7.2f} ms/{unit} "
                  f"(min {min(values):.2f}, max {max(values):.2f})  x{base / med:.2f} vs ORT")


if __name__ == "__main__":
    main()
