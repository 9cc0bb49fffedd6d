"""fer-prep, fer-train, fer-eval: thin click wrappers over fer.prepare, fer.train, fer.evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from fer.errors import FerError, user_errors

NUMERIC = click.Choice(["fer2013", "affectnet"])
DATA_HELP = ("dataset: a FER2013 CSV, an AffectNet folder or CSV, or a folder-per-class tree; "
             "add #SPLIT to pick a split (e.g. fer2013.csv#PublicTest). See datasets.txt.")


def _cache(path: str | None) -> Path | None:
    return Path(path) if path else None


class OneLineErrors(click.Command):
    """A bad option value is one 'Error:' line and exit 2: click's own usage block is left out for
    those, since the line already names the option and what it accepts."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.BadParameter as e:
            e.ctx = None
            raise


class OptionError(click.ClickException):
    """An option refused after parsing (an output that would replace an input): exit 2, as click
    does for bad options."""

    exit_code = 2


COMMAND = {"cls": OneLineErrors, "context_settings": {"help_option_names": ["-h", "--help"]}}
#: The crop side: the model's four 2x2 poolings need 16 px; beyond 512 px nothing is gained.
INPUT_SIZE = click.IntRange(16, 512)
POSITIVE = click.IntRange(min=1)


@click.command(**COMMAND)
@click.option("--data", required=True, help=DATA_HELP)
@click.option("--split", "role", type=click.Choice(["train", "val"]), default="train",
              show_default=True, help="which split to prepare when --data has several")
@click.option("--input-size", default=48, show_default=True, type=INPUT_SIZE,
              help="crop side in pixels")
@click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option("--contempt", is_flag=True, help="keep AffectNet's contempt as an 8th class")
@click.option("--numeric-labels", type=NUMERIC, help="label order of numbered class folders")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="cache root [~/.cache/fer]")
@click.option("--rebuild-cache", is_flag=True, help="discard an existing cache for this data")
@user_errors(FerError)
def prep_cmd(data, role, input_size, channels, contempt, numeric_labels, cache_dir,
             rebuild_cache):
    """Decode and crop a dataset once into a resumable cache of model-sized faces."""
    from fer.labels import label_set
    from fer.prepare import prepare
    from fer.readers import read_dataset

    ds = read_dataset(data, role, contempt, numeric_labels)
    cache = prepare(ds, label_set(contempt), (input_size, input_size), int(channels),
                    _cache(cache_dir), rebuild_cache)
    click.echo(f"{len(cache)} faces in {cache.path}")
    click.echo(f"classes: {cache.class_counts()}")
    click.echo(cache.skips.summary())


@click.command(**COMMAND)
@click.option("--data", multiple=True, help=DATA_HELP + " Repeat it to train on several datasets "
              "as one. Required unless --resume; with it, replaces the run's saved paths (the same data "
              "in another place, e.g. a run trained on another machine).")
@click.option("--val", multiple=True, help="validation dataset (same forms as --data; default "
              "split: val; repeatable). Without it a stratified split of --data is held out. With "
              "--resume, replaces the run's saved validation paths.")
@click.option("--classes", help="train on these classes only, comma-separated (e.g. "
              "angry,happy,sad,surprise,neutral); faces of the others are left out and counted")
@click.option("--out", type=click.Path(file_okay=False),
              help="run folder for the model, metrics and plots (required unless --print-config)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML overriding the defaults (see --print-config)")
@click.option("--epochs", type=POSITIVE, help="override train.epochs")
@click.option("--batch-size", type=POSITIVE, help="override train.batch_size")
@click.option("--input-size", type=INPUT_SIZE, help="override model.input_size")
@click.option("--channels", type=click.Choice(["1", "3"]), help="override model.channels")
@click.option("--attention-heads", type=click.IntRange(0, 64),
              help="override model.attention_heads (0 = plain)")
@click.option("--max-per-class", type=POSITIVE, help="use at most N training faces per class")
@click.option("--contempt", is_flag=True, help="keep AffectNet's contempt as an 8th class")
@click.option("--numeric-labels", type=NUMERIC, help="label order of numbered class folders")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="cache root [~/.cache/fer]")
@click.option("--rebuild-cache", is_flag=True, help="discard existing caches for this data")
@click.option("--resume", is_flag=True, help="continue the interrupted run in --out")
@click.option("--init", "init", type=click.Path(dir_okay=False),
              help="start from this .keras model's weights (same architecture) [random]")
