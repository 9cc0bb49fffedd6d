"""fer-detect's engine: every face in photos, videos and cameras, boxed and classified.

    from pipeline import FacePipeline, analyze_paths
    for result in analyze_paths(["photo.jpg"]):
        print(result.to_json())
"""

from pipeline.config import PipelineConfig
from pipeline.records import Face, FrameResult
from pipeline.run import FacePipeline, analyze_paths

__all__ = ["Face", "FacePipeline", "FrameResult", "PipelineConfig", "analyze_paths"]
