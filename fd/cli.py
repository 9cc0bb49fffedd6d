"""fd-prep, fd-train, fd-eval: thin click wrappers over fd.convert/dataset, fd.train, fd.evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fd.convert.widerface import HELD_OUT_VAL_EVENTS
from fd.errors import FdError
from fer.cli import OneLineErrors
from fer.errors import FerError, user_errors

CTX = {"help_option_names": ["-h", "--help"]}


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def _overrides(pairs: tuple[str, ...]) -> dict:
    """'KEY=VALUE' strings -> typed values (YAML scalars: 0.5, true, 'sgd')."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FdError(f"--set takes KEY=VALUE, got '{pair}'")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise FdError(f"--set {pair}: the value is not a plain number, word or list") from None
    return out


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise FdError(f"{name} takes {n} comma-separated numbers, got '{text}'")
    return values


@click.command(cls=OneLineErrors, context_settings=CTX)
@click.option("--widerface", type=click.Path(file_okay=False), help="WIDER FACE root")
@click.option("--widerface-splits", default="train", show_default=True,
              help="comma-separated WIDER FACE splits to include (train,val)")
@click.option("--fddb", type=click.Path(file_okay=False), help="FDDB root (FDDB-folds/, originalPics/)")
@click.option("--fddb-images", type=click.Path(file_okay=False), help="FDDB images [FDDB/originalPics]")
@click.option("--fddb-scale", default="1.0,1.0", show_default=True,
              help="sx,sy applied to each ellipse's tight box about its centre")
@click.option("--lfpw", type=click.Path(file_okay=False), help="LFPW root (300-W layout)")
@click.option("--lfpw-margin", default="0.05,0.30,0.05", show_default=True,
              help="side,top,bottom growth of the landmark box (fractions)")
@click.option("--exclude-val-events", default=",".join(HELD_OUT_VAL_EVENTS), show_default=True,
              help="WIDER FACE val events left out entirely (the maintainers' test set); '' keeps all")
@click.option("--voc", type=click.Path(file_okay=False), help="Pascal VOC XML annotations folder")
@click.option("--voc-images", type=click.Path(file_okay=False), help="images of --voc [../images]")
@click.option("--voc-classes", help="comma-separated object names that are faces [every object]")
@click.option("--coco", type=click.Path(dir_okay=False), help="COCO detection JSON")
@click.option("--coco-images", type=click.Path(file_okay=False), help="images of --coco [its folder]")
@click.option("--coco-classes", help="comma-separated category names that are faces [names with 'face']")
@click.option("--yolo", type=click.Path(file_okay=False),
              help="YOLO txt dataset (images/ + labels/, or side by side)")
@click.option("--yolo-classes",
              help="comma-separated class ids that are faces [names with 'face' in data.yaml, else all]")
@click.option("--combined", type=click.Path(dir_okay=False),
              help="pre-combined label file ('# path' then 'x1 y1 x2 y2' lines)")
@click.option("--combined-images", type=click.Path(file_okay=False),
              help="image root of --combined [its folder]")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="YOLO dataset folder")
@click.option("--val-fraction", default=0.1, show_default=True,
              help="images held out at random, by image (besides --val-events)")
@click.option("--val-events", default="",
              help="events (WIDER FACE folders, or whole sources: fddb, voc, ...) held out whole "
                   "for validation, e.g. 'Group,Picnic'")
@click.option("--closeups", default=0.0, show_default=True,
              help="generated close-up crops per training image with a face >= 60 px")
@click.option("--hard-closeups", default=0.0, show_default=True,
              help="share of training images with a turned, heavily covered or heavily blurred "
                   "face >= 60 px (WIDER FACE's flags) given one more close-up of such a face")
@click.option("--small-faces", default=0.0, show_default=True,
              help="share of training images copied with 3-12 pasted 8-30 px faces")
@click.option("--harden", default=0.0, show_default=True,
              help="share of training images copied grayscale/blurred/dark/JPEG-damaged")
@click.option("--seed", default=0, show_default=True, help="seed of the generated images")
@click.option("--min-size", default=0.0, show_default=True,
              help="WIDER FACE: drop faces smaller than this many pixels")
@click.option("--copy", is_flag=True, help="copy images instead of linking them")
@click.option("--max-side", type=click.IntRange(32, 10000),
              help="write images larger than this (long side, px) shrunk to it: a dataset light "
                   "enough to carry to a training machine, at the size it trains at [as is]")
