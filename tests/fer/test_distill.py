"""Knowledge distillation (fer.distill, `fer-train --teacher`): the teachers pull the model where
the labels do not point, a distilled checkpoint resumes whole, the model file holds the student
only, and a teacher that cannot teach this run is refused before a run folder is made."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fer.cli import train_cmd
from fer.config import ModelConfig, load_config
from fer.errors import FerError
from fer.labels import LABELS
from tests import fixtures
from tests.models import leaning, tiny_keras_fer

TINY = ModelConfig(widths=(8, 16), dense_units=16)


def _teacher(folder, labels=LABELS, size: int = 48, sure_of: int | None = None):
    """A fer-train-like run folder (model.keras, labels.json), sure of one class if asked."""
    return tiny_keras_fer(folder, None if sure_of is None else {sure_of: 8.0}, labels, size)


def _onnx_teacher(folder):
    path = _teacher(folder).with_suffix(".onnx")
    path.write_bytes(b"an ONNX export")
    return path


def _distiller(alpha: float):
    from fer.distill import Distiller
    from fer.keras_env import keras
    from fer.model import build_model

    k = keras()
    k.utils.set_random_seed(0)
    student, teacher = build_model(TINY, 7), leaning(build_model(TINY, 7), {3: 8.0})
    model = Distiller(student, [teacher], alpha, 4.0)
    model.compile(optimizer=k.optimizers.SGD(0.5), loss=k.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    return model, teacher


def _batch():
    x = np.random.default_rng(0).uniform(0, 255, (32, 48, 48, 1)).astype(np.float32)
    return x, np.eye(7, dtype=np.float32)[np.zeros(32, int)]  # every label says class 0


@pytest.mark.parametrize("alpha,learnt", [(1.0, 3), (0.0, 0)])
def test_the_teacher_pulls_the_model_where_the_labels_do_not_point(alpha, learnt):
    from fer.keras_env import keras

    model, teacher = _distiller(alpha)
    x, y = _batch()
    for _ in range(30):
        model.train_on_batch(x, y)
    predicted = keras().ops.convert_to_numpy(model(x)).argmax(axis=1)
    assert (predicted == learnt).all()
    assert (keras().ops.convert_to_numpy(teacher(x)).argmax(axis=1) == 3).all()  # left as it was


def test_the_loss_blends_labels_and_teacher_by_alpha():
    from fer.distill import softened
    from fer.keras_env import keras

    k = keras()
    x, y = _batch()
    losses = {}
    for alpha in (0.0, 0.25, 1.0):
        model, teacher = _distiller(alpha)
        losses[alpha] = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    student_p = k.ops.convert_to_numpy(model(x))
    hard = float(np.mean(-np.log(student_p[:, 0])))
    t, s = (k.ops.convert_to_numpy(softened(p, 4.0)) for p in (teacher(x), student_p))
    soft = 16 * float(np.mean(np.sum(t * np.log(t / s), axis=1)))
    assert losses[0.0] == pytest.approx(hard, rel=1e-3)
    assert losses[1.0] == pytest.approx(soft, rel=1e-3)
    assert losses[0.25] == pytest.approx(0.75 * hard + 0.25 * soft, rel=1e-3)


def test_a_distilled_checkpoint_loads_whole(tmp_path):
    from fer.distill import Distiller, student_of
    from fer.keras_env import keras

    k = keras()
    model, _ = _distiller(0.5)
    x, y = _batch()
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "last.keras")
    again = k.models.load_model(tmp_path / "last.keras")
    assert isinstance(again, Distiller) and (again.alpha, again.temperature) == (0.5, 4.0)
    assert int(again.optimizer.iterations.numpy()) == 3
    assert np.allclose(k.ops.convert_to_numpy(again(x)), k.ops.convert_to_numpy(model(x)),
                       atol=1e-5)
    assert np.allclose(k.ops.convert_to_numpy(again.teacher_probs(x)),
                       k.ops.convert_to_numpy(model.teacher_probs(x)), atol=1e-6)
    assert student_of(again) is again.student and student_of(again.student) is again.student


def test_settings_are_checked():
    with pytest.raises(FerError, match="distill.alpha"):
        load_config(overrides={"distill": {"alpha": 1.5}})
    with pytest.raises(FerError, match="distill.alpha"):
        load_config(overrides={"distill": {"temperature": 0}})
    with pytest.raises(FerError, match="distill.teachers"):
        load_config(overrides={"distill": {"teachers": "one/model.keras"}})


@pytest.mark.parametrize("make,says", [
    (lambda d: d / "absent" / "model.keras", "not found"),
    (lambda d: _onnx_teacher(d / "t"), "not a .keras model"),
    (lambda d: _teacher(d / "t", labels=("angry", "happy", "sad", "surprise", "neutral")),
     "same classes"),
    (lambda d: _teacher(d / "t", size=40), "40x40x1"),
])
def test_a_teacher_that_cannot_teach_is_refused_before_the_run_folder(tmp_path, make, says):
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=2)
    out = tmp_path / "run"
    result = CliRunner().invoke(train_cmd, [str(a) for a in [
        "--data", data, "--out", out, "--cache-dir", tmp_path / "cache", "--epochs", 1,
        "--teacher", make(tmp_path)]])
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_fer_train_with_two_teachers_ships_the_student_alone_and_resumes_without_them(tmp_path):
    import shutil

    import yaml

    import fer.train as train_module
    from fer.distill import Distiller
    from fer.keras_env import keras

    k = keras()
    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    teachers = [_teacher(tmp_path / f"t{i}", sure_of=i) for i in range(2)]
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {widths: [8, 16], dense_units: 16}\ntrain: {batch_size: 16, "
                      "val_fraction: 0.3, workers: 1, patience: 9}\n"
                      "distill: {alpha: 0.7, temperature: 2}\n")
    out, cache, kept = tmp_path / "run", tmp_path / "cache", tmp_path / "kept"
    real = train_module._callbacks

    def keeping(*args, **kwargs):  # keep epoch 1's resume checkpoint, which a finished run deletes
        class Keep(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    shutil.copytree(out / "checkpoint", kept)
        return [*real(*args, **kwargs), Keep()]

    mp = pytest.MonkeyPatch()
    mp.setattr(train_module, "_callbacks", keeping)
    try:
        result = CliRunner().invoke(train_cmd, [str(a) for a in [
            "--data", data, "--out", out, "--cache-dir", cache, "--epochs", 2, "--no-progress",
            "--config", config, "--teacher", teachers[0], "--teacher", teachers[1]]],
            catch_exceptions=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    assert "distilled from 2 teacher(s)" in result.output
    model = k.models.load_model(out / "model.keras", compile=False)
    assert not isinstance(model, Distiller) and model.name == "fernet"
    assert json.loads((out / "metrics.json").read_text())["parameters"] == model.count_params()
    saved = yaml.safe_load((out / "config.yaml").read_text())["config"]["distill"]
    assert saved == {"teachers": [str(t) for t in teachers], "alpha": 0.7, "temperature": 2}

    # interrupted after epoch 1, with the teachers' files gone since: the checkpoint carries them
    assert isinstance(k.models.load_model(kept / "last.keras"), Distiller)
    (out / "training_done").unlink()
    shutil.copytree(kept, out / "checkpoint")
    for t in teachers:
        shutil.rmtree(t.parent)
    resumed = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress",
                                             "--cache-dir", str(cache)], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after epoch 1" in resumed.output and "Epoch 2/2" in resumed.output
    assert not isinstance(k.models.load_model(out / "model.keras", compile=False), Distiller)
    # trained on another machine and finished here (the GPU plan's path): no teacher needed
    (out / "metrics.json").unlink()
    finished = CliRunner().invoke(train_cmd, ["--out", str(out), "--resume", "--no-progress",
                                              "--cache-dir", str(cache)], catch_exceptions=False)
    assert finished.exit_code == 0, finished.output
    assert "Epoch" not in finished.output and (out / "metrics.json").is_file()
