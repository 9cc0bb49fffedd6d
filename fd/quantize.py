"""INT8 static quantization of a YOLO face detector with ONNX Runtime's tools.

Calibrated on real training images letterboxed exactly as inference does (`fd.predict.yolo_input`,
rectangular), in the QDQ format with per-channel weights. The detection head's last convolutions
and the box decoding after them stay in float: they produce pixel coordinates and class logits,
where 8 bits cost accuracy and save little time. Needs the `onnx` package (the train extra);
running the result needs only ONNX Runtime.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fd.errors import FdError
from fd.predict import yolo_input

IMAGE_ENDINGS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: the detection head's inner layers (two 3x3 convs per branch and scale) may be quantized;
#: its last 1x1 convs and everything after them (DFL, box decoding) stay in float
HEAD = "/model.22/"
HEAD_INNER = re.compile(r"/cv[23]\.\d+/cv[23]\.\d+\.[01]/")


def calibration_images(folder: Path, count: int) -> list[Path]:
    """`count` images spread evenly over the folder's sorted file names (deterministic)."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_ENDINGS)
    if not paths:
        raise FdError(f"no images in {folder} to calibrate the quantization with (give the "
                      "images/train folder of an fd-prep dataset)")
    step = len(paths) / min(count, len(paths))
    return [paths[int(i * step)] for i in range(min(count, len(paths)))]


def _inputs(paths: list[Path], imgsz: int, stride: int | None) -> Iterator[np.ndarray]:
    from fer.preprocess import ImageError, decode_image

    for path in paths:
        try:
            image = decode_image(path)
        except ImageError:
            continue  # one unreadable image does not spoil the calibration
        yield yolo_input(image, imgsz, stride)[0]


def float_nodes(model_path: Path, exclude_head: bool, keep_float: tuple[str, ...] = ()) -> list[str]:
    """Names of the nodes to keep in float: the head's last convs and decoding when asked, and
    every node whose name contains one of `keep_float` (e.g. '/model.0/', the first conv)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [n.name for n in graph.node
            if (exclude_head and HEAD in n.name and not HEAD_INNER.search(n.name))
            or any(k in n.name for k in keep_float)]


def quantize_detector(model: Path, out: Path, images: Path, count: int = 150,
                      per_channel: bool = True, exclude_head: bool = True,
                      imgsz: int | None = None, reduce_range: bool = False,
                      keep_float: tuple[str, ...] = (), method: str = "minmax") -> Path:
    """Write an INT8 (QDQ) copy of the ONNX detector `model` to `out`, atomically; the model's
    metadata (its trained input size, names) is carried over so the pipeline reads it the same."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fd.predict import YoloOnnxDetector

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise FdError(f"calibration method '{method}': use one of {', '.join(methods)}")
    model, out = Path(model), Path(out)
    detector = YoloOnnxDetector(model, imgsz, 0.35, 0.5, 1000)  # refuses a non-YOLO file
    if any(n.op_type in ("QuantizeLinear", "QLinearConv") for n in onnx.load(str(model)).graph.node):
        raise FdError(f"face model {model} is already quantized (INT8); quantize the float export "
                      "of its .pt instead (make quantize-fd does both)")
    paths = calibration_images(images, count)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.blobs = _inputs(paths, detector.imgsz or detector.trained, detector.stride)

        def get_next(self) -> dict | None:
            blob = next(self.blobs, None)
            return None if blob is None else {detector.input_name: blob}

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        staged = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(staged), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        nodes_to_exclude=float_nodes(prepared, exclude_head, keep_float))
        quantized = onnx.load(str(staged))
        original = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
        original["quantization"] = (f"int8 static QDQ, per_channel={per_channel}, "
                                    f"exclude_head={exclude_head}, keep_float={list(keep_float)}, "
                                    f"{len(paths)} calibration images")
        del quantized.metadata_props[:]
        for key, value in original.items():
            quantized.metadata_props.add(key=key, value=value)
        part = out.with_name(out.name + ".part")
        onnx.save(quantized, str(part))
        os.replace(part, out)
    shutil.rmtree(Path(tempfile.gettempdir()) / "ort.quant", ignore_errors=True)
    return out