@click.option("--drop-empty", is_flag=True, help="leave out images with no face left")
@click.option("--no-progress", is_flag=True)
@user_errors(FerError)
def prep_cmd(widerface, widerface_splits, fddb, fddb_images, fddb_scale, lfpw, lfpw_margin,
             exclude_val_events, voc, voc_images, voc_classes, coco, coco_images, coco_classes, yolo,
             yolo_classes, combined, combined_images, out, val_fraction, val_events, closeups,
             hard_closeups, small_faces, harden, seed, min_size, copy, max_side, drop_empty,
             no_progress):
    """Convert WIDER FACE, FDDB, LFPW, Pascal VOC, COCO, YOLO and the combined export into one
    YOLO dataset; hold out whole events; add generated close-ups, small faces, hardened copies."""
    from fd.convert.combined import read_combined
    from fd.convert.fddb import read_fddb
    from fd.convert.lfpw import read_lfpw
    from fd.convert.widerface import read_widerface
    from fd.dataset import GenerateSpec, exclude_events, write_dataset
    from fer.readers.base import SkipLog

    if not any((widerface, fddb, lfpw, combined, voc, coco, yolo)):
        raise FdError("no source given: pass at least one of --widerface, --fddb, --lfpw, --voc, "
                      "--coco, --yolo, --combined")
    if not 0 <= val_fraction < 1:
        raise FdError("--val-fraction must be in [0, 1)")
    for name, value in (("--closeups", closeups), ("--hard-closeups", hard_closeups),
                        ("--small-faces", small_faces), ("--harden", harden)):
        if not 0 <= value <= 1:
            raise FdError(f"{name} must be in [0, 1], got {value}")
    held_out = _names(exclude_val_events)
    val_groups = _names(val_events)
    sources, skips = {}, {}

    def add(name, make):
        skips[name] = SkipLog()
        sources[name] = make(skips[name])

    for split in filter(None, widerface_splits.split(",")) if widerface else []:
        if split not in ("train", "val"):
            raise FdError(f"unknown WIDER FACE split '{split}': use train and/or val")
        key = "widerface" if split == "train" else f"widerface_{split}"
        if split == "val":
            add(key, lambda s: exclude_events(read_widerface(Path(widerface), "val", s, min_size),
                                              held_out, s))
        else:
            add(key, lambda s, sp=split: read_widerface(Path(widerface), sp, s, min_size))
    if fddb:
        scale = _floats(fddb_scale, 2, "--fddb-scale")
        add("fddb", lambda s: read_fddb(Path(fddb), s, scale,
                                        Path(fddb_images) if fddb_images else None))
    if lfpw:
        margin = _floats(lfpw_margin, 3, "--lfpw-margin")
        add("lfpw", lambda s: read_lfpw(Path(lfpw), s, margin))
    if combined:
        add("combined", lambda s: read_combined(Path(combined), s,
                                                Path(combined_images) if combined_images else None))
    if voc:
        from fd.convert.voc import read_voc

        add("voc", lambda s: read_voc(Path(voc), Path(voc_images) if voc_images else None, s,
                                      set(_names(voc_classes)) or None))
    if coco:
        from fd.convert.coco import read_coco

        add("coco", lambda s: read_coco(Path(coco), Path(coco_images) if coco_images else None, s,
                                        set(_names(coco_classes)) or None))
    if yolo:
        from fd.convert.yolo import read_yolo, yolo_face_classes

        try:
            ids = {int(v) for v in _names(yolo_classes)} or yolo_face_classes(Path(yolo))
        except ValueError:
            raise FdError(f"--yolo-classes takes class ids (numbers), got '{yolo_classes}'") from None
        add("yolo", lambda s: read_yolo(Path(yolo), s, ids))
    spec = GenerateSpec(closeups, small_faces, harden, seed, hard_closeups)
    report = write_dataset(sources, skips, Path(out), val_fraction, "copy" if copy else "link",
                           keep_empty=not drop_empty, progress=not no_progress,
                           val_events=val_groups, generate=spec, max_side=max_side)
    for name, src in report["sources"].items():
        skipped = src["skipped"]["by_reason"]
        detail = ", ".join(f"{n} {r}" for r, n in sorted(skipped.items(), key=lambda x: -x[1]))
        click.echo(f"{name}: {src['images_written']}/{src['images_read']} images, "
                   f"{src['faces']} faces; skipped: {detail or 'nothing'}")
    for kind, made in report["generated"].items():
        if made["images"]:
            click.echo(f"generated {kind}: {made['images']} images, {made['faces']} faces (train)")
    if val_groups:
        click.echo(f"validation events held out whole: {', '.join(val_groups)}")
    click.echo(f"train {report['images']['train']} / val {report['images']['val']} images -> "
               f"{report['out']} (data.yaml, prep_report.json)")


