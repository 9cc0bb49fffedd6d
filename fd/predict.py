"""Face detectors behind one call: `detect(bgr) -> (boxes Nx4 xyxy, scores N or None)`.

Back ends: YOLO through ONNX Runtime (default, no torch import), YOLO through ultralytics for
`.pt` files, OpenCV's Haar cascade, YuNet through `cv2.FaceDetectorYN` (a baseline for fd-eval and
the benchmarks; the project ships no YuNet file), and 'whole image' for inputs that are already
face crops. The face stage owns this module: fd-eval and the pipeline both call `make_detector`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np

from fd.errors import FdError

Detections = tuple[np.ndarray, np.ndarray | None]
HAAR_FILE = "haarcascade_frontalface_default.xml"


#: YOLOv8's largest stride: a rectangular input's sides must be multiples of it
STRIDE = 32


def stride_multiple(size: int, stride: int = STRIDE) -> int:
    """`size` rounded up to a multiple of `stride`, as every side of a YOLO input must be."""
    return -(-size // stride) * stride


def letterbox(image: np.ndarray, size: int, stride: int | None = None
              ) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio so the longer side is `size`, then pad with YOLO's gray.

    `stride=None` pads to a size x size square, as YOLO trains; with a stride each side is
    padded only up to its next multiple, so a 640x480 frame runs as 640x480 and not 640x640 (a
    quarter fewer pixels to convolve, the same scale for every face). The padding is split
    evenly between the two sides, as in the square case."""
    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))  # a 2x5000 strip keeps a row
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) \
        else image
    if stride:
        out_h, out_w = stride_multiple(nh, stride), stride_multiple(nw, stride)
    else:
        out_h = out_w = size
    top, left = (out_h - nh) // 2, (out_w - nw) // 2
    padded = cv2.copyMakeBorder(resized, top, out_h - nh - top, left, out_w - nw - left,
                                cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return padded, ratio, (left, top)


def yolo_input(image: np.ndarray, size: int, stride: int | None
               ) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The network's 1x3xHxW float input for a BGR image (letterboxed, RGB, 0-1), with the scale
    and padding to map boxes back; quantization calibrates on exactly this."""
    padded, ratio, pad = letterbox(image, size, stride)
    return cv2.dnn.blobFromImage(padded, 1 / 255.0, swapRB=True), ratio, pad


def decode_yolo(output: np.ndarray, ratio: float, pad: tuple[float, float], shape: tuple[int, int],
                conf: float, iou: float, max_det: int) -> Detections:
    """Raw YOLOv8 output (1, 4+classes, anchors) -> NMS'd boxes in original pixels."""
    pred = output[0]
    if pred.shape[0] < pred.shape[1]:  # channels first: raw head output
        pred = pred.T
        scores = pred[:, 4:].max(axis=1)
        keep = scores >= conf
        pred, scores = pred[keep], scores[keep]
        xy, wh = pred[:, :2], pred[:, 2:4]
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
        if len(boxes):
            xywh = np.concatenate([boxes[:, :2], wh], axis=1)
            idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), conf, iou, top_k=max_det)
            idx = np.asarray(idx, dtype=int).reshape(-1)
            boxes, scores = boxes[idx], scores[idx]
    else:  # exported with nms=True: (max_det, 6) x1 y1 x2 y2 score class
        keep = pred[:, 4] >= conf
        boxes, scores = pred[keep, :4], pred[keep, 4]
    boxes = (boxes - np.array([pad[0], pad[1], pad[0], pad[1]])) / ratio
    h, w = shape
    boxes = np.clip(boxes, 0, [w, h, w, h])
    return boxes.astype(np.float32), scores.astype(np.float32)


class YoloOnnxDetector:
    """A YOLO ONNX export through ONNX Runtime. A model with dynamic height and width runs each
    image at its own aspect ratio (`rect`); a fixed-size export gets the square it was made for."""

    def __init__(self, path: Path, imgsz: int | None, conf: float, iou: float, max_det: int,
                 rect: bool = True):
        from fer.predict import onnx_session

        try:
            self.session = onnx_session(path)
        except Exception as e:  # onnxruntime's own exception types
            raise FdError(f"face model {path} is not a loadable ONNX model "
                                f"({str(e).splitlines()[0][:100]})") from e
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4 or inp.shape[1] != 3:
            raise FdError(f"face model {path} does not look like a YOLO detector "
                                f"(input shape {inp.shape}); is it the FER model?")
        self.input_name = inp.name
        fixed = inp.shape[2] if isinstance(inp.shape[2], int) else None
        meta = self.session.get_modelmeta().custom_metadata_map
        trained = ast.literal_eval(meta["imgsz"])[0] if "imgsz" in meta else None
        if fixed and imgsz and imgsz != fixed:
            raise FdError(f"face model {path} was exported at {fixed} px and cannot run at "
                                f"--imgsz {imgsz}; export it again at that size (or dynamic)")
        self.imgsz = fixed or imgsz or trained or 640
        dynamic = not isinstance(inp.shape[2], int) and not isinstance(inp.shape[3], int)
        self.stride = STRIDE if rect and dynamic else None
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def detect(self, image: np.ndarray) -> Detections:
        blob, ratio, pad = yolo_input(image, self.imgsz, self.stride)
        out = self.session.run(None, {self.input_name: blob})[0]
        return decode_yolo(out, ratio, pad, image.shape[:2], self.conf, self.iou, self.max_det)


