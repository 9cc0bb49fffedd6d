"""Temperature scaling: the ECE on hand-computed cases, the fit recovering a known temperature, the
classifier applying the temperature from its metadata, and fer-eval --calibrate end to end on a
small generated ONNX model (built with onnx.helper: no Keras needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer.calibrate import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_probs,
    nll,
    softmax,
)
from fer.cli import eval_cmd
from fer.errors import FerError
from fer.labels import LABELS
from fer.metadata import LABELS_FILE, ONNX_KEY, make_metadata, write_metadata_file
from fer.predict import Classifier, load_classifier
from tests import fixtures


def test_ece_is_zero_when_confidence_matches_accuracy():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    targets = np.array([0, 1, 0, 1])  # the two 0.5 rows: argmax 0, one right and one wrong
    assert expected_calibration_error(probs, targets) == pytest.approx(0.0)


def test_ece_on_hand_computed_bins():
    # bin (0.8, 0.867]: two faces at 0.8 (one right) -> |0.5 - 0.8| = 0.3, weight 2/4
    # bin (0.533, 0.6]: one face at 0.6, wrong -> 0.6, weight 1/4
    # bin (0.933, 1]: one face at 0.95, right -> 0.05, weight 1/4
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.4, 0.6], [0.95, 0.05]])
    targets = np.array([0, 1, 0, 0])
    expected = (0.3 * 2 + 0.6 + 0.05) / 4
    assert expected_calibration_error(probs, targets) == pytest.approx(expected)
    # an over-confident and an under-confident bin do not cancel out
    assert expected_calibration_error(probs[:2], targets[:2], bins=15) == pytest.approx(0.3)


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 7))
    true_t = 2.5  # the labels are drawn from softmax(logits / 2.5): the raw model is over-confident
    p = softmax(logits / true_t)
    targets = (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)
    raw = softmax(logits)
    fitted = fit_temperature(logits_from_probs(raw), targets)
    assert fitted == pytest.approx(true_t, rel=0.05)
    z = logits_from_probs(raw)
    assert nll(z, targets, fitted) < nll(z, targets, 1.0)
    assert expected_calibration_error(apply_temperature(raw, fitted), targets) < 0.02
    assert expected_calibration_error(raw, targets) > 0.1


def test_temperature_keeps_the_ranking_and_one_is_the_identity():
    probs = softmax(np.random.default_rng(1).normal(0, 2, (50, 7))).astype(np.float32)
    for t in (0.5, 1.7, 10.0):
        scaled = apply_temperature(probs, t)
        assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, rtol=1e-5)
        assert scaled.dtype == np.float32
    assert apply_temperature(probs, 1.0) is probs
    assert (apply_temperature(probs, 2.0).max(axis=1) < probs.max(axis=1)).all()  # softer


def _fixed_classifier(temperature: float | None) -> tuple[Classifier, np.ndarray]:
    meta = make_metadata(LABELS, 48, 1, tta_flip=False)
    if temperature is not None:
        meta["calibration"] = {"temperature": temperature}
    raw = softmax(np.arange(7, dtype=np.float64)[None, :] * 0.7).astype(np.float32)
    return Classifier(meta, lambda x: np.repeat(raw, len(x), axis=0), Path("m.onnx")), raw


def test_predict_applies_the_temperature_from_the_metadata():
    crops = np.zeros((3, 48, 48, 1), np.uint8)
    plain, raw = _fixed_classifier(None)
    np.testing.assert_allclose(plain.predict(crops), np.repeat(raw, 3, axis=0))
    scaled, _ = _fixed_classifier(2.0)
    expected = softmax(np.log(raw.astype(np.float64)) / 2.0)
    np.testing.assert_allclose(scaled.predict(crops)[0], expected[0], rtol=1e-5)
    np.testing.assert_allclose(scaled.predict(crops, calibrated=False)[0], raw[0])


@pytest.mark.parametrize("bad", [0.0, -1.0, "warm", float("nan"), 1e9])
def test_a_bad_temperature_is_refused(bad):
    with pytest.raises(FerError, match="calibration temperature"):
        _fixed_classifier(bad)


def linear_onnx(path: Path, meta: dict | None, seed: int = 0) -> Path:
    """A 48x48x1 -> 7-class softmax ONNX model (flatten, matmul, softmax) with the metadata
    embedded as fer-train embeds it: small and fast, yet a real ONNX Runtime model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(0, 4e-4, (48 * 48, 7)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 48, 48, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 7])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_KEY, json.dumps(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_onnx_takes_the_temperature_from_the_labels_json_beside_it(tmp_path):
    meta = make_metadata(LABELS, 48, 1, tta_flip=True)
    model = linear_onnx(tmp_path / "m.onnx", meta)
    assert load_classifier(model).temperature == 1.0  # embedded metadata only
    write_metadata_file({**meta, "calibration": {"temperature": 1.5}}, tmp_path / LABELS_FILE)
    assert load_classifier(model).temperature == 1.5
    other = {**make_metadata(LABELS[:5], 48, 1, True), "calibration": {"temperature": 3.0}}
    write_metadata_file(other, tmp_path / LABELS_FILE)  # another model's file: ignored
    assert load_classifier(model).temperature == 1.0


def test_fer_eval_calibrate_stores_the_temperature_and_draws_the_diagrams(tmp_path):
    meta = make_metadata(LABELS, 48, 1, tta_flip=True)
    model = linear_onnx(tmp_path / "model" / "m.onnx", meta)
    weights = model.read_bytes()
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=4)
    args = ["--model", str(model), "--data", str(data), "--cache-dir", str(tmp_path / "cache"),
            "--json", str(tmp_path / "eval.json"), "--reliability", str(tmp_path / "rel.png")]
    first = CliRunner().invoke(eval_cmd, args + ["--calibrate"])
    assert first.exit_code == 0, first.output
    assert "ECE (15 bins)" in first.output and "stored temperature" in first.output
    png = tmp_path / "rel.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = json.loads((tmp_path / "eval.json").read_text())
    stored = json.loads((tmp_path / "model" / LABELS_FILE).read_text())
    t = report["calibration"]["temperature"]
    assert stored["calibration"]["temperature"] == t and t != 1.0
    assert stored["calibration"]["faces"] == 28 and stored["calibration"]["fitted_on"].endswith("val")
    assert report["calibration"]["nll"] <= report["calibration"]["nll_uncalibrated"]
    assert model.read_bytes() == weights  # the model file itself is never rewritten
    assert not list((tmp_path / "model").glob("*.tmp"))
    # a later plain evaluation uses the stored temperature: same figures, same accuracy
    second = CliRunner().invoke(eval_cmd, args)
    assert second.exit_code == 0, second.output
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["calibration"]["temperature"] == t and not again["calibration"]["fitted_here"]
    assert again["calibration"]["ece"] == pytest.approx(report["calibration"]["ece"])
    assert again["accuracy"] == report["accuracy"]


