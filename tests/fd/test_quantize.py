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


@pytest.mark.slow
def test_the_shipped_detector_quantized_agrees_with_float_on_the_example_photo(tmp_path):
    """INT8 from the shipped float ONNX, calibrated on a few real photos: the same face, boxed
    within IoU 0.8 of the float model's box, on the example photo and a landscape copy of it."""
    import cv2

    from fd.boxes import iou
    from fd.quantize import quantize_detector
    from pipeline.models import default_face_model

    model = default_face_model()
    if model is None:
        pytest.skip("no packaged face model")
    photo = cv2.imread(str(fixtures.astronaut_path()))
    calib = tmp_path / "calib"
    views = [photo, fixtures.face_patch(), cv2.imread(str(fixtures.grace_hopper_path())),
             cv2.resize(photo, (320, 240)), cv2.flip(photo, 1), photo[:, 100:]]
    for i, view in enumerate(views):
        fixtures.write_image(calib / f"{i}.jpg", view)
    out = quantize_detector(model, tmp_path / "int8.onnx", calib, count=len(views))
    fp32 = YoloOnnxDetector(model, None, 0.35, 0.5, 100)
    int8 = YoloOnnxDetector(out, None, 0.35, 0.5, 100)
    for image in (photo, cv2.copyMakeBorder(photo, 0, 0, 150, 250, cv2.BORDER_REPLICATE)):
        ref, _ = fp32.detect(image)
        got, scores = int8.detect(image)
        assert len(ref) == len(got) == 1
        assert iou(got, ref)[0, 0] > 0.8 and scores[0] > 0.35
