"""Ultralytics with every online feature off. The one place these settings live: fd-train,
fd-eval and the pipeline's PyTorch back end all call `offline_ultralytics()` before importing it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base) / "fer-detect" / "ultralytics"


def offline_ultralytics(threads: int | None = None):
    """Import ultralytics offline: no update checks, no auto-install, no font download."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    cfg = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir())))
    font = cfg / "Ultralytics" / "Arial.ttf"
    if not font.exists():  # ultralytics' check_font downloads Arial.ttf otherwise
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dejavu, font)
    import torch
    import torchvision  # noqa: F401  (before tensorflow anywhere: see README, triton)
    import ultralytics
    import ultralytics.utils
    import ultralytics.utils.torch_utils

    # ultralytics uses cpu_count - 1 threads (1 on a 2-core machine), exports that as
    # OMP_NUM_THREADS and resets torch to it in select_device() before every CPU run; all cores
    # train ~1.5x faster there (measured).
    n = threads or os.cpu_count() or 1
    ultralytics.utils.NUM_THREADS = ultralytics.utils.torch_utils.NUM_THREADS = n
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    return ultralytics
