import numpy as np
import pytest

from fer.augment import build_augmenter
from fer.config import AugmentConfig, load_config
from fer.data import class_weights, stratified_split
from fer.errors import FerError
from tests.fixtures import face_like


def test_yaml_overrides_defaults_and_cli_overrides_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  widths: [16, 32]\n  attention_heads: 2\ntrain:\n  epochs: 5\n")
    cfg = load_config(path, {"train": {"epochs": 7}})
    assert cfg.model.widths == (16, 32) and cfg.model.attention_heads == 2
    assert cfg.train.epochs == 7 and cfg.train.batch_size == 64


@pytest.mark.parametrize("text,match", [("train:\n  epoch: 3\n", "unknown setting 'train.epoch'"),
                                        ("train: 3\n", "must be a mapping"),
                                        ("- a\n", "mapping of sections"),
                                        ("train: {class_weight: odd}\n", "class_weight"),
                                        ("model: [\n", "not valid YAML"),
                                        ("train: {augment_processes: -1}\n", "augment_processes"),
                                        ("train: {augment_processes: many}\n",
                                         "augment_processes")])
def test_bad_config_is_named(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(FerError, match=match):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(FerError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_augmenter_keeps_shape_and_changes_pixels():
    image = face_like(3)[:, :, None]
    aug = build_augmenter(AugmentConfig(), seed=0)
    outs = [aug(image=image)["image"] for _ in range(8)]
    assert all(o.shape[:2] == (48, 48) and o.dtype == np.uint8 for o in outs)
    assert any(not np.array_equal(o.reshape(48, 48, 1), image) for o in outs)


def test_augmenter_with_everything_off_is_identity():
    off = AugmentConfig(hflip=0, affine_p=0, brightness_contrast_p=0, blur_noise_p=0, dropout_p=0)
    image = face_like(4)
    assert np.array_equal(build_augmenter(off, seed=0)(image=image)["image"], image)


def test_flip_only_mirrors():
    only_flip = AugmentConfig(hflip=1, affine_p=0, brightness_contrast_p=0, blur_noise_p=0,
                              dropout_p=0)
    image = face_like(5)
    assert np.array_equal(build_augmenter(only_flip)(image=image)["image"], image[:, ::-1])


def test_class_weights_favour_rare_classes_with_mean_one():
    targets = np.array([0] * 90 + [1] * 10)
    for mode in ("balanced", "sqrt"):
        w = class_weights(targets, 3, mode)
        assert w[1] > w[0] and w[2] == 0
        assert np.isclose(w[targets].mean(), 1.0)
    assert np.sqrt(9) == pytest.approx(class_weights(targets, 2, "balanced")[1] /
                                       class_weights(targets, 2, "balanced")[0] / 3)
    assert (class_weights(targets, 2, "none") == 1).all()


def test_stratified_split_is_reproducible_and_stratified():
    targets = np.repeat(np.arange(7), 20)
    a_train, a_val = stratified_split(targets, 0.25, 1)
    b_train, b_val = stratified_split(targets, 0.25, 1)
    assert np.array_equal(a_val, b_val) and not set(a_train) & set(a_val)
    assert np.bincount(targets[a_val]).tolist() == [5] * 7


def test_duplicate_report_finds_exact_and_jpeg_duplicates():
    import cv2

    from fer.data import duplicate_report

    faces = np.stack([face_like(i)[:, :, None] for i in range(6)])
    train = np.concatenate([faces, faces[:1]])  # one exact duplicate inside train
    jpeg = cv2.imdecode(cv2.imencode(".jpg", faces[2])[1], cv2.IMREAD_GRAYSCALE)[:, :, None]
    val = np.stack([faces[1], jpeg, face_like(99)[:, :, None]])
    report = duplicate_report(train, val)
    assert report == {"within_train": 1, "val_in_train": 1, "val_near_train": 2}
