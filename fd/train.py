"""`fd-train`: YOLOv8n fine-tuned (or trained from `yolov8n.yaml`) through ultralytics' Python API,
offline. Writes best.pt, best.onnx, the training curves and a copy of the data YAML into OUT."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from fd.errors import FdError
from fd.yolo_env import offline_ultralytics

ARCHITECTURE = "yolov8n.yaml"


def face_architecture(folder: Path) -> Path:
    """yolov8n's architecture with one class, written where ultralytics can read it offline."""
    offline_ultralytics()
    from ultralytics.utils.checks import check_yaml

    arch = yaml.safe_load(Path(check_yaml("yolov8.yaml")).read_text())
    arch["nc"] = 1
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "face-yolov8n.yaml"  # the 'n' in the name selects the nano scale
    path.write_text(yaml.safe_dump(arch, sort_keys=False))
    return path


def _check_weights(weights: str | None) -> None:
    if weights and not weights.endswith((".yaml", ".yml")) and not Path(weights).is_file():
        raise FdError(f"weights {weights} not found locally, and nothing is downloaded: pass the "
                      "path of a local .pt file, or leave --weights out to train from "
                      f"{ARCHITECTURE}")


def train(data: Path, out: Path, weights: str | None = None, epochs: int = 50, imgsz: int = 640,
          batch: int = 16, device: str | None = None, resume: bool = False,
          hours: float | None = None, cache: bool = True, workers: int = 2,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, then export best.pt to ONNX; returns ultralytics' final validation metrics."""
    out = Path(out).resolve()
    os.environ.setdefault("YOLO_VERBOSE", "True")  # epoch progress bars (inference stays quiet)
    ultralytics = offline_ultralytics()
    if resume:
        last = out / "weights" / "last.pt"
        if not last.is_file():
            raise FdError(f"nothing to resume in {out}: {last} not found")
        model = ultralytics.YOLO(str(last))
        model.train(resume=True)
    else:
        data = Path(data)
        if not data.is_file():
            raise FdError(f"data YAML {data} not found; fd-prep writes it as OUT/data.yaml")
        _check_weights(weights)
        if (out / "weights" / "last.pt").exists():
            raise FdError(f"{out} already holds a training run; pass --resume or another --out")
        source = weights or str(face_architecture(out))
        model = ultralytics.YOLO(source, task="detect")
        args = {"data": str(data.resolve()), "epochs": epochs, "imgsz": imgsz, "batch": batch,
                "device": device or ("0" if _has_cuda() else "cpu"), "project": str(out.parent),
                "name": out.name, "exist_ok": True, "workers": workers, "cache": cache,
                "plots": True, "single_cls": True, "verbose": False}
        if hours:
            args["time"] = hours
        args.update(extra or {})
        model.train(**args)
    save_dir = Path(model.trainer.save_dir)
    best = save_dir / "weights" / "best.pt"
    if not best.is_file():
        raise FdError(f"training wrote no {best}; see the log above")
    shutil.copy2(best, out / "best.pt")
    run_args = yaml.safe_load((save_dir / "args.yaml").read_text())
    shutil.copy2(run_args["data"], out / "data.yaml")
    exported = ultralytics.YOLO(str(out / "best.pt")).export(
        format="onnx", imgsz=run_args["imgsz"], simplify=True, verbose=False)
    if Path(exported).resolve() != (out / "best.onnx").resolve():
        shutil.move(exported, out / "best.onnx")
    metrics = getattr(model.trainer, "metrics", None) or {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def package_detector(weights: Path, target_dir: Path, imgsz: int,
                     name: str = "face_yolov8n") -> list[Path]:
    """Ship a trained detector: `<name>.pt` without optimizer state (half the size) and
    `<name>.onnx` exported from it with dynamic input size, `imgsz` by default."""
    ultralytics = offline_ultralytics()
    from ultralytics.utils.torch_utils import strip_optimizer

    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    pt = target_dir / f"{name}.pt"
    shutil.copyfile(weights, pt)  # not copy2: a read-only source must not make a read-only file
    strip_optimizer(str(pt))
    # dynamic height/width: `imgsz` is the default the pipeline reads from the metadata, and
    # `fer-detect --imgsz 416` can trade small-face recall for speed with the same file
    exported = Path(ultralytics.YOLO(str(pt)).export(format="onnx", imgsz=imgsz, simplify=True,
                                                      dynamic=True, verbose=False))
    onnx = target_dir / f"{name}.onnx"
    if exported.resolve() != onnx.resolve():
        shutil.move(exported, onnx)
    return [onnx, pt]
