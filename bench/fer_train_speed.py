"""Training throughput and per-face inference latency of the default FER model on this machine.

    python bench/fer_train_speed.py [--steps 60] [--config my.yaml]

Training runs the real feeder (albumentations) and the real compiled model on FER2013 crops from
../shared/data (random pixels when absent). Short runs undershoot a full epoch by ~25%.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_faces(n: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    from fer.labels import LABELS
    from fer.prepare import prepare
    from fer.readers import read_dataset

    shared = Path(os.environ.get("FER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    train = shared / "fer2013" / "train"
    if not train.is_dir():
        rng = np.random.default_rng(0)
        return rng.integers(0, 255, (n, size, size, 1), np.uint8), rng.integers(0, 7, n), "random"
    from fer.data import cap_per_class

    ds = cap_per_class(read_dataset(train), n // 7 + 1, 0)
    cache = prepare(ds, LABELS, (size, size), 1, Path(tempfile.gettempdir()) / "fer-bench-cache",
                    progress=False)
    return cache.images[:n], cache.targets[:n], "FER2013 train"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60, help="timed training steps")
    ap.add_argument("--config", help="FER YAML config (default: the package defaults)")
    ap.add_argument("--processes", type=int,
                    help="augmentation processes (default: train.augment_processes)")
    args = ap.parse_args()

    from fer.config import load_config
    from fer.data import AugmentedBatches
    from fer.export import export_onnx
    from fer.keras_env import keras
    from fer.labels import LABELS
    from fer.metadata import make_metadata
    from fer.model import build_model
    from fer.train import augment_processes

    k = keras()
    cfg = load_config(Path(args.config) if args.config else None)
    bs, size = cfg.train.batch_size, cfg.model.input_size
    images, targets, origin = load_faces(bs * (args.steps + 10), size)
    model = build_model(cfg.model, len(LABELS))
    model.compile(optimizer=k.optimizers.AdamW(1e-3), loss="categorical_crossentropy",
                  jit_compile=False)
    import tensorflow as tf

    processes = augment_processes(cfg.train.augment_processes if args.processes is None
                                  else args.processes, len(tf.config.list_physical_devices("GPU")))
    feed = AugmentedBatches(images, targets, len(LABELS), bs, cfg.augment, np.ones(len(LABELS)),
                            0, workers=cfg.train.workers, processes=processes)
    warm = 10

    class Clock(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == warm:
                self.start = time.perf_counter()

    clock = Clock()
    model.fit(feed, epochs=1, steps_per_epoch=warm + args.steps, verbose=0, callbacks=[clock])
    train_ips = args.steps * bs / (time.perf_counter() - clock.start)
    feed.close()

    face = images[:1].astype(np.float32)
    batch = images[:32].astype(np.float32)

    def timed(fn, x, reps):
        fn(x)
        t = time.perf_counter()
        for _ in range(reps):
            fn(x)
        return (time.perf_counter() - t) / reps * 1e3

    keras_1 = timed(lambda x: model(x, training=False), face, 50)
    keras_32 = timed(lambda x: model(x, training=False), batch, 10) / 32
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(model, path, make_metadata(LABELS, size, cfg.model.channels, False))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        ort_1 = timed(lambda x: sess.run(None, {name: x}), face, 200)
        ort_32 = timed(lambda x: sess.run(None, {name: x}), batch, 30) / 32

    print(f"machine: {os.cpu_count()} cores; data: {origin}; model {model.name} "
          f"{model.count_params():,} params, {size}x{size}x{cfg.model.channels}, batch {bs}, "
          f"{processes} augmentation processes")
    print(f"training:  {train_ips:8.1f} img/s  ({args.steps} steps after {warm} warm-up; "
          f"~{len(images) and 28709 / train_ips / 60:.1f} min per FER2013 epoch at this rate)")
    print(f"inference: Keras        {keras_1:7.2f} ms/face (batch 1)  {keras_32:6.3f} ms/face (batch 32)")
    print(f"inference: ONNX Runtime {ort_1:7.2f} ms/face (batch 1)  {ort_32:6.3f} ms/face (batch 32)")


if __name__ == "__main__":
    main()