def test_fer_eval_refuses_a_reliability_plot_over_the_labels_json(tmp_path):
    model = linear_onnx(tmp_path / "m.onnx", make_metadata(LABELS, 48, 1, tta_flip=True))
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=1)
    result = CliRunner().invoke(eval_cmd, ["--model", str(model), "--data", str(data),
                                           "--reliability", str(tmp_path / LABELS_FILE)])
    assert result.exit_code == 2 and "labels.json" in result.output
    assert not (tmp_path / LABELS_FILE).exists()


def test_calibrate_never_replaces_another_models_labels_json(tmp_path):
    model = linear_onnx(tmp_path / "m.onnx", make_metadata(LABELS, 48, 1, tta_flip=True))
    other = make_metadata(LABELS[:5], 48, 1, True)
    write_metadata_file(other, tmp_path / LABELS_FILE)
    before = (tmp_path / LABELS_FILE).read_text()
    data = fixtures.class_folders(tmp_path / "val", LABELS, per_class=1)
    result = CliRunner().invoke(eval_cmd, ["--model", str(model), "--data", str(data), "--calibrate",
                                           "--cache-dir", str(tmp_path / "cache"),
                                           "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 1 and "describes another model" in result.output
    assert (tmp_path / LABELS_FILE).read_text() == before
