"""Turn prepared caches into training batches: stratified splits, per-class caps, class weights and
the augmented batch feeder Keras trains from."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
from sklearn.model_selection import train_test_split

from fer.augment import augment_batch, batch_seed, build_augmenter
from fer.augment_pool import AugmentPool
from fer.config import AugmentConfig
from fer.errors import FerError
from fer.keras_env import keras
from fer.mix import BatchMixer
from fer.readers import Dataset


def cap_per_class(dataset: Dataset, per_class: int, seed: int) -> Dataset:
    """At most `per_class` samples of each label, picked reproducibly (quick trials, tests)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, s in enumerate(dataset.samples):
        by_label.setdefault(s.label, []).append(i)
    keep = sorted(j for idx in by_label.values()
                  for j in rng.permutation(idx)[:per_class].tolist())
    return Dataset([dataset.samples[i] for i in keep], dataset.skips, dataset.format,
                   dataset.source)


def stratified_split(targets: np.ndarray, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(len(targets))
    counts = np.bincount(targets)
    stratify = targets if counts[counts > 0].min() >= 2 else None
    try:
        train, val = train_test_split(index, test_size=fraction, random_state=seed,
                                      stratify=stratify)
    except ValueError as e:
        raise FerError(f"cannot hold out {fraction:.0%} for validation from {len(targets)} faces: "
                       f"{e}; give --val") from e
    return np.sort(train), np.sort(val)


def class_weights(targets: np.ndarray, num_classes: int, mode: str) -> np.ndarray:
    """'balanced' = n / (k * count); 'sqrt' softens it, which keeps rare classes from dominating."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    if mode == "none":
        return np.ones(num_classes)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts[present].sum() / (present.sum() * counts[present])
    if mode == "sqrt":
        w = np.sqrt(w)
    return w / (w[present] * counts[present]).sum() * counts[present].sum()  # mean weight 1


def image_hashes(images: np.ndarray) -> np.ndarray:
    return np.array([hashlib.sha1(im.tobytes()).hexdigest() for im in images])


def _coarse_keys(images: np.ndarray) -> np.ndarray:
    """8x8 block means quantised to 8 levels: equal for an image and its JPEG re-encoding."""
    n, h, w = images.shape[:3]
    gray = images.reshape(n, h, w, -1).mean(axis=3)
    small = gray[:, : h // 8 * 8, : w // 8 * 8].reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4))
    return np.array([q.tobytes() for q in (small // 32).astype(np.uint8)])


def duplicate_report(train: np.ndarray, val: np.ndarray, tolerance: float = 4.0) -> dict[str, int]:
    """Duplicates of the prepared crops: exact ones within train and across the split, and near
    ones across it (same coarse key, mean absolute difference below `tolerance` grey levels), which
    catches the same photo stored once as PNG and once as JPEG. Near counts are a lower bound."""
    th, vh = image_hashes(train), image_hashes(val)
    index: dict[bytes, list[int]] = {}
    for i, key in enumerate(_coarse_keys(train)):
        index.setdefault(key, []).append(i)
    near = 0
    for j, key in enumerate(_coarse_keys(val)):
        candidates = index.get(key, [])
        if candidates:
            diffs = np.abs(train[candidates].astype(np.int16) - val[j].astype(np.int16))
            near += bool((diffs.reshape(len(candidates), -1).mean(axis=1) < tolerance).any())
    return {"within_train": int(len(th) - len(set(th.tolist()))),
            "val_in_train": int(np.isin(vh, th).sum()), "val_near_train": int(near)}


class AugmentedBatches(keras().utils.PyDataset):
    """Shuffled, augmented batches with per-sample weights.

    Batch b of epoch e is augmented from `batch_seed(seed, e, b)`, so the pixels do not depend on
    which thread or process made them. With `processes` > 0 an `AugmentPool` augments and the
    feeder's threads only wait for it (one thread per process); otherwise the `workers` threads
    augment, one augmenter each. The augment settings' MixUp/CutMix then blend the batch
    (`fer.mix`). Call `close` when training ends."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, num_classes: int,
                 batch_size: int, augment: AugmentConfig | None, weights: np.ndarray,
                 seed: int, workers: int = 1, processes: int = 0, epoch: int = 0):
        pooled = processes > 0 and augment is not None
        super().__init__(workers=max(workers, processes if pooled else 1),
                         use_multiprocessing=False, max_queue_size=max(16, 2 * processes))
        self.images, self.targets = images, targets
        self.num_classes, self.batch_size = num_classes, batch_size
        self.augment, self.weights, self.seed = augment, weights.astype(np.float32), seed
        self.pool = AugmentPool(images, augment, processes) if pooled else None
        self.mixer = BatchMixer(augment.mixup, augment.cutmix) if augment else BatchMixer()
        self.local = threading.local()
        self.epoch = epoch  # a resumed run goes on with the order and seeds it would have had
        self._shuffle()

    def _shuffle(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(len(self.images))

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def _augmenter(self):
        if not hasattr(self.local, "aug"):
            self.local.aug = build_augmenter(self.augment)
        return self.local.aug

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        seed = batch_seed(self.seed, self.epoch, i)
        if self.augment is None:
            x = self.images[idx]
        elif self.pool is not None:
            x = self.pool.submit(idx, seed).result()
        else:
            x = augment_batch(self._augmenter(), self.images[idx], seed)
        y = np.eye(self.num_classes, dtype=np.float32)[self.targets[idx]]
        x, w = x.astype(np.float32), self.weights[self.targets[idx]]
        if self.mixer:
            return self.mixer(x, y, w, seed ^ 0x5EED, i)
        return x, y, w

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._shuffle()

    def close(self) -> None:
        """Stop the worker processes and free the shared crops (safe to call twice)."""
        if self.pool is not None:
            self.pool.close()