@click.option("--teacher", "teachers", multiple=True, type=click.Path(dir_okay=False),
              help="also learn from this trained model.keras's softened probabilities "
              "(repeat for an ensemble; distill.* in the config) [none]")
@click.option("--no-progress", is_flag=True, help="one line per epoch instead of progress bars")
@click.option("--devices", help="train on these TensorFlow devices together (MirroredStrategy), "
              "e.g. GPU:0,GPU:1; each takes --batch-size per step [every GPU]")
@click.option("--print-config", is_flag=True, help="print the effective settings and exit")
@user_errors(FerError)
def train_cmd(data, val, classes, out, config_path, epochs, batch_size, input_size, channels,
              attention_heads, max_per_class, contempt, numeric_labels, cache_dir, rebuild_cache,
              resume, init, teachers, no_progress, devices, print_config):
    """Train the FERNet-style expression classifier."""
    from fer.config import load_config
    from fer.labels import class_subset

    if classes is not None:  # a bad list is a bad option: refused (exit 2) before anything else
        try:
            class_subset(classes, contempt)
        except FerError as e:
            raise OptionError(str(e)) from e
    overrides: dict = {"train": {}, "model": {}, "distill": {"teachers": teachers} if teachers else {}}
    for section, key, value in (("train", "epochs", epochs), ("train", "batch_size", batch_size),
                                ("model", "input_size", input_size),
                                ("model", "channels", int(channels) if channels else None),
                                ("model", "attention_heads", attention_heads)):
        if value is not None:
            overrides[section][key] = value
    cfg = load_config(Path(config_path) if config_path else None, overrides)
    if print_config:
        click.echo(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict())), sort_keys=False))
        return
    if not out:  # not click's required=True: --print-config needs no run folder
        raise OptionError("Missing option '--out': the run folder for the model, metrics and plots.")
    if not data and not resume:
        raise FerError("--data is required (or --resume to continue a run)")
    from fer.train import train

    metrics = train(list(data), Path(out), list(val), cfg, resume, _cache(cache_dir),
                    max_per_class, numeric_labels, contempt, rebuild_cache,
                    progress=not no_progress, init=Path(init) if init else None, classes=classes,
                    devices=tuple(d for d in devices.split(",") if d.strip()) if devices else None)
    if not metrics.get("finished", True):
        return
    click.echo(f"validation accuracy {metrics['val_accuracy'] * 100:.2f}% "
               f"(no flip TTA {metrics['val_accuracy_no_tta'] * 100:.2f}%), macro-F1 "
               f"{metrics['val_macro_f1']:.4f}; ONNX max |diff| {metrics['onnx_max_abs_diff']:.2e}")
    click.echo(f"run folder: {out}")


def _check_eval_outputs(model_paths: tuple[str, ...], data: str, json_path: str | None,
                        plots: dict[str, str | None]) -> None:
    """Before any work: no report may replace a model, its labels.json, the data or another
    report, and a plot's suffix must be a format matplotlib writes (else it fails after
    evaluating)."""
    taken: dict[Path, str] = {Path(data.split("#")[0]).resolve(): "--data"}
    for model in (Path(m).resolve() for m in model_paths):
        taken |= {model: "--model", model.with_name("labels.json"): "the model's labels.json"}
    for option, target in (("--json", json_path), *plots.items()):
        if not target:
            continue
        resolved = Path(target).resolve()
        if resolved in taken:
            raise OptionError(f"{option} {target} is {taken[resolved]}; choose another file")
        taken[resolved] = option
    formats = None
    for option, target in plots.items():
        if target:
            if formats is None:
                from matplotlib.figure import Figure

                formats = Figure().canvas.get_supported_filetypes()
            if Path(target).suffix.lower().lstrip(".") not in formats:
                raise OptionError(f"{option} {target}: use one of the suffixes "
                                  f"{', '.join('.' + f for f in sorted(formats))}")


@click.command(**COMMAND)
@click.option("--model", "model_paths", required=True, multiple=True,
              type=click.Path(dir_okay=False),
              help=".onnx or .keras model with its labels.json; repeat it to measure the models' "
                   "ensemble (mean probabilities, as fer-train --teacher uses them) and each one")
