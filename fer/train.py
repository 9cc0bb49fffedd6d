"""`fer-train`: prepared crops in, a run folder out (model, labels, metrics, curves, ONNX)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fer.calibrate import apply_temperature
from fer.config import FerConfig, config_from_dict
from fer.errors import FerError
from fer.labels import class_subset, label_set
from fer.metadata import LABELS_FILE, make_metadata, write_metadata_file
from fer.prepare import FaceCache, combine_caches, prepare, restrict_classes
from fer.readers import read_dataset

CHECKPOINT_DIR = "checkpoint"  # the resumable state: last.keras + state.json
CHECKPOINT_FILE = "last.keras"
STATE_FILE = "state.json"
DONE_MARKER = "training_done"
MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"


@dataclass
class TrainInputs:
    train: FaceCache
    val: FaceCache
    val_source: str  # "given" or "split"
    #: per dataset given: its source, faces and class counts, for metrics.json
    train_datasets: list[dict[str, Any]] = field(default_factory=list)
    val_datasets: list[dict[str, Any]] = field(default_factory=list)


def as_refs(refs: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """--data/--val as a list (one string from an older run's config.yaml included)."""
    if refs is None:
        return []
    return [refs] if isinstance(refs, str) else list(refs)


def _check_refs(refs: list[str], option: str) -> None:
    seen: dict[str, str] = {}
    for ref in refs:
        path, _, split = ref.partition("#")
        key = f"{Path(path).expanduser().resolve()}#{split}"
        if key in seen:
            raise FerError(f"{option} {ref} is given twice (as {seen[key]} too); name each dataset "
                           "once")
        seen[key] = ref


def _describe(cache: FaceCache) -> dict[str, Any]:
    return {"source": cache.source, "faces": len(cache), "class_counts": cache.class_counts(),
            "skipped": cache.skips.as_dict()}


def _load_each(refs: list[str], role: str, cfg: FerConfig, classes: tuple[str, ...],
               cache_root: Path | None, max_per_class: int | None, numeric: str | None,
               include_contempt: bool, rebuild_cache: bool, progress: bool) -> list[FaceCache]:
    """Each dataset read, decoded into its own cache (once: a later run reuses it) with the full
    label set, then narrowed to `classes`."""
    from fer.data import cap_per_class

    size = (cfg.model.input_size, cfg.model.input_size)
    full = label_set(include_contempt)
    parts = []
    for ref in refs:
        ds = read_dataset(ref, role, include_contempt, numeric)
        if max_per_class and role == "train":
            ds = cap_per_class(ds, max_per_class, cfg.train.seed)
        cache = restrict_classes(prepare(ds, full, size, cfg.model.channels, cache_root,
                                         rebuild_cache, progress=progress), classes)
        if len(cache) == 0:
            raise FerError(f"{ref}: none of its faces is of the classes {', '.join(classes)}; "
                           "leave it out or change --classes")
        parts.append(cache)
    return parts


def load_data(data: list[str], val: list[str] | None, cfg: FerConfig, classes: tuple[str, ...],
              cache_root: Path | None, max_per_class: int | None, numeric: str | None,
              include_contempt: bool, rebuild_cache: bool, progress: bool) -> TrainInputs:
    """Every --data into one training set in the one label space (`classes`), the same for
    --val; without --val a stratified share of the combined training data is held out."""
    from fer.data import stratified_split

    args = (cfg, classes, cache_root, max_per_class, numeric, include_contempt, rebuild_cache,
            progress)
    parts = _load_each(data, "train", *args)
    train = combine_caches(parts)
    described = [_describe(p) for p in parts]
    if not val:
        tr, va = stratified_split(train.targets, cfg.train.val_fraction, cfg.train.seed)
        origin = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        for d, n_tr, n_va in zip(described, np.bincount(origin[tr], minlength=len(parts)),
                                 np.bincount(origin[va], minlength=len(parts)), strict=True):
            d.update(train_faces=int(n_tr), val_faces=int(n_va))
        return TrainInputs(train.subset(tr), train.subset(va), "split", described)
    vparts = _load_each(val, "val", *args)
    return TrainInputs(train, combine_caches(vparts), "given", described,
                       [_describe(p) for p in vparts])


def _mirrored(tf, devices: tuple[str, ...]):
    """MirroredStrategy over the named devices ('GPU:0', 'CPU:1', ...), each checked to exist, so
    a typo is one line naming the devices there are, not a TensorFlow stack trace."""
    there = {d.name.split("device:")[-1].upper(): d.name for d in tf.config.list_logical_devices()}
    wanted = [d.strip().upper().removeprefix("/").removeprefix("DEVICE:") for d in devices]
    missing = [d for d in wanted if d not in there]
    if missing:
        raise FerError(f"--devices: no device {missing[0]} here; this machine has "
                       f"{', '.join(sorted(there))}")
    return tf.distribute.MirroredStrategy(devices=[there[d] for d in wanted])


def _setup_devices(cfg: FerConfig, devices: tuple[str, ...] | None = None):
    """One GPU: mixed precision; several (TensorFlow): MirroredStrategy over all of them, or over
    `devices` when given (any TensorFlow devices, logical CPUs included); none: the CPU.

    Keras 3 runs on TensorFlow (the default here) or PyTorch (`KERAS_BACKEND=torch`), so a
    machine with a CUDA build of torch but no TensorFlow GPU build still trains on its GPU."""
    import contextlib

    from fer.keras_env import keras

    k = keras()
    if devices and k.backend.backend() != "tensorflow":
        raise FerError("--devices picks TensorFlow devices; Keras runs on "
                       f"{k.backend.backend()} here (unset KERAS_BACKEND)")
    if k.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
        if devices:
            strategy = _mirrored(tf, devices)
        else:
            strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
        scope, replicas = strategy.scope, strategy.num_replicas_in_sync
    else:
        gpus = _torch_gpus() if k.backend.backend() == "torch" else 0
        scope, replicas = contextlib.nullcontext, 1
    use_mp = cfg.train.mixed_precision == "on" or (cfg.train.mixed_precision == "auto" and gpus)
    k.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")
    return scope, {"backend": k.backend.backend(), "gpus": gpus, "mixed_precision": bool(use_mp),
                   "replicas": replicas}


def augment_processes(setting: int | str, gpus: int) -> int:
    """How many processes augment (`train.augment_processes`): 'auto' gives a GPU one per spare
    core (at most 8), and a CPU none, since there the trainer already keeps every core busy."""
    if setting != "auto":
        return int(setting)
    return min(8, max((os.cpu_count() or 1) - 1, 0)) if gpus else 0


def _torch_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def can_export_onnx() -> bool:
    """The ONNX export goes through tf2onnx, so it needs Keras on TensorFlow."""
    from fer.keras_env import keras

    return keras().backend.backend() == "tensorflow"


def _check_run_folder(out: Path, resume: bool) -> None:
    state = [p for p in (out / CHECKPOINT_DIR, out / MODEL_FILE, out / "history.csv") if p.exists()]
    if resume and not state:
        raise FerError(f"nothing to resume in {out}: no checkpoint there; drop --resume to start")
    if not resume and state:
        raise FerError(f"{out} already holds a training run; pass --resume to continue it or "
                       "choose another --out")


def train(data: str | list[str] | None, out: Path, val: str | list[str] | None = None,
          cfg: FerConfig | None = None, resume: bool = False, cache_root: Path | None = None,
          max_per_class: int | None = None, numeric: str | None = None,
          include_contempt: bool = False, rebuild_cache: bool = False, progress: bool = True,
          init: Path | None = None, classes: str | list[str] | tuple[str, ...] | None = None,
          devices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Train (or resume) a FER model into `out`; returns the run's metrics.

    `data` and `val` may name several datasets, trained on as one in the one label space.
    `classes` trains on a subset (`"angry,happy,sad,surprise,neutral"`); the model's outputs and
    labels.json then list only those. `init` starts from another model's weights (a `.keras` file
    of the same architecture, such as the shipped one) instead of random ones: fine-tuning, or a
    second learning-rate cycle.

    Nothing is written to `out` until every dataset has been read and prepared, so a refused run
    leaves no run folder behind."""
    out = Path(out)
    _check_run_folder(out, resume)
    if init is not None and not Path(init).is_file():
        raise FerError(f"initial weights {init} not found; give a .keras model file")
    if resume:  # the run's own settings win, so a resumed run is the same run
        saved = yaml.safe_load((out / "config.yaml").read_text())
        cfg = config_from_dict(saved["config"])
        if data or val:  # the same datasets elsewhere: a run trained on another machine
            _log("resuming with the datasets given, in place of the run's saved paths")
        data, val = data or saved["data"], val or saved["val"]
        max_per_class, numeric = saved["max_per_class"], saved["numeric"]
        include_contempt = saved["include_contempt"]
        classes = saved.get("classes")
        init = Path(saved["init"]) if saved.get("init") else None
        if cache_root is None and saved.get("cache_dir"):
            cache_root = Path(saved["cache_dir"])
    cfg = cfg or FerConfig()
    data_refs, val_refs = as_refs(data), as_refs(val)
    if not data_refs:
        raise FerError("--data is required (or --resume to continue a run)")
    _check_refs(data_refs, "--data")
    _check_refs(val_refs, "--val")
    labels = class_subset(classes, include_contempt) if classes else label_set(include_contempt)
    include_contempt = include_contempt or "contempt" in labels
    carried = any(p.is_file() for p in (out / DONE_MARKER, out / CHECKPOINT_DIR / CHECKPOINT_FILE))
    if cfg.distill.teachers and not carried:
        from fer.distill import check_teachers  # a resumed run has its teachers in its checkpoint

        check_teachers(cfg.distill.teachers, labels, cfg.model)
    inputs = load_data(data_refs, val_refs or None, cfg, labels, cache_root, max_per_class,
                       numeric, include_contempt, rebuild_cache, progress)
    for d in inputs.train_datasets if len(inputs.train_datasets) > 1 else ():
        _log(f"  {d['source']}: {d['faces']} faces {d['class_counts']}")
    _log(f"train: {len(inputs.train)} faces {inputs.train.class_counts()}")
    _log(f"val ({inputs.val_source}): {len(inputs.val)} faces; train data {inputs.train.skips.summary()}")
    empty = [name for name, n in inputs.train.class_counts().items() if n == 0]
    if empty:
        _log(f"warning: no training faces of {', '.join(empty)} (an empty class folder?); the model "
             "will not learn them: add faces, or leave them out with --classes")

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FerError(f"cannot create run folder {out}: {e.strerror}") from e
    (out / "config.yaml").write_text(yaml.safe_dump({
        "data": data_refs, "val": val_refs or None, "classes": list(labels) if classes else None,
        "max_per_class": max_per_class, "numeric": numeric,
        "include_contempt": include_contempt,
        "cache_dir": str(cache_root) if cache_root else None,
        "init": str(init) if init else None, "config": cfg.to_dict()},
        sort_keys=False))

    if not (out / DONE_MARKER).exists():
        started = time.time()
        used = _fit(inputs, cfg, labels, out, progress, init, devices)
        if cfg.distill.teachers:
            _drop_teachers(out / MODEL_FILE)
        (out / DONE_MARKER).write_text(json.dumps({"seconds": time.time() - started, **used}))
    if not can_export_onnx():
        _log(f"trained; the ONNX export and final metrics need Keras on TensorFlow: run "
             f"`fer-train --resume --out {out}` on a TensorFlow install to finish")
        return {"finished": False, "out": str(out)}
    return finalize(out, inputs, cfg, labels)


def _callbacks(k, out: Path, patience: int, state: dict[str, Any], ema: bool = False):
    """Best-model saving, early stopping and an every-epoch full checkpoint for --resume.

    Keras' BackupAndRestore keeps only weights, so a resumed run would restart the optimizer and
    the learning-rate schedule; this checkpoint is the whole compiled model plus counters.
    With a weight average (`ema`), Keras' SwapEMAWeights puts the average in the model for
    validation and for the best-model file, after the resume checkpoint has saved the weights
    being trained (saved swapped, a resumed run would train on from the average)."""

    class EpochCheckpoint(k.callbacks.Callback):
        def __init__(self, stopper):
            super().__init__()
            self.stopper = stopper

        def on_epoch_end(self, epoch, logs=None):
            tmp = out / CHECKPOINT_DIR / "last.tmp.keras"
            self.model.save(tmp)
            os.replace(tmp, out / CHECKPOINT_DIR / CHECKPOINT_FILE)
            state = {"epoch": epoch + 1, "best": _as_float(self.stopper.best),
                     "wait": self.stopper.wait}
            (out / CHECKPOINT_DIR / STATE_FILE).write_text(json.dumps(state))

    class ResumableEarlyStopping(k.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if state.get("best") is not None:
                self.best, self.wait = state["best"], state["wait"]

    stopper = ResumableEarlyStopping(monitor="val_accuracy", mode="max", patience=patience)
    return [
        stopper,
        k.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        k.callbacks.TerminateOnNaN(),
        EpochCheckpoint(stopper),  # after the stopper, so it records its updated counters
        *([k.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []),
        k.callbacks.ModelCheckpoint(str(out / MODEL_FILE), monitor="val_accuracy", mode="max",
                                    save_best_only=True,
                                    initial_value_threshold=state.get("best")),
    ]


def _load_initial_weights(k, model, path: Path) -> None:
    try:
        source = k.models.load_model(path, compile=False)
        model.set_weights(source.get_weights())
    except ValueError as e:
        raise FerError(f"cannot start from {path}: its architecture differs from this run's "
                       f"settings ({e}); give the same model settings as the run that made it") from e
    _log(f"starting from the weights of {path}")


def _as_float(value) -> float | None:
    return None if value is None else float(value)


def _split_evenly(x: np.ndarray, y: np.ndarray, replicas: int) -> tuple[np.ndarray, ...]:
    """Validation data whose every batch splits evenly across the replicas: Keras 3 on
    MirroredStrategy fails on an uneven last validation batch (an AddN shape error), so the set is
    padded with up to replicas - 1 copies weighted 0. Accuracy, which picks the best model, is
    unchanged; val_loss is averaged over the padded count."""
    pad = -len(x) % replicas
    if not pad:
        return x, y
    weights = np.r_[np.ones(len(x), np.float32), np.zeros(pad, np.float32)]
    return np.concatenate([x, x[:pad]]), np.concatenate([y, y[:pad]]), weights


def _fit(inputs: TrainInputs, cfg: FerConfig, labels: tuple[str, ...], out: Path,
         progress: bool, init: Path | None = None, devices: tuple[str, ...] | None = None
         ) -> dict[str, Any]:
    from fer.data import AugmentedBatches, class_weights
    from fer.distill import student_of, with_teachers  # also lets a distilled checkpoint load
    from fer.keras_env import keras
    from fer.model import build_model

    k = keras()
    k.utils.set_random_seed(cfg.train.seed)
    scope, used = _setup_devices(cfg, devices)
    t = cfg.train
    weights = class_weights(inputs.train.targets, len(labels), t.class_weight)
    batch = t.batch_size * used["replicas"]
    x_val = inputs.val.images.astype(np.float32)
    y_val = np.eye(len(labels), dtype=np.float32)[inputs.val.targets]
    steps = -(-len(inputs.train.images) // batch)
    warmup = min(t.warmup_epochs, max(t.epochs - 1, 0)) * steps
    (out / CHECKPOINT_DIR).mkdir(exist_ok=True)
    last, state_file = out / CHECKPOINT_DIR / CHECKPOINT_FILE, out / CHECKPOINT_DIR / STATE_FILE
    state = json.loads(state_file.read_text()) if last.is_file() and state_file.is_file() else {}
    with scope():
        if state:
            model = k.models.load_model(last)  # weights, optimizer state and schedule position
            _log(f"resuming after epoch {state['epoch']} (best val accuracy {state['best']})")
        else:
            model = build_model(cfg.model, len(labels))
            if init is not None:
                _load_initial_weights(k, model, Path(init))
            model = with_teachers(model, cfg.distill)
            schedule = k.optimizers.schedules.CosineDecay(
                initial_learning_rate=t.learning_rate * (0.05 if warmup else 1.0),
                decay_steps=max(t.epochs * steps - warmup, 1), alpha=0.01,
                warmup_target=t.learning_rate if warmup else None, warmup_steps=warmup)
            optimizer = k.optimizers.AdamW(schedule, weight_decay=t.weight_decay,
                                           use_ema=t.ema > 0, ema_momentum=t.ema)
            model.compile(optimizer=optimizer,
                          loss=k.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
                          metrics=["accuracy"])
        model.jit_compile = False  # ~30% faster than XLA on a CPU, measured
    used["augment_processes"] = augment_processes(t.augment_processes, used["gpus"])
    feed = AugmentedBatches(inputs.train.images, inputs.train.targets, len(labels), batch,
                            cfg.augment, weights, t.seed, workers=t.workers,
                            processes=used["augment_processes"], epoch=state.get("epoch", 0))
    student = student_of(model)
    _log(f"model {student.name}: {student.count_params():,} parameters; {steps} steps per epoch; "
         f"devices {used}" + (f"; distilled from {len(model.teachers)} teacher(s)"
                              if model is not student else ""))
    verbose = 1 if progress and sys.stderr.isatty() else 2
    try:
        model.fit(feed, validation_data=_split_evenly(x_val, y_val, used["replicas"]),
                  validation_batch_size=batch if used["replicas"] > 1 else None, epochs=t.epochs,
                  initial_epoch=state.get("epoch", 0),
                  callbacks=_callbacks(k, out, t.patience, state, ema=t.ema > 0),
                  verbose=verbose)
    finally:
        feed.close()
    return used


def _drop_teachers(path: Path) -> None:
    """The best-model file of a distilled run holds the teachers too; keep only the model trained
    (atomically, so an interrupted rewrite leaves the whole file)."""
    from fer.distill import student_of
    from fer.keras_env import keras

    if not path.is_file():
        return
    model = keras().models.load_model(path, compile=False)
    if (student := student_of(model)) is not model:
        tmp = path.with_name("model.tmp.keras")
        student.save(tmp)
        os.replace(tmp, path)


def finalize(out: Path, inputs: TrainInputs, cfg: FerConfig, labels: tuple[str, ...]
             ) -> dict[str, Any]:
    """Best checkpoint -> labels.json, ONNX export (checked), metrics, curves, confusion matrix."""
    from fer.data import duplicate_report
    from fer.evaluate import classification_metrics
    from fer.export import export_onnx, max_abs_difference
    from fer.keras_env import keras
    from fer.plots import plot_confusion, plot_curves, read_history
    from fer.predict import load_classifier

    if not (out / MODEL_FILE).is_file():
        raise FerError(f"training in {out} produced no checkpoint (no epoch improved on "
                       "validation); check history.csv")
    meta = make_metadata(labels, cfg.model.input_size, cfg.model.channels, cfg.train.tta_flip,
                         {"architecture": cfg.model.__dict__ | {"widths": list(cfg.model.widths)}})
    write_metadata_file(meta, out / LABELS_FILE)
    model = keras().models.load_model(out / MODEL_FILE, compile=False)
    export_onnx(model, out / ONNX_FILE, meta)
    probe = inputs.val.images[:256]
    onnx_diff = max_abs_difference(model, out / ONNX_FILE, probe)

    classifier = load_classifier(out / ONNX_FILE)
    raw = classifier.predict(inputs.val.images, calibrated=False)
    calibration = _calibrate(raw, inputs.val, meta, out)
    probs = apply_temperature(raw, calibration["temperature"])
    result = classification_metrics(inputs.val.targets, probs, labels)
    plain = classification_metrics(inputs.val.targets,
                                   classifier.predict(inputs.val.images, tta_flip=False), labels)
    history = read_history(out / "history.csv")
    done = json.loads((out / DONE_MARKER).read_text())
    metrics = {
        "val_accuracy": result["accuracy"],
        "val_accuracy_no_tta": plain["accuracy"],
        "val_macro_f1": result["macro_f1"],
        "tta_flip": cfg.train.tta_flip,
        "labels": list(labels),
        "validation": {"source": inputs.val.source, "how": inputs.val_source, **result,
                       "datasets": inputs.val_datasets},
        "train": {"source": inputs.train.source, "faces": len(inputs.train),
                  "class_counts": inputs.train.class_counts(),
                  "skipped": inputs.train.skips.as_dict(), "datasets": inputs.train_datasets},
        "epochs_run": len(history.get("epoch", [])),
        "best_epoch": int(np.argmax(history["val_accuracy"]) + 1) if history.get("val_accuracy") else None,
        "train_seconds": done.get("seconds"),
        "devices": {k: v for k, v in done.items() if k != "seconds"},
        "parameters": int(model.count_params()),
        "onnx_max_abs_diff": onnx_diff,
        "calibration": calibration,
        "classes_without_training_faces": [n for n, c in inputs.train.class_counts().items() if not c],
        "duplicates": duplicate_report(inputs.train.images, inputs.val.images),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_curves(history, out)
    plot_confusion(result["confusion_matrix"], list(labels), out / "confusion.png")
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return metrics


def _calibrate(raw: np.ndarray, val: FaceCache, meta: dict[str, Any], out: Path) -> dict[str, Any]:
    """Fit the temperature on the validation faces and store it in labels.json and in the ONNX
    file's embedded metadata, so every copy of the model gives calibrated probabilities."""
    from fer.calibrate import calibration_report, fit_temperature, logits_from_probs
    from fer.export import embed_metadata

    report = calibration_report(raw, val.targets,
                                fit_temperature(logits_from_probs(raw), val.targets))
    meta["calibration"] = {
        "temperature": report["temperature"],
        "method": "temperature scaling: softmax(log(p) / T), p after flip TTA when tta_flip",
        "fitted_on": "fer-train validation", "faces": len(val), "tta_flip": meta["tta_flip"],
        "ece_bins": report["bins"], "ece_before": report["ece_uncalibrated"],
        "ece_after": report["ece"], "nll_before": report["nll_uncalibrated"],
        "nll_after": report["nll"]}
    write_metadata_file(meta, out / LABELS_FILE)
    embed_metadata(out / ONNX_FILE, meta)
    _log(f"calibration: temperature {report['temperature']:.4f}, ECE {report['ece_uncalibrated']:.4f}"
         f" -> {report['ece']:.4f} on the validation faces")
    return report


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
