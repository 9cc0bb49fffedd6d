"""fer-train on several datasets at once and on a class subset (issue 14), end to end on generated
data: a FER2013-style CSV and a folder-per-class tree, one short epoch of a tiny net, then the
5-class model through fer-eval and fer-detect the way a user runs them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fer.cli import eval_cmd, train_cmd
from fer.errors import FerError
from fer.labels import LABELS, class_subset
from fer.prepare import OTHER_CLASS
from tests import fixtures

FIVE = ("angry", "happy", "sad", "surprise", "neutral")


def invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def _tiny_config(folder):
    path = folder / "tiny.yaml"
    path.write_text("model: {widths: [8, 16], dense_units: 16}\ntrain: {batch_size: 16, workers: 1, "
                    "warmup_epochs: 0}\naugment: {affine_p: 0.0, dropout_p: 0.0}\n")
    return path


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    """One run over two datasets in two formats, validated on both, on five of the seven classes."""
    root = tmp_path_factory.mktemp("multi")
    csv = fixtures.fer2013_csv(root / "fer2013.csv", per_class=4, usages=("Training", "PublicTest"))
    folders = root / "folders"
    fixtures.class_folders(folders / "train", LABELS, per_class=3, seed=500)
    fixtures.class_folders(folders / "val", LABELS, per_class=2, seed=900)
    out, cache = root / "run", root / "cache"
    result = invoke(train_cmd, ["--data", csv, "--data", folders, "--val", csv, "--val", folders,
                                "--classes", ",".join(FIVE), "--epochs", 1, "--out", out,
                                "--cache-dir", cache, "--config", _tiny_config(root),
                                "--no-progress"])
    assert result.exit_code == 0, result.output
    return root, out, cache, result.output


@pytest.mark.slow
def test_several_datasets_train_as_one_with_counts_per_dataset(subset_run):
    root, out, cache, output = subset_run
    metrics = json.loads((out / "metrics.json").read_text())
    train, val = metrics["train"]["datasets"], metrics["validation"]["datasets"]
    assert [d["source"].split("/")[-1] for d in train] == ["fer2013.csv#train", "train"]
    assert [d["faces"] for d in train] == [4 * 5, 3 * 5]  # the five classes of each
    assert [d["faces"] for d in val] == [4 * 5, 2 * 5]
    assert metrics["train"]["faces"] == 35 and metrics["validation"]["samples"] == 30
    assert train[0]["class_counts"] == dict.fromkeys(FIVE, 4)
    assert train[0]["skipped"]["by_reason"] == {OTHER_CLASS: 8}  # disgust and fear, 4 each
    assert metrics["train"]["class_counts"] == dict.fromkeys(FIVE, 7)
    # each dataset decoded into the cache once, with all seven classes (reusable by any subset)
    manifests = [json.loads(p.read_text()) for p in cache.glob("*/manifest.json")]
    assert len(manifests) == 4 and all(m["labels"] == list(LABELS) for m in manifests)
    assert "fer2013.csv#train" in output and "train:" in output


@pytest.mark.slow
def test_a_subset_model_carries_its_labels(subset_run):
    _, out, _, _ = subset_run
    from fer.predict import load_classifier

    assert json.loads((out / "labels.json").read_text())["labels"] == list(FIVE)
    assert json.loads((out / "metrics.json").read_text())["labels"] == list(FIVE)
    onnx = load_classifier(out / "model.onnx")  # metadata embedded in the ONNX file itself
    assert onnx.labels == FIVE and onnx.predict(fixtures.face_like(1)[None, :, :, None]).shape == (1, 5)
    assert 0.01 <= onnx.temperature <= 100  # fer-train fits the temperature on validation
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["classes"] == list(FIVE)


@pytest.mark.slow
def test_fer_detect_reports_five_probabilities(subset_run, tmp_path):
    _, out, _, _ = subset_run
    from pipeline.cli import main

    target = tmp_path / "out.jsonl"
    result = invoke(main, [fixtures.astronaut_path(), "--fer-model", out / "model.onnx",
                           "--json", target])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in target.read_text().splitlines()]
    (face,) = record["faces"]
    assert list(face["probabilities"]) == list(FIVE)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["emotion"] in FIVE


@pytest.mark.slow
def test_fer_eval_measures_a_subset_model_on_its_classes(subset_run, tmp_path):
    root, out, cache, _ = subset_run
    report = tmp_path / "eval.json"
    result = invoke(eval_cmd, ["--model", out / "model.onnx", "--data", root / "fer2013.csv",
                               "--cache-dir", cache, "--json", report])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["labels"] == list(FIVE) and list(data["per_class"]) == list(FIVE)
    assert data["samples"] == 20 and data["skipped"]["by_reason"] == {OTHER_CLASS: 8}
    assert f"8 {OTHER_CLASS}" in result.output


def test_class_subset_keeps_the_shared_order_and_accepts_spellings():
    assert class_subset("neutral,Happiness, anger,sad,surprised") == \
        ("angry", "happy", "sad", "surprise", "neutral")
    assert class_subset(["happy", "contempt"]) == ("happy", "contempt")


@pytest.mark.parametrize("text,match", [("happy,bored", "'bored' is not an expression"),
                                        ("happy,joy", "names happy twice"),
                                        ("happy", "at least two classes")])
def test_class_subset_refuses_bad_lists(text, match):
    with pytest.raises(FerError, match=match):
        class_subset(text)


def test_fer_train_refuses_a_bad_class_list_before_any_work(tmp_path):
    result = invoke(train_cmd, ["--data", tmp_path / "missing", "--out", tmp_path / "run",
                                "--classes", "happy,bored"])
    assert result.exit_code == 2 and "'bored' is not an expression" in result.output
    assert not (tmp_path / "run").exists()


def test_the_same_dataset_twice_is_refused(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=1)
    result = invoke(train_cmd, ["--data", data, "--data", f"{tmp_path}/./d", "--out",
                                tmp_path / "run", "--cache-dir", tmp_path / "cache"])
    assert result.exit_code == 1 and "given twice" in result.output
    assert not (tmp_path / "run").exists()
