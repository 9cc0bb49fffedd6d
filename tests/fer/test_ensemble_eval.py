"""`fer-eval --model A --model B`: the ensemble's figures (mean probabilities, the teacher
`fer-train --teacher` would make of the same models) and each member's."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fer.cli import eval_cmd
from fer.labels import LABELS
from tests import fixtures
from tests.models import tiny_keras_fer


def _invoke(*args):
    return CliRunner().invoke(eval_cmd, [str(a) for a in args])


def test_fer_eval_measures_an_ensemble_and_each_member(tmp_path):
    from fer.calibrate import calibration_report
    from fer.evaluate import align_targets, classification_metrics
    from fer.predict import load_classifier
    from fer.prepare import prepare
    from fer.readers import read_dataset

    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=4)
    # two models that disagree as much: one leans to angry, the other to happy, so their mean
    # is decided face by face
    a = tiny_keras_fer(tmp_path / "a", {0: 3.0}, seed=1)
    b = tiny_keras_fer(tmp_path / "bb", {3: 3.0}, seed=2)
    report = tmp_path / "ens.json"
    result = _invoke("--model", a, "--model", b, "--data", data, "--json", report,
                     "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 (mean probabilities)" in result.output
    saved = json.loads(report.read_text())
    assert saved["model"] == [str(a), str(b)]
    members = [load_classifier(m) for m in (a, b)]
    cache = prepare(read_dataset(str(data), "val", False, None), LABELS, (48, 48), 1,
                    tmp_path / "cache")
    targets = align_targets(cache, LABELS)
    probs = [m.predict(cache.images, calibrated=False) for m in members]
    mean = np.mean(probs, axis=0)
    assert saved["accuracy"] == classification_metrics(targets, mean, LABELS)["accuracy"]
    assert saved["confusion_matrix"] == classification_metrics(targets, mean, LABELS)[
        "confusion_matrix"]
    # its probabilities are the mean's, not either member's: their likelihood says so
    nll = [calibration_report(p, targets, 1.0)["nll_uncalibrated"] for p in (mean, *probs)]
    assert saved["calibration"]["nll_uncalibrated"] == pytest.approx(nll[0], rel=1e-5)
    assert all(abs(nll[0] - other) > 0.1 for other in nll[1:])
    assert [m["accuracy"] for m in saved["members"]] == [
        classification_metrics(targets, p, LABELS)["accuracy"] for p in probs]
    assert saved["calibration"]["temperature"] == 1.0


def test_models_of_other_classes_make_no_ensemble(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=2)
    a = tiny_keras_fer(tmp_path / "a")
    b = tiny_keras_fer(tmp_path / "b", labels=("angry", "happy", "sad", "surprise", "neutral"))
    result = _invoke("--model", a, "--model", b, "--data", data, "--json", tmp_path / "r.json",
                     "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1 and "differ in labels or input" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r.json").exists()


def test_calibrate_and_the_report_paths_are_checked_for_every_model(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=2)
    a, b = tiny_keras_fer(tmp_path / "a"), tiny_keras_fer(tmp_path / "b")
    result = _invoke("--model", a, "--model", b, "--data", data, "--calibrate")
    assert result.exit_code == 2 and "give one --model" in result.output
    # a report may not overwrite the second model's labels.json either
    result = _invoke("--model", a, "--model", b, "--data", data,
                     "--json", tmp_path / "b" / "labels.json")
    assert result.exit_code == 2 and "labels.json" in result.output
