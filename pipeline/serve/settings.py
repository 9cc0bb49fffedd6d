"""What a fer-serve process is allowed to accept, fixed at start-up and shared with its workers."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from pipeline.config import PipelineConfig, check_config

#: The environment variable that carries the settings to uvicorn's worker processes, which
#: import the app factory by name and so cannot be handed Python objects.
ENV = "FER_SERVE_SETTINGS"
MB = 1_000_000


@dataclass(frozen=True)
class ServeSettings:
    # one uploaded image, in bytes: bounds memory and upload time
    max_bytes: int = 20 * MB
    # pixels an image may take once decoded (huge JPEGs are decoded at 1/2-1/8 scale first):
    # a 1 kB PNG can declare 100000x100000 pixels, a decompression bomb
    max_pixels: int = 40 * MB
    max_batch: int = 16  # images in one /v1/analyze/batch request
    # origins allowed to call the API from other pages; empty: CORS off (same-origin only)
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    # images analysed at once per worker: the models already use every core for one image
    concurrency: int = 1

    @property
    def max_body(self) -> int:
        """A batch request's whole body: its images plus room for the multipart framing."""
        return self.max_bytes * self.max_batch + 64 * 1024


def to_environment(cfg: PipelineConfig, settings: ServeSettings) -> None:
    os.environ[ENV] = json.dumps({"pipeline": dataclasses.asdict(cfg),
                                  "serve": dataclasses.asdict(settings)})


def from_environment() -> tuple[PipelineConfig, ServeSettings]:
    """What `to_environment` stored; a worker started without it gets the defaults."""
    stored = json.loads(os.environ.get(ENV) or "{}")
    serve = stored.get("serve", {})
    serve["cors_origins"] = tuple(serve.get("cors_origins", ()))
    return check_config(PipelineConfig(**stored.get("pipeline", {}))), ServeSettings(**serve)
