"""fer-train and fer-eval end to end: a real FER2013 slice from ../shared, and generated data for
resume and bad-input paths."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fer.cli import eval_cmd, train_cmd
from fer.labels import LABELS
from tests import fixtures
from tests.conftest import shared_path

RUN_FILES = {"model.keras", "model.onnx", "labels.json", "metrics.json", "history.csv",
             "curve_accuracy.png", "curve_loss.png", "confusion.png", "config.yaml"}


def invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def fer2013_run(tmp_path_factory):
    train = shared_path("fer2013", "train")
    val = shared_path("fer2013", "publictest")
    out = tmp_path_factory.mktemp("run") / "fer"
    cache = tmp_path_factory.mktemp("cache")
    result = invoke(train_cmd, ["--data", train, "--val", val, "--max-per-class", 50,
                                "--epochs", 2, "--out", out, "--cache-dir", cache, "--no-progress"])
    assert result.exit_code == 0, result.output
    return out, val, cache, result.output


@pytest.mark.slow
def test_fer_train_writes_every_artefact(fer2013_run):
    out, _, _, output = fer2013_run
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    assert not (out / "checkpoint").exists()  # resumable state is dropped once finished
    assert "validation accuracy" in output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["faces"] == 350
    assert metrics["validation"]["samples"] == 3589 and metrics["validation"]["how"] == "given"
    assert metrics["epochs_run"] == 2
    assert set(metrics["validation"]["per_class"]) == set(LABELS)
    labels = json.loads((out / "labels.json").read_text())
    assert labels["labels"] == list(LABELS) and labels["input"]["height"] == 48


@pytest.mark.slow
def test_onnx_export_matches_keras_on_real_faces(fer2013_run):
    out, val, _, _ = fer2013_run
    import cv2

    from fer.predict import load_classifier

    paths = sorted((val / "happy").glob("*.jpg"))[:16] + sorted((val / "sad").glob("*.jpg"))[:16]
    crops = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)[:, :, None] for p in paths])
    onnx_probs = load_classifier(out / "model.onnx").predict(crops)
    keras_probs = load_classifier(out / "model.keras").predict(crops)
    assert np.abs(onnx_probs - keras_probs).max() < 1e-4
    np.testing.assert_allclose(onnx_probs.sum(axis=1), 1.0, rtol=1e-5)
    assert json.loads((out / "metrics.json").read_text())["onnx_max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_fer_eval_reproduces_the_training_figure(fer2013_run, tmp_path):
    out, val, cache, _ = fer2013_run
    report = tmp_path / "eval.json"
    result = invoke(eval_cmd, ["--model", out / "model.onnx", "--data", val, "--json", report,
                               "--cache-dir", cache, "--confusion", tmp_path / "cm.png"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "macro-F1" in result.output
    data = json.loads(report.read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert data["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-9)
    assert data["samples"] == 3589 and (tmp_path / "cm.png").stat().st_size > 1000


@pytest.mark.slow
def test_resume_continues_the_same_run(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["--data", data, "--out", out, "--cache-dir", cache, "--epochs", 2, "--no-progress",
            "--config", _tiny_config(tmp_path)]
    first = CliRunner().invoke(train_cmd, [str(a) for a in args])
    assert first.exit_code == 0, first.output
    # simulate an interruption after epoch 1: restore the state a killed run leaves behind
    again = CliRunner().invoke(train_cmd, [str(a) for a in args])
    assert again.exit_code == 1 and "--resume" in again.output
    (out / "training_done").unlink()
    (out / "checkpoint").mkdir()
    import shutil

    shutil.copy(out / "model.keras", out / "checkpoint" / "last.keras")
    (out / "checkpoint" / "state.json").write_text(json.dumps({"epoch": 1, "best": 0.0, "wait": 0}))
    resumed = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress",
                                             "--cache-dir", str(cache)])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after epoch 1" in resumed.output
    assert "Epoch 2/2" in resumed.output and "Epoch 1/2" not in resumed.output


@pytest.mark.slow
def test_training_with_augmentation_processes(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    config = tmp_path / "procs.yaml"
    config.write_text(_tiny_config(tmp_path).read_text().replace("workers: 1",
                                                                 "augment_processes: 2"))
    out = tmp_path / "run"
    result = CliRunner().invoke(train_cmd, [str(a) for a in [
        "--data", data, "--out", out, "--cache-dir", tmp_path / "cache", "--epochs", 2,
        "--no-progress", "--config", config]])
    assert result.exit_code == 0, result.output
    assert "'augment_processes': 2" in result.output
    assert json.loads((out / "training_done").read_text())["augment_processes"] == 2
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2


@pytest.mark.slow
def test_a_run_trained_elsewhere_finishes_with_the_data_at_its_new_place(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    out, cache = tmp_path / "run", tmp_path / "cache"
    first = CliRunner().invoke(train_cmd, [str(a) for a in [
        "--data", data, "--out", out, "--cache-dir", cache, "--epochs", 1, "--no-progress",
        "--config", _tiny_config(tmp_path)]])
    assert first.exit_code == 0, first.output
    # as a run from another machine arrives: trained, not finished, its data path not here
    (out / "model.onnx").unlink()
    moved = data.rename(tmp_path / "elsewhere")
    stale = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress"])
    assert stale.exit_code == 1 and str(data) in stale.output
    again = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress",
                                           "--data", str(moved), "--cache-dir", str(cache)])
    assert again.exit_code == 0, again.output
    assert "in place of the run's saved paths" in again.output
    assert (out / "model.onnx").is_file()
    assert str(moved) in (out / "config.yaml").read_text()


def _tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("model: {widths: [8, 16], dense_units: 16}\ntrain: {batch_size: 16, "
                    "val_fraction: 0.3, workers: 1}\n")
    return path


def test_resume_with_nothing_to_resume(tmp_path):
    result = CliRunner().invoke(train_cmd, ["--out", str(tmp_path / "empty"), "--resume"])
    assert result.exit_code == 1
    assert "nothing to resume" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "bad.csv").write_text("foo,bar\n1,2\n") and p / "bad.csv", "unrecognised CSV"),
    (lambda p: fixtures.class_folders(p / "d", ["happy", "bored"], per_class=1),
     "class folder 'bored'"),
])
def test_bad_input_is_one_clear_line(tmp_path, make, match):
    data = make(tmp_path)
    result = CliRunner().invoke(train_cmd, ["--data", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert match in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_data_is_required(tmp_path):
    result = CliRunner().invoke(train_cmd, ["--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--data is required" in result.output


def test_print_config_shows_overrides_without_a_run_folder():
    result = CliRunner().invoke(train_cmd, ["--print-config", "--epochs", "3",
                                            "--attention-heads", "2"])
    assert result.exit_code == 0, result.output
    assert "epochs: 3" in result.output and "attention_heads: 2" in result.output


def test_training_still_needs_a_run_folder(tmp_path):
    result = CliRunner().invoke(train_cmd, ["--data", str(tmp_path)])
    assert result.exit_code == 2 and "Missing option '--out'" in result.output


@pytest.mark.parametrize("name,content,match", [
    ("model.onnx", b"not onnx", "not a loadable ONNX model"),
    ("model.h5", b"x", "unsupported FER model type"),
    ("model.keras", b"x", "labels.json"),
])
def test_fer_eval_rejects_bad_models(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=1)
    result = CliRunner().invoke(eval_cmd, ["--model", str(tmp_path / name), "--data", str(data)])
    assert result.exit_code == 1 and match in result.output and "Traceback" not in result.output


def test_fer_eval_missing_model(tmp_path):
    result = CliRunner().invoke(eval_cmd, ["--model", str(tmp_path / "m.onnx"), "--data", "x"])
    assert result.exit_code == 1 and "not found" in result.output


@pytest.mark.slow
def test_init_starts_from_a_models_weights(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    cache, config = tmp_path / "cache", _tiny_config(tmp_path)
    base = ["--data", data, "--cache-dir", cache, "--epochs", 1, "--no-progress", "--config", config]
    first = CliRunner().invoke(train_cmd, [str(a) for a in base + ["--out", tmp_path / "a"]])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(train_cmd, [str(a) for a in base + [
        "--out", tmp_path / "b", "--init", tmp_path / "a" / "model.keras"]])
    assert second.exit_code == 0, second.output
    assert f"starting from the weights of {tmp_path / 'a' / 'model.keras'}" in second.output
    import yaml

    from fer.keras_env import keras

    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["init"] == str(tmp_path / "a" / "model.keras")  # recorded for --resume
    wider = tmp_path / "wide.yaml"
    wider.write_text(config.read_text().replace("[8, 16]", "[8, 32]"))
    bad = CliRunner().invoke(train_cmd, [str(a) for a in base[:-1] + [
        wider, "--out", tmp_path / "c", "--init", tmp_path / "a" / "model.keras"]])
    assert bad.exit_code == 1 and "architecture differs" in bad.output
    assert "Traceback" not in bad.output
    # the weights really are the source model's, layer for layer
    import numpy as np

    from fer.config import load_config
    from fer.model import build_model
    from fer.train import _load_initial_weights

    fresh = build_model(load_config(config).model, len(LABELS))
    _load_initial_weights(keras(), fresh, tmp_path / "a" / "model.keras")
    source = keras().models.load_model(tmp_path / "a" / "model.keras", compile=False)
    assert all(np.array_equal(x, y) for x, y in zip(fresh.get_weights(), source.get_weights(), strict=True))


def test_init_file_must_exist(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=2)
    result = CliRunner().invoke(train_cmd, ["--data", str(data), "--out", str(tmp_path / "o"),
                                            "--init", str(tmp_path / "nope.keras")])
    assert result.exit_code == 1 and "nope.keras not found" in result.output


@pytest.mark.slow
def test_trained_on_torch_backend_finished_on_tensorflow(tmp_path):
    """Keras on PyTorch trains (a GPU with CUDA torch but no TensorFlow GPU build); the ONNX export
    needs TensorFlow, so `--resume` there finishes the same run."""
    import os
    import subprocess
    import sys

    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = dict(os.environ, KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, "-c", "from fer.cli import train_cmd; train_cmd()",
                           "--data", str(data), "--out", str(out), "--cache-dir", str(cache),
                           "--epochs", "1", "--no-progress", "--config", str(_tiny_config(tmp_path))],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'backend': 'torch'" in proc.stderr and "fer-train --resume --out" in proc.stderr
    assert (out / "model.keras").is_file() and not (out / "model.onnx").exists()
    done = json.loads((out / "training_done").read_text())
    assert done["backend"] == "torch"
    finished = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress"])
    assert finished.exit_code == 0, finished.output
    assert (out / "model.onnx").is_file() and (out / "metrics.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["devices"]["backend"] == "torch"


def test_an_empty_class_folder_is_said_not_silent(tmp_path, monkeypatch):
    """The warning comes before training, so training itself is stubbed out here."""
    import fer.train

    data = fixtures.class_folders(tmp_path / "d", [n for n in LABELS if n != "disgust"], per_class=12)
    (data / "disgust").mkdir()
    monkeypatch.setattr(fer.train, "_fit", lambda *a, **k: {"stubbed": True})
    monkeypatch.setattr(fer.train, "can_export_onnx", lambda: False)
    result = CliRunner().invoke(train_cmd, ["--data", str(data), "--out", str(tmp_path / "run"),
                                            "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "warning: no training faces of disgust (an empty class folder?)" in result.output
    quiet = CliRunner().invoke(train_cmd, ["--data", str(data), "--out", str(tmp_path / "run2"),
                                           "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                                           "--classes", "angry,fear,happy,sad,surprise,neutral"])
    assert quiet.exit_code == 0 and "warning" not in quiet.output  # left out on purpose: fine
