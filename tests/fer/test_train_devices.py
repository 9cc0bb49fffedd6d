"""fer-train on several devices (issue 11): MirroredStrategy over two logical CPUs stands in for
two GPUs, trains one short epoch on generated faces and saves the model. It runs in a subprocess
because logical devices can only be set up before TensorFlow starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fer.cli import train_cmd
from fer.labels import LABELS
from tests import fixtures
from tests.conftest import ROOT

TWO_CPUS = """
import sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from fer.cli import train_cmd
train_cmd(sys.argv[1:])
"""


def _tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("model: {widths: [8, 16], dense_units: 16}\ntrain: {batch_size: 8, "
                    "val_fraction: 0.3, workers: 1}\n")
    return path


@pytest.mark.slow
def test_fer_train_mirrors_over_two_logical_cpus_and_saves(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    out = tmp_path / "run"
    args = ["--data", data, "--out", out, "--cache-dir", tmp_path / "cache", "--epochs", 1,
            "--no-progress", "--config", _tiny_config(tmp_path), "--devices", "CPU:0,CPU:1"]
    done = subprocess.run([sys.executable, "-c", TWO_CPUS, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    used = json.loads((out / "training_done").read_text())
    assert used["replicas"] == 2 and used["backend"] == "tensorflow"
    assert "'replicas': 2" in done.stderr  # the run's own log line
    assert (out / "model.keras").is_file() and (out / "model.onnx").is_file()
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 2  # header and the one epoch


def test_fer_train_names_the_devices_there_are(tmp_path):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=3)
    result = CliRunner().invoke(train_cmd, [str(a) for a in [
        "--data", data, "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache",
        "--epochs", 1, "--no-progress", "--config", _tiny_config(tmp_path),
        "--devices", "GPU:7"]])
    assert result.exit_code == 1, result.output
    assert "no device GPU:7 here; this machine has CPU:0" in result.output
    assert "Traceback" not in result.output
