"""fer-detect's speed on this machine: cold start of the CLI on one photo, per-stage milliseconds
(decode, detect, crop, classify, draw) and end-to-end frames per second on 640x480 frames with
1-3 faces, for YOLO + ONNX Runtime, YOLO + PyTorch and the Haar cascade in the same run.

    python bench/pipeline_speed.py [--fd-model face.onnx] [--fd-pt face.pt] [--fer-model fer.onnx]
                                   [--imgsz 320] [--frames 60]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd-model", help="YOLO face model .onnx [packaged]")
    ap.add_argument("--fd-pt", help="YOLO face model .pt for the PyTorch row")
    ap.add_argument("--fer-model", help="FER model [packaged]")
    ap.add_argument("--imgsz", type=int, default=320, help="detector size for the untrained stand-in")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()

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
        "YOLO + PyTorch": lambda: YoloTorchDetector(Path(pt), ort_det.imgsz, 0.35, 0.5, 1000, "cpu"),
    }
    fer_arg = ["--fer-model", str(fer_model)]
    print(f"photo cold start, median of 5 (`fer-detect {PHOTO.name}`):")
    print(f"  YOLO + ONNX Runtime: {cold_start([str(PHOTO), '--fd-model', str(onnx), *fer_arg]):.2f} s")
    print(f"  Haar cascade:        {cold_start([str(PHOTO), '--detector', 'haar', *fer_arg]):.2f} s")
    note = " (untrained stand-in: true boxes fed to the classifier)" if stand_in else ""
    print(f"\nper frame, 640x480 with 1-3 faces, median ms over {args.frames} frames; "
          f"detector {ort_det.imgsz} px{note}")
    print(f"{'back end':<22}{'decode':>8}{'detect':>8}{'crop':>7}{'classify':>9}{'draw':>7}"
          f"{'total':>8}{'fps':>7}{'faces/frame':>12}")
    for name, make in backends.items():
        use = not (stand_in and name.startswith("YOLO"))
        s = stage_times(make(), classifier, frames, args.frames, use)
        print(f"{name:<22}{s['decode']:>8.2f}{s['detect']:>8.2f}{s['crop']:>7.2f}"
              f"{s['classify']:>9.2f}{s['draw']:>7.2f}{s['total']:>8.2f}{1e3 / s['total']:>7.1f}"
              f"{s['faces']:>12.1f}")


if __name__ == "__main__":
    main()