@click.command(cls=OneLineErrors, context_settings=CTX)
@click.option("--data", type=click.Path(dir_okay=False), help="data.yaml written by fd-prep")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="run folder")
@click.option("--weights", help="a local .pt to fine-tune [train from yolov8n.yaml]")
@click.option("--epochs", default=50, show_default=True)
@click.option("--imgsz", default=640, show_default=True)
@click.option("--batch", default=16, show_default=True)
@click.option("--device", help="cpu, 0, or 0,1 for several GPUs [GPU when present]")
@click.option("--hours", type=float, help="time budget; ultralytics fits the schedule into it")
@click.option("--resume", is_flag=True, help="continue the interrupted run in --out")
@click.option("--no-cache", is_flag=True, help="do not cache decoded images in memory")
@click.option("--workers", default=2, show_default=True, help="data-loader workers")
@click.option("--max-det", default=1000, show_default=True,
              help="detections kept per image when validating (crowded photos need > 300)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="any other ultralytics training setting, e.g. --set warmup_epochs=0.5 (repeatable)")
@user_errors(FerError)
def train_cmd(data, out, weights, epochs, imgsz, batch, device, hours, resume, no_cache, workers,
              max_det, overrides):
    """Train YOLOv8n as a face detector (offline; from yolov8n.yaml unless --weights)."""
    from fd.train import train

    if not data and not resume:
        raise FdError("--data is required (or --resume to continue a run)")
    extra = {"max_det": max_det, **_overrides(overrides)}
    metrics = train(Path(data) if data else None, Path(out), weights, epochs, imgsz, batch, device,
                    resume, hours, not no_cache, workers, extra)
    shown = {k.split("/")[-1]: round(v, 4) for k, v in metrics.items() if k.startswith("metrics/")}
    click.echo(f"final validation: {shown}")
    click.echo(f"wrote {Path(out) / 'best.pt'} and {Path(out) / 'best.onnx'}")


YUNET_CONF = 0.5  # the score threshold the peer pipeline runs YuNet at (shared/peers/README.md)


def _detector_for(spec: str, imgsz: int | None, zoom_out: bool = True):
    """'haar', 'yunet:PATH' or a YOLO .onnx/.pt path -> (label, detector, its operating conf),
    or None for a YuNet file that is absent (the peer is optional)."""
    from fd.predict import make_detector

    if spec == "haar":
        return "haar", make_detector("haar", None), None
    if spec.startswith("yunet:"):
        path = Path(spec.split(":", 1)[1])
        if not path.is_file():
            click.echo(f"note: YuNet model {path} not found; its column is left out", err=True)
            return None
        return "yunet", make_detector("yunet", path, conf=0.01, max_det=5000), YUNET_CONF
    return Path(spec).stem, make_detector("yolo", Path(spec), imgsz, conf=0.001, iou=0.6,
                                          max_det=1000, zoom_out=zoom_out), None


def distinct_labels(labels: list[str], specs: list[str]) -> list[str]:
    """Result keys for the compared models: their short names, except where two share one
    (every ultralytics run writes `best.pt`): those go by the path as given, numbered if the
    same model is repeated, so no result overwrites another."""
    named = [spec if labels.count(label) > 1 else label for label, spec in zip(labels, specs, strict=True)]
    return [name if named[:i].count(name) == 0 else f"{name}#{named[:i].count(name) + 1}"
            for i, name in enumerate(named)]


@click.command(cls=OneLineErrors, context_settings=CTX)
@click.option("--model", "models", required=True, multiple=True,
              help="face model (.onnx or .pt), 'haar', or 'yunet:PATH' (OpenCV's YuNet); repeat "
                   "to compare models on the same images")
@click.option("--data", required=True, type=click.Path(),
              help="fd-prep dataset (folder or data.yaml), or a WIDER FACE root")
@click.option("--split", default="val", show_default=True, help="WIDER FACE split to evaluate")
@click.option("--events", default="", help="only these events, e.g. the ones held out from training")
@click.option("--exclude-val-events", default=",".join(HELD_OUT_VAL_EVENTS), show_default=True,
              help="WIDER FACE root only: val events never evaluated (the maintainers' test set)")
@click.option("--imgsz", type=int,
              help="YOLO input size (long side) [each image at its own size, 160-1280 px]")
@click.option("--zoom-out/--no-zoom-out", default=True, show_default=True,
              help="YOLO: run each image again at half size and merge (finds close-ups)")
@click.option("--conf", default=0.35, show_default=True,
              help="operating confidence for P/R and close-ups (YuNet: its own 0.5)")
@click.option("--closeups/--no-closeups", default=True, show_default=True,
              help="also check close-ups made from the images (one face filling the frame)")
@click.option("--closeups-per-image", default=4, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="result file [fd_eval_<model>.json in the current folder]")
@click.option("--plot", type=click.Path(dir_okay=False), help="PR-curve PNG [beside the JSON]")
@click.option("--no-progress", is_flag=True)
@user_errors(FerError)
def eval_cmd(models, data, split, events, exclude_val_events, imgsz, zoom_out, conf, closeups,
             closeups_per_image, json_path, plot, no_progress):
    """AP50, AP50-95, AP by face size and per event, and close-ups found, for face detectors."""
    from fd.evaluate import (
        closeup_check,
        evaluate,
        format_comparison,
        format_events,
        format_table,
        only_events,
        plot_pr,
        widerface_val_items,
        write_json,
        yolo_val_items,
    )
    from fer.readers.base import SkipLog

    root = Path(data)
    if not root.exists():
        raise FdError(f"{root} does not exist")
    if not 0 < conf < 1:
        raise FdError(f"--conf must be between 0 and 1, got {conf}")
    specs, detectors = [], []
    for spec in models:
        if (made := _detector_for(spec, imgsz, zoom_out)) is not None:
            specs.append(spec)
            detectors.append(made)
    labels = distinct_labels([label for label, _, _ in detectors], specs)
    skips = SkipLog()
    if root.is_dir() and (root / "wider_face_split").is_dir():
        items = widerface_val_items(root, split, skips, _names(exclude_val_events))
    else:
        items = yolo_val_items(root / "data.yaml" if (root / "data.yaml").is_file() else root)
    items = list(only_events(items, _names(events)))
    if skips.total:
        click.echo(f"{root}: {skips.summary()}")
    if not items:
        raise FdError(f"no validation images in {root}" + (f" for events {events}" if events else ""))
    results = {}
    for label, (_, detector, own_conf) in zip(labels, detectors, strict=True):
        result = evaluate(detector, iter(items), own_conf or conf, progress=not no_progress)
        if closeups:
            result["closeups"] = closeup_check(detector, items, own_conf or conf,
                                               closeups_per_image, progress=not no_progress)
        result.update(model=label, data=str(root.resolve()), events_filter=list(_names(events)),
                      skipped=skips.as_dict())
        results[label] = result
        click.echo(f"== {label}")
        click.echo(format_table(result))
        if result.get("events"):
            click.echo(format_events(result))
        if closeups:
            c = result["closeups"]
            click.echo(f"close-ups: {c['found']}/{c['faces']} faces found "
                       f"({c['found_share']:.1%}) at confidence >= {c['operating_conf']}; "
                       f"{c['images_with_no_detection']} with no detection at all")
    if len(results) > 1:
        click.echo("== side by side")
        click.echo(format_comparison(results))
    first = next(iter(results))
    target = Path(json_path) if json_path else Path(f"fd_eval_{first}.json")
    write_json(results[first] if len(results) == 1 else {"models": results}, target)
    png = Path(plot) if plot else target.with_suffix(".png")
    plot_pr(results[first], png, f"{first} on {root.name}")
    click.echo(f"wrote {target} and {png}")
    click.echo(json.dumps({n: {"AP50": round(r["AP50"], 4), "AP50_95": round(r["AP50_95"], 4)}
                           for n, r in results.items()}))


@click.command(cls=OneLineErrors, context_settings=CTX)
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="the float ONNX detector (fd-train's best.onnx, or an export of the shipped .pt)")
@click.option("--images", required=True, type=click.Path(file_okay=False),
              help="real training images to calibrate on (an fd-prep dataset's images/train)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="INT8 model to write")
@click.option("--count", default=150, show_default=True, type=click.IntRange(1, 5000),
              help="calibration images, spread evenly over the folder")
@click.option("--per-channel/--per-tensor", default=True, show_default=True)
@click.option("--quantize-head/--float-head", default=False, show_default=True,
              help="also quantize the detection head's last convolutions and box decoding")
@click.option("--keep-float", multiple=True, metavar="NAME",
              help="keep every node whose name contains NAME in float, e.g. /model.22/ (the whole "
                   "head) or /model.0/ (the first conv); repeatable")
@user_errors(FerError)
def quantize_cmd(model, images, out, count, per_channel, quantize_head, keep_float):
    """Quantize a YOLO face detector to INT8 (ONNX Runtime static quantization, QDQ)."""
    from fd.quantize import quantize_detector

    if not Path(model).is_file():
        raise FdError(f"face model {model} not found")
    if not Path(images).is_dir():
        raise FdError(f"calibration image folder {images} not found")
    written = quantize_detector(Path(model), Path(out), Path(images), count, per_channel,
                                exclude_head=not quantize_head, keep_float=tuple(keep_float))
    click.echo(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
