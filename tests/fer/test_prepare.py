"""The face-crop cache: correct crops, counted skips, reuse, resume and corruption handling."""

import shutil

import numpy as np
import pytest

import fer.prepare as prep
from fer.errors import FerError
from fer.labels import LABELS
from fer.readers import read_dataset
from tests import fixtures


def test_fer2013_csv_pixels_survive_unchanged(tmp_path, cache_root):
    path = fixtures.fer2013_csv(tmp_path / "f.csv", per_class=1, usages=("Training",))
    ds = read_dataset(path)
    cache = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    assert cache.images.shape == (7, 48, 48, 1) and cache.images.dtype == np.uint8
    np.testing.assert_array_equal(cache.images[0, :, :, 0], ds.samples[0].pixels)
    assert [LABELS[t] for t in cache.targets] == [s.label for s in ds.samples]


def test_affectnet_crop_uses_the_box(tmp_path, cache_root):
    root = fixtures.affectnet_official(tmp_path / "A", per_code=1)
    ds = read_dataset(root)
    cache = prep.prepare(ds, LABELS, (70, 70), 3, cache_root, progress=False)
    sample = ds.samples[0]
    import cv2
    source = cv2.imread(str(sample.path))
    expected = cv2.cvtColor(source[25:95, 20:90], cv2.COLOR_BGR2RGB)
    assert np.abs(cache.images[0].astype(int) - expected.astype(int)).max() == 0


def test_bad_images_are_counted_not_fatal(tmp_path, cache_root):
    root = fixtures.class_folders(tmp_path / "d", ["happy", "sad"], per_class=3)
    (root / "happy" / "img_0000.png").write_bytes(b"")
    (root / "happy" / "img_0001.png").write_bytes(b"not an image at all")
    (root / "sad" / "img_0002.png").write_bytes(
        (root / "sad" / "img_0000.png").read_bytes()[:40])  # truncated PNG
    cache = prep.prepare(read_dataset(root), LABELS, (48, 48), 1, cache_root, progress=False)
    assert len(cache) == 3
    assert cache.skips.counts == {"empty image file": 1, "unreadable image": 2}
    assert "happy/img_0000.png" in cache.skips.examples["empty image file"]


def test_missing_affectnet_image_is_counted(tmp_path, cache_root):
    root = fixtures.affectnet_official(tmp_path / "A", per_code=1, bad_rows=True)
    cache = prep.prepare(read_dataset(root), LABELS, (48, 48), 1, cache_root, progress=False)
    assert len(cache) == 7
    assert cache.skips.counts["missing image"] == 1
    assert cache.skips.counts["malformed row"] == 2


def test_cache_is_reused_without_the_source(tmp_path, cache_root):
    root = fixtures.class_folders(tmp_path / "d", LABELS, per_class=2)
    ds = read_dataset(root)
    first = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    shutil.rmtree(root)  # a rebuild would now fail: the second call must read the cache
    second = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.path == second.path


def test_other_size_gets_its_own_cache(tmp_path, cache_root):
    ds = read_dataset(fixtures.class_folders(tmp_path / "d", LABELS, per_class=1))
    a = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    b = prep.prepare(ds, LABELS, (64, 64), 1, cache_root, progress=False)
    assert a.path != b.path and b.images.shape[1:] == (64, 64, 1)


def test_interrupted_preparation_resumes_from_whole_shards(tmp_path, cache_root, monkeypatch):
    monkeypatch.setattr(prep, "SHARD_SIZE", 5)
    ds = read_dataset(fixtures.class_folders(tmp_path / "d", LABELS, per_class=2))  # 14 -> 3 shards
    real = prep._build_shard
    calls = []

    def flaky(samples, *args):
        calls.append(len(samples))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(samples, *args)

    monkeypatch.setattr(prep, "_build_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    folder = next(cache_root.iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["shard-00000.npz"]  # no manifest, no temp
    calls.clear()
    monkeypatch.setattr(prep, "_build_shard", lambda s, *a: (calls.append(len(s)), real(s, *a))[1])
    cache = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    assert calls == [5, 4]  # shard 0 was reused
    assert len(cache) == 14 and (folder / "manifest.json").is_file()


def test_corrupt_shard_is_reported_with_the_fix(tmp_path, cache_root):
    ds = read_dataset(fixtures.class_folders(tmp_path / "d", LABELS, per_class=1))
    cache = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    shard = cache.path / "shard-00000.npz"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(FerError, match="corrupt.*--rebuild-cache"):
        prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    rebuilt = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, rebuild=True, progress=False)
    assert len(rebuilt) == 7


def test_corrupt_manifest(tmp_path, cache_root):
    ds = read_dataset(fixtures.class_folders(tmp_path / "d", LABELS, per_class=1))
    cache = prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)
    (cache.path / "manifest.json").write_text("{not json")
    with pytest.raises(FerError, match="manifest .* is corrupt"):
        prep.prepare(ds, LABELS, (48, 48), 1, cache_root, progress=False)


def test_all_images_bad_is_fatal(tmp_path, cache_root):
    root = tmp_path / "d" / "happy"
    root.mkdir(parents=True)
    (root / "a.png").write_bytes(b"junk")
    with pytest.raises(FerError, match="no usable images"):
        prep.prepare(read_dataset(tmp_path / "d"), LABELS, (48, 48), 1, cache_root,
                     progress=False)
