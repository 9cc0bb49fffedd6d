"""fer-serve: the pipeline as an HTTP API and a browser page, on uvicorn.

Exit status: 0 stopped (Ctrl-C); 2 a bad option or config value; 1 the models cannot load or
the [serve] extra is missing.
"""

from __future__ import annotations

import ipaddress

import click

from fer.cli import COMMAND
from pipeline.cli import _limited as limited  # also checks that 'fer' is this project's
from pipeline.config import MIN_FACE
from pipeline.errors import ConfigError
from pipeline.serve.settings import MB, ServeSettings


def _missing_serve_extra(error: ModuleNotFoundError) -> str:
    return (f"fer-serve needs the Python package '{error.name}', which only the serve extra "
            "installs: pip install 'fer-detect[serve]'")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def load(cfg_path: str | None, overrides: dict):
    """The checked config and its loaded pipeline, or one clear line (exit 2 or 1)."""
    from fer.cli import OptionError
    from fer.errors import FerError
    from pipeline.config import load_config
    from pipeline.run import FacePipeline

    try:
        cfg = load_config(cfg_path, overrides)
    except ConfigError as e:
        raise OptionError(str(e)) from None
    try:
        return cfg, FacePipeline.from_config(cfg)
    except FerError as e:
        raise click.ClickException(str(e)) from None
    except ModuleNotFoundError as e:  # a .pt or .keras model on the core install
        raise click.ClickException(f"{e.name} is needed for this model, and only the train extra "
                                   "installs it; use .onnx models") from None


def serve(host: str, port: int, workers: int, cfg, pipe, settings: ServeSettings,
          quiet: bool = False) -> None:
    """Run uvicorn until Ctrl-C. One worker serves the pipeline loaded here; more workers each
    load their own from the settings handed over in the environment."""
    import uvicorn

    from pipeline.serve.app import create_app
    from pipeline.serve.settings import to_environment

    options = {"host": host, "port": port, "log_level": "warning" if quiet else "info",
               "access_log": not quiet, "server_header": False}
    if workers == 1:
        uvicorn.run(create_app(pipe, settings, cfg), **options)
        return
    to_environment(cfg, settings)
    uvicorn.run("pipeline.serve.app:app_from_environment", factory=True, workers=workers,
                **options)


@click.command(**COMMAND)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (loopback: this machine only; 0.0.0.0: every network)")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="processes, each with its own copy of the models")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML with pipeline settings, as fer-detect's (flags override it)")
@click.option("--whole-image", is_flag=True, help="each image is already one face crop: classify only")
@click.option("--detector", type=click.Choice(["auto", "yolo", "haar"]),
              help="face detector [auto: YOLO when a face model is installed or given, else Haar]")
@click.option("--fd-model", type=click.Path(dir_okay=False), help="face model (.onnx or .pt)")
@click.option("--fer-model", type=click.Path(dir_okay=False), help="expression model (.onnx or .keras)")
@click.option("--imgsz", type=limited("imgsz"),
              help="detector input size (long side) [each image at its own size, 160-1280]")
@click.option("--zoom-out/--no-zoom-out", default=None,
              help="run the detector again at half size to find faces that fill the frame [on]")
@click.option("--conf", type=limited("conf"), help="detector confidence threshold [0.35]")
@click.option("--iou", type=limited("iou"), help="detector NMS IoU threshold [0.5]")
@click.option("--max-det", type=limited("max_det"), help="at most N faces per image [1000]")
@click.option("--margin", type=limited("margin"), help="grow face boxes by this fraction [0]")
@click.option("--min-face", type=limited("min_face"),
              help=f"faces under N pixels get no emotion [{MIN_FACE}]")
@click.option("--tta/--no-tta", default=None, help="mirrored test-time augmentation [model's]")
@click.option("--max-mb", type=click.FloatRange(0, 1000, min_open=True), default=20,
              show_default=True, help="largest image accepted, in megabytes")
@click.option("--max-megapixels", type=click.FloatRange(0, 1000, min_open=True), default=40,
              show_default=True, help="largest image accepted once decoded, in megapixels")
@click.option("--max-batch", type=click.IntRange(1, 256), default=16, show_default=True,
              help="most images in one /v1/analyze/batch request")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="let pages from this origin call the API (repeat for more); CORS is off without")
@click.option("--quiet", is_flag=True, help="no access log, warnings only")
def main(host, port, workers, config_path, whole_image, detector, fd_model, fer_model, imgsz, zoom_out,
         conf, iou, max_det, margin, min_face, tta, max_mb, max_megapixels, max_batch, cors_origins,
         quiet):
    """Serve face and expression analysis over HTTP, with a page for photos and the webcam.

    \b
    fer-serve                      # http://127.0.0.1:8000
    fer-serve --port 9000 --workers 2
    curl -F file=@photo.jpg http://127.0.0.1:8000/v1/analyze
    """
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: the upload parser)
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as e:
        raise click.ClickException(_missing_serve_extra(e)) from None
    settings = ServeSettings(max_bytes=round(max_mb * MB), max_pixels=round(max_megapixels * MB),
                             max_batch=max_batch, cors_origins=tuple(cors_origins))
    cfg, pipe = load(config_path, {
        "detector": "whole" if whole_image else detector, "fd_model": fd_model,
        "fer_model": fer_model, "imgsz": imgsz, "zoom_out": zoom_out, "conf": conf, "iou": iou,
        "max_det": max_det, "margin": margin, "min_face": min_face, "tta": tta})
    if not _loopback(host):
        click.echo(f"fer-serve: listening on {host}: anyone who can reach this machine can send "
                   "it images", err=True)
    click.echo(f"fer-serve: http://{host}:{port}/ (API at /docs); Ctrl-C stops", err=True)
    if workers > 1:
        pipe = None  # loaded only to refuse a bad model here; each worker loads its own
    serve(host, port, workers, cfg, pipe, settings, quiet)


if __name__ == "__main__":
    main()