class YoloTorchDetector:
    """A `.pt` checkpoint through ultralytics (imports torch: slower to start)."""

    def __init__(self, path: Path, imgsz: int | None, conf: float, iou: float, max_det: int,
                 device: str | None = None):
        from fd.yolo_env import offline_ultralytics

        ultralytics = offline_ultralytics()
        try:
            self.model = ultralytics.YOLO(str(path), task="detect")
        except Exception as e:  # torch.load / ultralytics raise many kinds
            raise FdError(f"face model {path} is not a loadable YOLO checkpoint "
                                f"({type(e).__name__})") from e
        self.imgsz = imgsz or 640
        self.kw = {"conf": conf, "iou": iou, "max_det": max_det, "verbose": False,
                   "device": device}

    def detect(self, image: np.ndarray) -> Detections:
        result = self.model.predict(image, imgsz=self.imgsz, **self.kw)[0]
        return (result.boxes.xyxy.cpu().numpy().astype(np.float32),
                result.boxes.conf.cpu().numpy().astype(np.float32))


class HaarDetector:
    """OpenCV's frontal-face cascade: the classic fallback, gives no confidence."""

    def __init__(self, min_size: int = 24):
        if not hasattr(cv2, "CascadeClassifier"):
            raise FdError("this OpenCV has no CascadeClassifier (OpenCV 5 moved it to "
                                "opencv-contrib-python); install 'opencv-python<5' or use "
                                "--detector yolo")
        path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / HAAR_FILE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FdError(f"OpenCV's {HAAR_FILE} was not found at {path}; install "
                                "opencv-python 4.x, which ships it, or use --detector yolo")
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> Detections:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        side = max(self.min_size, min(gray.shape) // 40)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(side, side))
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes, None


class YuNetDetector:
    """OpenCV's YuNet (`cv2.FaceDetectorYN`): the small peer every figure is compared with."""

    def __init__(self, path: Path, conf: float = 0.5, iou: float = 0.3, max_det: int = 5000):
        if not hasattr(cv2, "FaceDetectorYN"):
            raise FdError("this OpenCV has no FaceDetectorYN (needs OpenCV >= 4.5.4)")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), conf, iou, max_det)
        except cv2.error as e:
            raise FdError(f"face model {path} is not a loadable YuNet ONNX model "
                          f"({str(e).strip().splitlines()[-1][:100]})") from e

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        self.net.setInputSize((w, h))
        _, faces = self.net.detect(image)
        if faces is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = faces[:, :4].astype(np.float32).copy()
        boxes[:, 2:] += boxes[:, :2]
        boxes = np.clip(boxes, 0, [w, h, w, h])
        return boxes, faces[:, -1].astype(np.float32)


class WholeImage:
    """Every input is one face already (FER2013 crops, a user's own crops)."""

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        return np.array([[0, 0, w, h]], np.float32), None


def make_detector(kind: str, model: Path | None, imgsz: int | None = None, conf: float = 0.35,
                  iou: float = 0.5, max_det: int = 1000, device: str | None = None):
    """Pick the back end once, at the edge; `kind` is 'yolo', 'yunet', 'haar' or 'whole'."""
    if kind == "whole":
        return WholeImage()
    if kind == "haar":
        return HaarDetector()
    if kind == "yunet":
        if model is None or not Path(model).is_file():
            raise FdError(f"YuNet model {model} not found (a face_detection_yunet*.onnx file)")
        return YuNetDetector(Path(model), conf=conf, max_det=max_det)
    if kind != "yolo":
        raise FdError(f"unknown detector '{kind}': use yolo, yunet, haar or whole")
    if model is None:
        raise FdError("no face model: this install ships none yet; pass --fd-model "
                            "face.onnx|face.pt or use --detector haar")
    model = Path(model)
    if not model.is_file():
        raise FdError(f"face model {model} not found")
    suffix = model.suffix.lower()
    if suffix == ".onnx":
        return YoloOnnxDetector(model, imgsz, conf, iou, max_det)
    if suffix == ".pt":
        return YoloTorchDetector(model, imgsz, conf, iou, max_det, device)
    raise FdError(f"face model {model}: unsupported type '{suffix}'; use .onnx or .pt")
