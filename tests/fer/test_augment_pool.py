"""The training feeder: batches augmented in worker processes equal those made in-process, a
resumed run sees the epochs it would have seen, and the shared crops are freed."""

import subprocess
import sys
import textwrap
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np
import pytest

from fer.config import AugmentConfig
from fer.data import AugmentedBatches
from fer.train import augment_processes
from tests.fixtures import face_like

ROOT = Path(__file__).resolve().parents[2]


def _faces(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([face_like(seed=i).reshape(48, 48, 1) for i in range(n)])
    return images, np.arange(n) % 7


def _feed(processes: int = 0, epoch: int = 0, augment: AugmentConfig | None = None
          ) -> AugmentedBatches:
    images, targets = _faces()
    return AugmentedBatches(images, targets, 7, 16, augment or AugmentConfig(degrade_p=0.5),
                            np.ones(7), seed=3, workers=2, processes=processes, epoch=epoch)


def test_worker_processes_make_the_same_batches_as_the_trainer():
    local, pooled = _feed(), _feed(processes=2)
    try:
        for i in range(len(local)):
            x, y, w = local[i]
            px, py, pw = pooled[i]
            assert np.array_equal(x, px) and np.array_equal(y, py) and np.array_equal(w, pw)
        images = local.images[local.order[:16]].astype(np.float32)
        assert x.shape[1:] == (48, 48, 1) and not np.array_equal(local[0][0], images)
    finally:
        pooled.close()


def test_each_epoch_differs_and_a_resumed_run_sees_the_same_epoch():
    run = _feed()
    first = run[0][0]
    run.on_epoch_end()
    second = run[0][0]
    assert not np.array_equal(first, second)
    resumed = _feed(epoch=1)
    assert np.array_equal(resumed.order, run.order) and np.array_equal(resumed[0][0], second)


def test_close_frees_the_shared_crops_and_stops_the_workers():
    feed = _feed(processes=1)
    name = feed.pool.shm.name
    SharedMemory(name=name).close()  # there while training
    feed.close()
    feed.close()  # twice is harmless
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)
    with pytest.raises(RuntimeError):
        feed.pool.submit(np.arange(2), 0)


def test_no_augmentation_needs_no_workers():
    images, _ = _faces()
    feed = AugmentedBatches(images, np.arange(40) % 7, 7, 16, None, np.ones(7), seed=3,
                            processes=2)
    assert feed.pool is None
    assert np.array_equal(feed[0][0], images[feed.order[:16]].astype(np.float32))


def test_auto_uses_processes_only_beside_a_gpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert augment_processes("auto", gpus=0) == 0
    assert augment_processes("auto", gpus=1) == 8
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert augment_processes("auto", gpus=1) == 3
    assert augment_processes(2, gpus=0) == 2


def test_an_unguarded_training_script_gets_one_clear_error(tmp_path):
    script = tmp_path / "train_me.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from fer.augment_pool import AugmentPool
        from fer.config import AugmentConfig
        from fer.errors import FerError
        try:
            AugmentPool(np.zeros((4, 48, 48, 1), np.uint8), AugmentConfig(), 1)
        except FerError as e:
            print("FerError:", e)
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert "FerError: the augmentation worker processes could not start" in out.stdout
    assert "__main__" in out.stdout
