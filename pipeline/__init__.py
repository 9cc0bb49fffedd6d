"""fer-detect's engine: every face in photos, videos and cameras, boxed and classified.

    from pipeline import FacePipeline, analyze_paths
    for result in analyze_paths(["photo.jpg"]):
        print(result.to_json())

The names are imported on first use, so `fer-detect` (pipeline.cli) can check that the `fer`
package Python finds is this project's before anything imports it (pipeline/fer_package.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.records import Face, FrameResult
    from pipeline.run import FacePipeline, analyze_paths

_WHERE = {"PipelineConfig": "pipeline.config", "Face": "pipeline.records",
          "FrameResult": "pipeline.records", "FacePipeline": "pipeline.run",
          "analyze_paths": "pipeline.run"}
__all__ = ["Face", "FacePipeline", "FrameResult", "PipelineConfig", "analyze_paths"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    from pipeline.fer_package import require_our_fer

    require_our_fer()
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
