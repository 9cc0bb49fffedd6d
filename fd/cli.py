"""fd-prep, fd-train, fd-eval: thin click wrappers over fd.convert/dataset, fd.train, fd.evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fd.errors import FdError
from fer.errors import FerError, user_errors

CTX = {"help_option_names": ["-h", "--help"]}


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise FdError(f"{name} takes {n} comma-separated numbers, got '{text}'")
    return values


@click.command(context_settings=CTX)
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
@click.option("--combined", type=click.Path(dir_okay=False),
              help="pre-combined label file ('# path' then 'x1 y1 x2 y2' lines)")
@click.option("--combined-images", type=click.Path(file_okay=False),
              help="image root of --combined [its folder]")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="YOLO dataset folder")
@click.option("--val-fraction", default=0.1, show_default=True, help="images held out, by image")
@click.option("--min-size", default=0.0, show_default=True,
              help="WIDER FACE: drop faces smaller than this many pixels")
@click.option("--copy", is_flag=True, help="copy images instead of linking them")
@click.option("--drop-empty", is_flag=True, help="leave out images with no face left")
@click.option("--no-progress", is_flag=True)
@user_errors(FerError)
def prep_cmd(widerface, widerface_splits, fddb, fddb_images, fddb_scale, lfpw, lfpw_margin,
             combined, combined_images, out, val_fraction, min_size, copy, drop_empty, no_progress):
    """Convert WIDER FACE, FDDB, LFPW and the combined export into one YOLO dataset."""
    from fd.convert.combined import read_combined
    from fd.convert.fddb import read_fddb
    from fd.convert.lfpw import read_lfpw
    from fd.convert.widerface import read_widerface
    from fd.dataset import write_dataset
    from fer.readers.base import SkipLog

    if not any((widerface, fddb, lfpw, combined)):
        raise FdError("no source given: pass at least one of --widerface, --fddb, --lfpw, "
                      "--combined")
    if not 0 <= val_fraction < 1:
        raise FdError("--val-fraction must be in [0, 1)")
    sources, skips = {}, {}

    def add(name, make):
        skips[name] = SkipLog()
        sources[name] = make(skips[name])

    for split in filter(None, widerface_splits.split(",")) if widerface else []:
        if split not in ("train", "val"):
            raise FdError(f"unknown WIDER FACE split '{split}': use train and/or val")
        key = "widerface" if split == "train" else f"widerface_{split}"
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
    report = write_dataset(sources, skips, Path(out), val_fraction, "copy" if copy else "link",
                           keep_empty=not drop_empty, progress=not no_progress)
    for name, src in report["sources"].items():
        skipped = src["skipped"]["by_reason"]
        detail = ", ".join(f"{n} {r}" for r, n in sorted(skipped.items(), key=lambda x: -x[1]))
        click.echo(f"{name}: {src['images_written']}/{src['images_read']} images, "
                   f"{src['faces']} faces; skipped: {detail or 'nothing'}")
    click.echo(f"train {report['images']['train']} / val {report['images']['val']} images -> "
               f"{report['out']} (data.yaml, prep_report.json)")


@click.command(context_settings=CTX)
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
@user_errors(FerError)
def train_cmd(data, out, weights, epochs, imgsz, batch, device, hours, resume, no_cache, workers,
              max_det):
    """Train YOLOv8n as a face detector (offline; from yolov8n.yaml unless --weights)."""
    from fd.train import train

    if not data and not resume:
        raise FdError("--data is required (or --resume to continue a run)")
    metrics = train(Path(data) if data else None, Path(out), weights, epochs, imgsz, batch, device,
                    resume, hours, not no_cache, workers, {"max_det": max_det})
    shown = {k.split("/")[-1]: round(v, 4) for k, v in metrics.items() if k.startswith("metrics/")}
    click.echo(f"final validation: {shown}")
    click.echo(f"wrote {Path(out) / 'best.pt'} and {Path(out) / 'best.onnx'}")


@click.command(context_settings=CTX)
@click.option("--model", required=True, help="face model (.onnx or .pt), or 'haar'")
@click.option("--data", required=True, type=click.Path(),
              help="fd-prep dataset (folder or data.yaml), or a WIDER FACE root")
@click.option("--split", default="val", show_default=True, help="WIDER FACE split to evaluate")
@click.option("--imgsz", type=int, help="detector input size [the model's]")
@click.option("--conf", default=0.35, show_default=True, help="operating confidence for P/R")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="result file [fd_eval_<model>.json in the current folder]")
@click.option("--plot", type=click.Path(dir_okay=False), help="PR-curve PNG [beside the JSON]")
@click.option("--no-progress", is_flag=True)
@user_errors(FerError)
def eval_cmd(model, data, split, imgsz, conf, json_path, plot, no_progress):
    """AP50, AP50-95 and AP by face size for a face detector."""
    from fd.evaluate import (
        evaluate,
        format_table,
        plot_pr,
        widerface_val_items,
        write_json,
        yolo_val_items,
    )
    from pipeline.detectors import make_detector

    root = Path(data)
    if not root.exists():
        raise FdError(f"{root} does not exist")
    if model == "haar":
        detector = make_detector("haar", None)
    else:
        detector = make_detector("yolo", Path(model), imgsz, conf=0.001, iou=0.6, max_det=1000)
    if root.is_dir() and (root / "wider_face_split").is_dir():
        items = widerface_val_items(root, split)
    else:
        items = yolo_val_items(root / "data.yaml" if (root / "data.yaml").is_file() else root)
    result = evaluate(detector, items, conf, progress=not no_progress)
    result.update(model=model, data=str(root.resolve()))
    click.echo(format_table(result))
    target = Path(json_path) if json_path else Path(f"fd_eval_{Path(model).stem}.json")
    write_json(result, target)
    png = Path(plot) if plot else target.with_suffix(".png")
    plot_pr(result, png, f"{Path(model).name} on {root.name}")
    click.echo(f"wrote {target} and {png}")
    click.echo(json.dumps({"AP50": round(result["AP50"], 4),
                           "AP50_95": round(result["AP50_95"], 4)}))
