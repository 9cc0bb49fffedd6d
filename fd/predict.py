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


#: With no `imgsz`, an image runs at its own size (its long side rounded up to the stride), kept
#: within these bounds: a 1024 px WIDER photo at 1024 rather than shrunk to 640 lifts the held-out
#: mean AP50 from 0.69 to 0.74 and small faces from 0.44 to 0.60 (MODEL_CARD.md), the way YuNet
#: is run; a 12 MP photo is still shrunk (1280: 4x the work of 640), a thumbnail not blown up.
AUTO_MIN, AUTO_MAX = 160, 1280
#: The zoom-out pass runs the image again at half that size (not below ZOOM_MIN): a face filling
#: the frame shrinks to the sizes the detector learnt, so close-ups are found (held-out: 85.6% ->
#: 88.5% of close-ups, mean AP50 0.741 -> 0.756; about a quarter more work).
ZOOM_MIN = 96
#: Its scores count for this much against the full-size pass's: what it adds is mostly big faces
#: the full pass boxed loosely, and its own false alarms are scored high (held-out precision at
#: 0.35: 0.828 unweighted, 0.850 at 0.85, 0.868 at 0.7, with mean AP50 0.754 / 0.756 / 0.756).
ZOOM_SCORE = 0.7


def input_sizes(shape: tuple[int, ...], imgsz: int | None, zoom_out: bool) -> list[int]:
    """The long sides one image is run at: `imgsz` (or its own size, see AUTO_MIN/AUTO_MAX),
    then, with `zoom_out`, half of that."""
    main = imgsz or min(AUTO_MAX, max(AUTO_MIN, stride_multiple(max(shape[:2]))))
    sizes = [main]
    half = max(ZOOM_MIN, stride_multiple(main // 2))
    if zoom_out and half < main:
        sizes.append(half)
    return sizes


def nms(boxes: np.ndarray, scores: np.ndarray, conf: float, iou: float, max_det: int
        ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression of xyxy boxes (OpenCV's), best first."""
    if not len(boxes):
        return boxes, scores
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]], axis=1)
    idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), conf, iou, top_k=max_det)
    idx = np.asarray(idx, dtype=int).reshape(-1)
    return boxes[idx], scores[idx]


def merge_passes(passes: list[Detections], conf: float, iou: float, max_det: int) -> Detections:
    """One set of boxes from the full-size pass and the zoom-out passes after it (their scores
    weighted by ZOOM_SCORE): a face found at both sizes is kept once, with the better score."""
    if len(passes) == 1:
        return passes[0]
    boxes = np.concatenate([b for b, _ in passes]).astype(np.float32)
    scores = np.concatenate([s * (1.0 if i == 0 else ZOOM_SCORE)
                             for i, (_, s) in enumerate(passes)]).astype(np.float32)
    keep = scores >= conf
    return nms(boxes[keep], scores[keep], conf, iou, max_det)


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
        boxes, scores = nms(np.concatenate([xy - wh / 2, xy + wh / 2], axis=1), scores, conf, iou,
                            max_det)
    else:  # exported with nms=True: (max_det, 6) x1 y1 x2 y2 score class
        keep = pred[:, 4] >= conf
        boxes, scores = pred[keep, :4], pred[keep, 4]
    boxes = (boxes - np.array([pad[0], pad[1], pad[0], pad[1]])) / ratio
    h, w = shape
    boxes = np.clip(boxes, 0, [w, h, w, h])
    return boxes.astype(np.float32), scores.astype(np.float32)


class YoloOnnxDetector:
    """A YOLO ONNX export through ONNX Runtime. A model with dynamic height and width runs each
    image at its own aspect ratio (`rect`), at `imgsz` or its own size (`input_sizes`), and again
    zoomed out; a fixed-size export gets the one square it was made for."""

    def __init__(self, path: Path, imgsz: int | None, conf: float, iou: float, max_det: int,
                 rect: bool = True, zoom_out: bool = True):
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
        #: the size it was trained at, for callers that need one fixed size (quantization)
        self.trained = ast.literal_eval(meta["imgsz"])[0] if "imgsz" in meta else 640
        if fixed and imgsz and imgsz != fixed:
            raise FdError(f"face model {path} was exported at {fixed} px and cannot run at "
                                f"--imgsz {imgsz}; export it again at that size (or dynamic)")
        self.imgsz = fixed or imgsz  # None: each image at its own size
        dynamic = not isinstance(inp.shape[2], int) and not isinstance(inp.shape[3], int)
        self.stride = STRIDE if rect and dynamic else None
        self.zoom_out = zoom_out and not fixed
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def detect(self, image: np.ndarray) -> Detections:
        passes = []
        for size in input_sizes(image.shape, self.imgsz, self.zoom_out):
            blob, ratio, pad = yolo_input(image, size, self.stride)
            out = self.session.run(None, {self.input_name: blob})[0]
            passes.append(decode_yolo(out, ratio, pad, image.shape[:2], self.conf, self.iou,
                                      self.max_det))
        return merge_passes(passes, self.conf, self.iou, self.max_det)


class YoloTorchDetector:
    """A `.pt` checkpoint through ultralytics (imports torch: slower to start); the same input
    sizes as the ONNX path."""

    def __init__(self, path: Path, imgsz: int | None, conf: float, iou: float, max_det: int,
                 device: str | None = None, zoom_out: bool = True):
        from fd.yolo_env import offline_ultralytics

        ultralytics = offline_ultralytics()
        try:
            self.model = ultralytics.YOLO(str(path), task="detect")
        except Exception as e:  # torch.load / ultralytics raise many kinds
            raise FdError(f"face model {path} is not a loadable YOLO checkpoint "
                                f"({type(e).__name__})") from e
        self.imgsz, self.zoom_out = imgsz, zoom_out
        self.kw = {"conf": conf, "iou": iou, "max_det": max_det, "verbose": False,
                   "device": device}

    def detect(self, image: np.ndarray) -> Detections:
        passes = []
        for size in input_sizes(image.shape, self.imgsz, self.zoom_out):
            boxes = self.model.predict(image, imgsz=size, **self.kw)[0].boxes
            passes.append((boxes.xyxy.cpu().numpy().astype(np.float32),
                           boxes.conf.cpu().numpy().astype(np.float32)))
        return merge_passes(passes, self.kw["conf"], self.kw["iou"], self.kw["max_det"])


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
                  iou: float = 0.5, max_det: int = 1000, device: str | None = None,
                  zoom_out: bool = True):
    """Pick the back end once, at the edge; `kind` is 'yolo', 'yunet', 'haar' or 'whole'.
    `imgsz` None runs each image at its own size; `zoom_out` adds the half-size pass (YOLO)."""
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
        return YoloOnnxDetector(model, imgsz, conf, iou, max_det, zoom_out=zoom_out)
    if suffix == ".pt":
        return YoloTorchDetector(model, imgsz, conf, iou, max_det, device, zoom_out)
    raise FdError(f"face model {model}: unsupported type '{suffix}'; use .onnx or .pt")
