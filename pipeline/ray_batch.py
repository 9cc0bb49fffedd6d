"""fer-detect on a Ray cluster (the [ray] extra): Ray Data feeds the inputs to a pool of actors,
each holding the models once, and the records come back in input order to one JSON Lines file,
the same lines `fer-detect --json` writes.

    from pipeline.ray_batch import analyze_with_ray
    analyze_with_ray(["photos/"], "results.jsonl", address="auto", num_actors=8)

    fer-detect photos/ --json results.jsonl --ray auto      # or --ray local, --ray ray://head:10001

Ray schedules the actors and moves the work; this module only says what one actor does. Every
node needs this package and the model files at the same paths. Ray is imported here only, so
the core install never needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.parallel import Outcome, analyse, pipeline_with_threads

#: Inputs per map_batches call: small, so a slow photo holds few others back.
BATCH_SIZE = 4


class _Analyser:
    """One Ray actor: loads the models once, then analyses batches of (kind, path) rows."""

    def __init__(self, cfg: PipelineConfig, max_frames: int | None, threads: int):
        self.cfg, self.max_frames = cfg, max_frames
        self.pipe = pipeline_with_threads(cfg, threads)  # the CPUs Ray reserved for it, no more

    def __call__(self, batch: dict) -> dict:
        outcomes = [analyse(self.pipe, self.cfg, str(kind), str(path), self.max_frames)
                    for kind, path in zip(batch["kind"], batch["path"], strict=True)]
        return {"path": [o.path for o in outcomes], "lines": [o.lines for o in outcomes],
                "said": ["\n".join(o.said) for o in outcomes],
                "failure": [o.failure or "" for o in outcomes]}


def _connect(address: str | None):
    """Ray, connected: to `address` ('local' starts one on this machine), or to the instance this
    process already joined. Returns (ray, whether this call started it)."""
    try:
        import ray
    except ModuleNotFoundError:
        raise PipelineError("--ray needs Ray: pip install 'fer-detect[ray]'") from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=None if address in (None, "local") else address,
                 include_dashboard=False, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise PipelineError(f"cannot reach the Ray cluster at {address} "
                            f"({str(e).strip().splitlines()[0][:160]})") from None
    return ray, True


def on_ray(items: list[tuple[str, str]], cfg: PipelineConfig, address: str | None,
           num_actors: int | None = None, cpus_per_actor: int = 1,
           max_frames: int | None = None, stop=None) -> Iterator[Outcome]:
    """Outcomes in input order, analysed by `num_actors` actors (default: one per CPU Ray has).
    Stops taking results once `stop` is true."""
    if not items:
        return
    ray, started = _connect(address)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the plain run's order
        context.enable_progress_bars = False  # fer-detect draws its own
        actors = num_actors or max(1, int(ray.available_resources().get("CPU", 1)) // cpus_per_actor)
        rows = ray.data.from_items([{"kind": kind, "path": path} for kind, path in items])
        results = rows.map_batches(_Analyser, fn_constructor_args=(cfg, max_frames, cpus_per_actor),
                                   batch_size=BATCH_SIZE, concurrency=actors,
                                   num_cpus=cpus_per_actor)
        for row in results.iter_rows():
            yield Outcome(path=row["path"], lines=row["lines"],
                          said=[line for line in row["said"].split("\n") if line],
                          failure=row["failure"] or None)
            if stop:
                break
    finally:
        if started:
            ray.shutdown()


def analyze_with_ray(paths: list[str], out: str | Path, cfg: PipelineConfig | None = None,
                     address: str | None = None, num_actors: int | None = None
                     ) -> tuple[int, int]:
    """Photos, folders and videos -> `out`, the JSON Lines `fer-detect --json` writes, analysed on
    Ray (`address`: None joins the instance this process started or starts a local one, 'auto'
    the cluster this machine belongs to, 'ray://head:10001' a remote one). The file is replaced
    whole when done. Bad inputs are skipped and counted, not raised: returns (processed, failed)."""
    from pipeline.config import check_config
    from pipeline.sinks import JsonlSink
    from pipeline.sources import expand_inputs

    cfg = check_config(cfg or PipelineConfig())
    sink = JsonlSink(str(out))
    done = failed = 0
    try:
        for outcome in on_ray(list(expand_inputs(list(paths))), cfg, address, num_actors):
            if outcome.lines:
                sink.write_lines(outcome.lines)
            failed += outcome.failure is not None
            done += outcome.failure is None
    except BaseException:
        sink.close(commit=False)
        raise
    sink.close()
    return done, failed
