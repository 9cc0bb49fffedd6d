"""MixUp and CutMix across a training batch, through Keras' own preprocessing layers.

Both blend two faces and their labels: the literature reports a point or so on FER2013 from
either (issue 14 lists them to try). The blend of a batch is drawn from that batch's seed
(`fer.augment.batch_seed`), so it is the same wherever and whenever the batch is made."""

from __future__ import annotations

import numpy as np

from fer.keras_env import keras


class BatchMixer:
    """Mixes a batch of float images, one-hot labels and per-sample weights.

    `mixup` and `cutmix` are the alpha of the Beta distribution each draws its blend from (0 =
    off). With both on, even batches get MixUp and odd ones CutMix. The sample weights (class
    weights) are blended like the labels, so a mixed face counts as the classes it shows."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0):
        k = keras()
        self.layers = ([k.layers.MixUp(alpha=mixup)] if mixup > 0 else []) + \
                      ([k.layers.CutMix(factor=cutmix)] if cutmix > 0 else [])

    def __bool__(self) -> bool:
        return bool(self.layers)

    def __call__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int, batch: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.layers or len(x) < 2:
            return x, y, w
        layer = self.layers[batch % len(self.layers)]
        as_numpy = keras().ops.convert_to_numpy
        change = layer.get_random_transformation({"images": x, "labels": y}, seed=seed)
        return (as_numpy(layer.transform_images(x, change)).astype(np.float32),
                as_numpy(layer.transform_labels(y, change)).astype(np.float32),
                as_numpy(layer.transform_labels(w[:, None], change))[:, 0].astype(np.float32))
