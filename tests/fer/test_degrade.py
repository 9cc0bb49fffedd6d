"""Real-photo corruptions: what each does to a crop, that they are fixed (two models meet the same
pixels), that training samples them, and fer-eval --degrade end to end on a small ONNX model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer.augment import build_augmenter
from fer.cli import eval_cmd
from fer.config import AugmentConfig
from fer.degrade import CORRUPTIONS, parse_corruptions
from fer.errors import FerError
from fer.labels import LABELS
from fer.metadata import make_metadata
from tests import fixtures
from tests.fer.test_calibrate import linear_onnx


def _faces() -> np.ndarray:
    return np.stack([fixtures.face_like(i)[:, :, None] for i in range(6)])


def _sharpness(images: np.ndarray) -> float:
    return float(np.mean([cv2.Laplacian(i.astype(np.float32), cv2.CV_32F).var() for i in images]))


def _blockiness(images: np.ndarray) -> float:
    """Mean step between columns across 8-px block borders over the mean step inside blocks."""
    x = images[..., 0].astype(int)
    across = np.abs(x[:, :, 8::8] - x[:, :, 7:-1:8]).mean()
    inside = np.abs(x[:, :, 4::8] - x[:, :, 3::8]).mean()
    return float(across / inside)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_keeps_the_shape_changes_pixels_and_is_fixed(name):
    faces = _faces()
    out = CORRUPTIONS[name](faces)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - faces).mean() > 1.0
    assert np.array_equal(out, CORRUPTIONS[name](faces))  # same pixels on every run


def test_what_each_corruption_does():
    faces = _faces()
    assert _sharpness(CORRUPTIONS["lowres"](faces)) < 0.5 * _sharpness(faces)
    assert _sharpness(CORRUPTIONS["blur"](faces)) < 0.5 * _sharpness(faces)
    assert CORRUPTIONS["dark"](faces).mean() < 0.5 * faces.mean()
    # JPEG at quality 25 leaves 8x8 block edges: steps across block borders outgrow the others
    assert _blockiness(CORRUPTIONS["jpeg"](faces)) > 1.2 > 1.0 > _blockiness(faces)


def test_parse_corruptions():
    assert parse_corruptions("all") == tuple(CORRUPTIONS)
    assert parse_corruptions("jpeg, dark") == ("jpeg", "dark")
    for bad in ("fog", "", "jpeg,fog"):
        with pytest.raises(FerError, match="use 'all' or some of lowres, jpeg, blur, dark"):
            parse_corruptions(bad)


def test_training_samples_the_degradations_only_when_asked():
    face = fixtures.face_like(7)[:, :, None]
    only = dict(hflip=0, affine_p=0, brightness_contrast_p=0, blur_noise_p=0, dropout_p=0)
    off = build_augmenter(AugmentConfig(**only), seed=0)
    assert np.array_equal(off(image=face)["image"], face)
    on = build_augmenter(AugmentConfig(**only, degrade_p=1.0), seed=0)
    outs = [on(image=face)["image"].reshape(face.shape) for _ in range(12)]
    assert all(o.dtype == np.uint8 and o.shape == face.shape for o in outs)
    assert all(not np.array_equal(o, face) for o in outs)
    assert min(o.mean() for o in outs) < 0.6 * face.mean()  # a dim room came up


def test_fer_eval_degrade_reports_each_corruption(tmp_path):
    model = linear_onnx(tmp_path / "m.onnx", make_metadata(LABELS, 48, 1, tta_flip=False))
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=3)
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(eval_cmd, ["--model", str(model), "--data", str(data),
                                           "--cache-dir", str(tmp_path / "cache"), "--json",
                                           str(report), "--degrade", "all"])
    assert result.exit_code == 0, result.output
    degraded = json.loads(report.read_text())["degraded"]
    assert list(degraded) == list(CORRUPTIONS)
    assert all(0 <= m["accuracy"] <= 1 and 0 <= m["macro_f1"] <= 1 for m in degraded.values())
    for name in CORRUPTIONS:
        assert any(line.startswith(name) for line in result.output.splitlines()), name


def test_fer_eval_refuses_an_unknown_corruption_before_any_work(tmp_path):
    model = linear_onnx(tmp_path / "m.onnx", make_metadata(LABELS, 48, 1, tta_flip=False))
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=1)
    result = CliRunner().invoke(eval_cmd, ["--model", str(model), "--data", str(data),
                                           "--cache-dir", str(tmp_path / "cache"),
                                           "--json", str(tmp_path / "e.json"), "--degrade", "fog"])
    assert result.exit_code != 0 and "--degrade 'fog'" in result.output
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "cache").exists()