@click.option("--data", required=True, help=DATA_HELP + " Default split: val.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="write the full result here [fer_eval_<model>.json in the current folder]")
@click.option("--tta/--no-tta", default=None, help="mirror test-time augmentation [model's choice]")
@click.option("--numeric-labels", type=NUMERIC, help="label order of numbered class folders")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="cache root [~/.cache/fer]")
@click.option("--confusion", type=click.Path(dir_okay=False), help="also save a confusion PNG")
@click.option("--reliability", type=click.Path(dir_okay=False),
              help="also save reliability diagrams (PNG): uncalibrated beside calibrated")
@click.option("--calibrate", is_flag=True,
              help="fit the temperature on this data (use validation data, never the test set) "
                   "and store it in the labels.json beside --model; the weights are not touched")
@click.option("--degrade", metavar="all|lowres,jpeg,blur,dark",
              help="also measure on copies of the data as real photos spoil faces: a 16 px face "
                   "blown up, JPEG quality 25, blur, a dim room (fixed, so models compare)")
@user_errors(FerError)
def eval_cmd(model_paths, data, json_path, tta, numeric_labels, cache_dir, confusion, reliability,
             calibrate, degrade):
    """Accuracy, macro-F1, per-class figures and calibration (ECE) of a model on any readable
    dataset; --calibrate fits and stores the temperature that makes its probabilities honest."""
    from fer.degrade import parse_corruptions
    from fer.evaluate import (
        evaluate,
        evaluate_degraded,
        evaluate_ensemble,
        format_degraded,
        format_table,
        store_calibration,
        write_json,
    )
    from fer.labels import label_set
    from fer.predict import Ensemble, load_classifier
    from fer.prepare import prepare, restrict_classes
    from fer.readers import read_dataset

    _check_eval_outputs(model_paths, data, json_path,
                        {"--confusion": confusion, "--reliability": reliability})
    if calibrate and len(model_paths) > 1:
        raise OptionError("--calibrate stores a temperature beside one model; give one --model")
    corruptions = parse_corruptions(degrade) if degrade else ()
    members = [load_classifier(m) for m in model_paths]
    classifier = members[0] if len(members) == 1 else Ensemble(members)
    ds = read_dataset(data, "val", "contempt" in classifier.labels, numeric_labels)
    full = label_set("contempt" in classifier.labels)
    # a subset model (fer-train --classes) is measured on its classes; the data's other faces
    # are left out and counted, and the cache is the full dataset's, shared with other models
    labels = full if set(classifier.labels) <= set(full) else classifier.labels
    cache = restrict_classes(prepare(ds, labels, classifier.size, classifier.channels,
                                     _cache(cache_dir)), classifier.labels)
    if len(cache) == 0:
        raise FerError(f"{data}: none of its faces is of the model's classes "
                       f"{', '.join(classifier.labels)}")
    if len(members) > 1:
        result = evaluate_ensemble(classifier, cache, tta)
        for m in result["members"]:
            click.echo(f"member {m['model']}: accuracy {m['accuracy'] * 100:.2f}%   macro-F1 "
                       f"{m['macro_f1']:.4f}")
        click.echo(f"ensemble of {len(members)} (mean probabilities):")
    else:
        result = evaluate(classifier, cache, tta, fit_calibration=calibrate)
    click.echo(format_table(result))
    if calibrate:
        click.echo(f"stored temperature {result['calibration']['temperature']:.4f} in "
                   f"{store_calibration(classifier, result)}")
    if corruptions:
        result["degraded"] = evaluate_degraded(classifier, cache, corruptions, tta)
        click.echo(format_degraded(result, result["degraded"]))
    if cache.skips.total:
        click.echo(cache.skips.summary())
    target = Path(json_path) if json_path else Path(f"fer_eval_{classifier.path.stem}.json")
    write_json(result, target)
    if confusion:
        from fer.plots import plot_confusion

        plot_confusion(result["confusion_matrix"], result["labels"], Path(confusion))
    if reliability:
        _plot_reliability(result, Path(reliability))
    click.echo(f"wrote {target}")


def _plot_reliability(result: dict, path: Path) -> None:
    import numpy as np

    from fer.plots import plot_reliability

    c = result["calibration"]

    def arrays(bins: dict) -> dict:
        return {k: np.array([np.nan if v is None else v for v in vals], float) if k != "count"
                else np.array(vals, int) for k, vals in bins.items()}

    plot_reliability([("uncalibrated (T = 1)", arrays(c["reliability_uncalibrated"]),
                       c["ece_uncalibrated"]),
                      (f"temperature-scaled (T = {c['temperature']:.3f})", arrays(c["reliability"]),
                       c["ece"])], path)
