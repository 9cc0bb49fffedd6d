"""Training augmentation in worker processes, so a fast accelerator is not left waiting.

albumentations works image by image in Python and holds the GIL for much of each batch, so the
feeder's threads barely add up: on a GPU the trainer waited ~93 ms a step on them. Here N
processes augment batches from one shared-memory copy of the training crops (no copy per worker
or per batch). They start through the 'forkserver' method, not by forking the trainer, whose
TensorFlow threads and locks a forked child would inherit. This module imports no Keras, so the
workers start in about a second.
"""

from __future__ import annotations

import multiprocessing
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from fer.augment import augment_batch, build_augmenter
from fer.config import AugmentConfig
from fer.errors import FerError

_worker: dict = {}  # in each worker process: the shared crops and its augmenter


def _start_worker(name: str, shape: tuple[int, ...], dtype: str, cfg: AugmentConfig) -> None:
    import cv2

    cv2.setNumThreads(1)  # N workers: N cores, not N x OpenCV's pool
    shm = SharedMemory(name=name)
    _worker.update(shm=shm, images=np.ndarray(shape, dtype, buffer=shm.buf),
                   augmenter=build_augmenter(cfg))


def _ready() -> bool:
    return True


def _augment(index: np.ndarray, seed: int) -> np.ndarray:
    return augment_batch(_worker["augmenter"], _worker["images"][index], seed)


def _release(pool: ProcessPoolExecutor, shm: SharedMemory) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
    shm.close()
    shm.unlink()


class AugmentPool:
    """`processes` workers augmenting batches of `images` (N x H x W x C uint8) with `cfg`.
    `submit(index, seed)` gives the same pixels as `augment_batch` in the calling process."""

    def __init__(self, images: np.ndarray, cfg: AugmentConfig, processes: int):
        images = np.ascontiguousarray(images)
        self.shm = SharedMemory(create=True, size=max(images.nbytes, 1))
        np.ndarray(images.shape, images.dtype, buffer=self.shm.buf)[...] = images
        self.pool = ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("forkserver"),
            initializer=_start_worker,
            initargs=(self.shm.name, images.shape, images.dtype.str, cfg))
        # freed with the pool even when training ends by an exception or Ctrl-C
        self._finalizer = weakref.finalize(self, _release, self.pool, self.shm)
        try:  # start every worker now: a failure shows here, not in the middle of an epoch
            for started in [self.pool.submit(_ready) for _ in range(processes)]:
                started.result()
        except BrokenProcessPool as e:
            self.close()
            raise FerError(
                "the augmentation worker processes could not start; a script that trains must "
                "keep its top-level code under `if __name__ == '__main__':`, or set "
                "train.augment_processes: 0") from e

    def submit(self, index: np.ndarray, seed: int) -> Future:
        return self.pool.submit(_augment, index, seed)

    def close(self) -> None:
        self._finalizer()
