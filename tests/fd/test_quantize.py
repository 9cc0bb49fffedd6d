"""fd-quantize: an INT8 copy of a YOLO detector that ONNX Runtime runs like the float one."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from fd.cli import quantize_cmd
from fd.predict import YoloOnnxDetector
from tests import fixtures, models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yolo")
    _, onnx = models.tiny_yolo(folder)
    images = folder / "train"
    for i in range(4):  # real photo content, in several sizes and aspect ratios
        photo = fixtures.face_patch() if i % 2 else fixtures.face_like(i, 96, 3)
        fixtures.write_image(images / f"{i}.jpg", np.ascontiguousarray(photo[:, : 60 + 30 * i]))
    return onnx, images


def test_quantize_writes_a_qdq_model_with_a_float_head_and_the_metadata(tiny, tmp_path):
    import onnx

    model, images = tiny
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(quantize_cmd, ["--model", str(model), "--images", str(images),
                                               "--out", str(out), "--count", "4"])
    assert result.exit_code == 0, result.output
    graph = onnx.load(str(out))
    kinds = [n.op_type for n in graph.graph.node]
    assert "QuantizeLinear" in kinds and "DequantizeLinear" in kinds
    # the head's last 1x1 convs take float weights: no DequantizeLinear feeds them
    produced_by = {o: n for n in graph.graph.node for o in n.output}
    last = [n for n in graph.graph.node if n.op_type == "Conv" and n.name.endswith(".2/Conv")]
    assert last and all(produced_by.get(n.input[1]) is None or
                        produced_by[n.input[1]].op_type != "DequantizeLinear" for n in last)
    meta = {p.key: p.value for p in graph.metadata_props}
    original = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert meta["imgsz"] == original["imgsz"] and "int8" in meta["quantization"]
    assert out.stat().st_size < model.stat().st_size / 2
    boxes, scores = YoloOnnxDetector(out, None, 0.01, 0.5, 10).detect(fixtures.face_patch())
    assert boxes.shape[1] == 4 and len(boxes) == len(scores)
    assert not list(tmp_path.glob("*.part"))


def test_quantize_refuses_a_folder_without_images(tiny, tmp_path):
    model, _ = tiny
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(quantize_cmd, ["--model", str(model), "--images", str(tmp_path / "empty"),
                                               "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "no images" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_quantize_refuses_a_model_that_is_already_int8(tiny, tmp_path):
    """Quantizing a QDQ model again would calibrate fake-quantized activations (and took ONNX
    Runtime many minutes): refused in one line that says to start from the float export."""
    model, images = tiny
    once = tmp_path / "int8.onnx"
    args = ["--images", str(images), "--count", "4"]
    assert CliRunner().invoke(quantize_cmd, ["--model", str(model), "--out", str(once), *args]
                              ).exit_code == 0
    result = CliRunner().invoke(quantize_cmd, ["--model", str(once), "--out",
                                               str(tmp_path / "twice.onnx"), *args])
    assert result.exit_code == 1 and "already quantized" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "twice.onnx").exists()


@pytest.mark.slow
def test_the_shipped_int8_detector_agrees_with_its_float_weights():
    """The shipped ONNX is the INT8 copy of the shipped .pt: the same face, boxed within IoU 0.8
    of the float model's box, on the example photo and a landscape copy of it."""
    import cv2
    import onnx

    from fd.boxes import iou
    from fd.predict import YoloTorchDetector
    from pipeline.models import default_face_model, packaged

    model, weights = default_face_model(), packaged("face_yolov8n.pt")
    if model is None or weights is None:
        pytest.skip("no packaged face model")
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert "int8" in meta["quantization"]
    photo = cv2.imread(str(fixtures.astronaut_path()))
    fp32 = YoloTorchDetector(weights, 640, 0.35, 0.5, 100, device="cpu")
    int8 = YoloOnnxDetector(model, None, 0.35, 0.5, 100)
    for image in (photo, cv2.copyMakeBorder(photo, 0, 0, 150, 250, cv2.BORDER_REPLICATE)):
        ref, _ = fp32.detect(image)
        got, scores = int8.detect(image)
        assert len(ref) == len(got) == 1
        assert iou(got, ref)[0, 0] > 0.8 and scores[0] > 0.35
