"""MixUp / CutMix in the training feeder and the EMA of weights: what they change in the batches
and in the files a run writes."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fer.config import AugmentConfig, load_config
from fer.data import AugmentedBatches
from fer.errors import FerError
from tests.fixtures import face_like


def _feed(**mix) -> AugmentedBatches:
    images = np.stack([face_like(seed=i).reshape(48, 48, 1) for i in range(32)])
    weights = np.linspace(0.5, 2.0, 7)
    return AugmentedBatches(images, np.arange(32) % 7, 7, 16, AugmentConfig(hflip=0, affine_p=0,
                            brightness_contrast_p=0, blur_noise_p=0, dropout_p=0, **mix),
                            weights, seed=3, workers=1)


@pytest.mark.parametrize("mix", [{"mixup": 0.4}, {"cutmix": 1.0}])
def test_a_mixed_batch_blends_faces_labels_and_weights_alike(mix):
    plain, mixed = _feed(), _feed(**mix)
    x0, y0, w0 = plain[0]
    x, y, w = mixed[0]
    assert np.allclose(y.sum(axis=1), 1) and ((y > 0).sum(axis=1) == 2).any()  # soft labels
    # every face is its own share of itself plus the rest of a partner in the same batch
    own = (y * y0).sum(axis=1)  # each face's own class is one-hot in y0
    assert not np.allclose(x, x0) and not np.allclose(own, 1)
    # the class weights follow the labels: a face counts as the classes it shows
    class_w = np.linspace(0.5, 2.0, 7)
    assert np.allclose(w, y @ class_w, atol=1e-5)
    assert w0 == pytest.approx(y0 @ class_w)


def test_mixing_is_the_same_for_the_same_batch_and_differs_between_batches():
    a, b = _feed(mixup=0.4, cutmix=1.0), _feed(mixup=0.4, cutmix=1.0)
    for i in range(len(a)):
        assert all(np.array_equal(p, q) for p, q in zip(a[i], b[i], strict=True))
    assert not np.allclose(a[0][1], a[1][1])


def test_settings_are_checked():
    with pytest.raises(FerError, match="train.ema"):
        load_config(overrides={"train": {"ema": 1.0}})
    with pytest.raises(FerError, match="mixup"):
        load_config(overrides={"augment": {"mixup": -0.2}})


@pytest.mark.slow
def test_ema_run_validates_and_saves_the_average_and_resumes_from_the_trained_weights(tmp_path):
    from fer.cli import train_cmd
    from fer.keras_env import keras
    from fer.labels import LABELS
    from tests import fixtures

    data = fixtures.class_folders(tmp_path / "d", LABELS, per_class=6)
    config = tmp_path / "ema.yaml"
    config.write_text("model: {widths: [8, 16], dense_units: 16}\ntrain: {batch_size: 16, "
                      "val_fraction: 0.3, workers: 1, ema: 0.5, patience: 9, learning_rate: 0.01}\n"
                      "augment: {mixup: 0.2, cutmix: 1.0}\n")
    out = tmp_path / "run"
    keep = tmp_path / "kept.keras"

    import fer.train as train_module

    real = train_module._callbacks

    def keeping(*args, **kwargs):  # keep the resume checkpoint the finished run deletes
        callbacks = real(*args, **kwargs)
        k = keras()

        class Keep(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                import shutil

                shutil.copy(out / "checkpoint" / "last.keras", keep)
                shutil.copy(out / "model.keras", tmp_path / "best.keras")
        return [*callbacks, Keep()]

    mp = pytest.MonkeyPatch()
    mp.setattr(train_module, "_callbacks", keeping)
    try:
        result = CliRunner().invoke(train_cmd, [str(a) for a in [
            "--data", data, "--out", out, "--cache-dir", tmp_path / "cache", "--epochs", 1,
            "--no-progress", "--config", config]], catch_exceptions=False)
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1
    k = keras()
    checkpoint = k.models.load_model(keep)
    best = k.models.load_model(tmp_path / "best.keras", compile=False)
    averages = [v.numpy() for v in checkpoint.optimizer._model_variables_moving_average]
    trained = [v.numpy() for v in checkpoint.trainable_variables]
    saved = [v.numpy() for v in best.trainable_variables]
    # the model file holds the average; the resume checkpoint the weights being trained
    assert all(np.allclose(s, a) for s, a in zip(saved, averages, strict=True))
    assert not all(np.allclose(s, t) for s, t in zip(saved, trained, strict=True))
