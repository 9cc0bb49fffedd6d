"""The fer-serve HTTP app: one loaded `FacePipeline` behind a small JSON API and a browser page.

`create_app(pipe, settings)` builds it around a pipeline already loaded (tests, one worker);
`app_from_environment()` is the factory each uvicorn worker calls to load its own.

Every refusal is a 4xx whose JSON body says what to do ({"error": code, "message": line}); no
path a client sends is ever opened here (a file name is only echoed back as the record's source).
"""

from __future__ import annotations

import logging
import threading
from importlib.resources import files
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated

import cv2
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.config import LIMITS, PipelineConfig
from pipeline.draw import COLOURS, draw_faces, faces_at_scale
from pipeline.errors import ImageTooLarge, InputError
from pipeline.records import FrameResult
from pipeline.run import FacePipeline
from pipeline.serve.limits import BodyLimit, BodyTooLarge
from pipeline.serve.options import (
    DESCRIPTIONS,
    DETECTOR_OPTIONS,
    PIPELINE_OPTIONS,
    NotApplicable,
    bounds,
    tuned,
)
from pipeline.serve.schema import BatchRecord, ErrorRecord, PhotoRecord
from pipeline.serve.settings import ServeSettings, from_environment
from pipeline.sources import MAX_SIDE, decode_image

log = logging.getLogger("fer-serve")

#: The page and what it loads, read once at start-up and served from memory by name.
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
#: Content types taken as image bytes; the bytes themselves decide the format.
IMAGE_TYPES = ("image/", "application/octet-stream")
HOW_TO_SEND = ("send the image as a multipart file field (curl -F file=@photo.jpg) or as the raw "
               "body with its type (curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg')")
JPEG_QUALITY = 90
DETECTOR_KINDS = {"YoloOnnxDetector": "yolo", "YoloTorchDetector": "yolo", "HaarDetector": "haar",
                  "WholeImage": "whole"}


class ApiError(Exception):
    """A refusal: its status, a stable code and one line for a person."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


ERRORS = {code: {"model": ErrorRecord, "description": text} for code, text in (
    (400, "empty body, no image part, an unknown query parameter, a malformed multipart body"),
    (413, "an image over the byte or pixel limit"),
    (415, "a content type that is not an image"),
    (422, "not a readable image (corrupt, truncated, unsupported), or an option out of range"))}


def _option(name: str):
    return Query(description=DESCRIPTIONS[name], **(bounds(name) if name in LIMITS else {}))


def analysis_options(
        conf: Annotated[float | None, _option("conf")] = None,
        iou: Annotated[float | None, _option("iou")] = None,
        imgsz: Annotated[int | None, _option("imgsz")] = None,
        max_det: Annotated[int | None, _option("max_det")] = None,
        margin: Annotated[float | None, _option("margin")] = None,
        min_face: Annotated[int | None, _option("min_face")] = None,
        tta: Annotated[bool | None, _option("tta")] = None) -> dict[str, object]:
    """The per-request model options, range-checked by FastAPI from the CLI's own limits."""
    return {"conf": conf, "iou": iou, "imgsz": imgsz, "max_det": max_det, "margin": margin,
            "min_face": min_face, "tta": tta}


def _known_parameters(*names: str):
    """A dependency refusing any query parameter not in `names` (a typo like ?cof=0.5 would
    otherwise be ignored without a word)."""
    known = frozenset(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ApiError(400, "unknown_parameter",
                           f"unknown query parameter {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(known))}")
    return Depends(check)


OPTION_NAMES = (*DETECTOR_OPTIONS, *PIPELINE_OPTIONS)


def _source_name(filename: str | None) -> str:
    """A client's file name reduced to its last part: a label for the record, never a path."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name.strip()
    return name[:255] or "upload"


def _hex(bgr: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*reversed(bgr))


class Analyser:
    """Decodes and analyses one upload at a time per `concurrency` slot, off the event loop."""

    def __init__(self, pipe: FacePipeline, settings: ServeSettings):
        self.pipe, self.settings = pipe, settings
        self.slots = threading.BoundedSemaphore(settings.concurrency)

    def analyse(self, name: str, data: bytes, options: dict[str, object]):
        """(decoded frame, record) for one image, or `ApiError` for a bad one."""
        if not data:
            raise ApiError(400, "empty_body", f"{name}: the image is empty (0 bytes); {HOW_TO_SEND}")
        if len(data) > self.settings.max_bytes:
            raise ApiError(413, "too_large", f"{name}: {len(data)} bytes is over this server's "
                                             f"limit of {self.settings.max_bytes} bytes; send a "
                                             "smaller or more compressed image")
        try:
            pipe = tuned(self.pipe, options)
        except NotApplicable as e:
            raise ApiError(422, "bad_parameter", str(e)) from None
        try:
            with self.slots:
                frame = decode_image(data, name, MAX_SIDE, self.settings.max_pixels,
                                     require_header=True)
                return frame, pipe.analyze_frame(frame)
        except ImageTooLarge as e:
            raise ApiError(413, "too_many_pixels", str(e)) from None
        except InputError as e:
            raise ApiError(422, "not_an_image", f"{e}; send a JPEG, PNG, WebP, BMP or TIFF "
                                                "image") from None


def _timing(result: FrameResult) -> str:
    return ", ".join(f"{k};dur={v:.1f}" for k, v in result.timings.items())


def annotated_jpeg(image, result: FrameResult, scale: float) -> bytes:
    """The decoded image with its boxes and labels; boxes are in original pixels, so a photo
    decoded reduced gets them scaled down to the pixels it has."""
    ok, data = cv2.imencode(".jpg", draw_faces(image, faces_at_scale(result.faces, scale)),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


async def _uploads(request: Request, settings: ServeSettings, many: bool) -> list[tuple[str, bytes]]:
    """(name, bytes) for each image of the request: multipart file parts, or the raw body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        try:
            form = await request.form(max_files=settings.max_batch, max_fields=16)
        except StarletteHTTPException as e:
            if "too many files" not in str(e.detail).lower():
                raise
            raise ApiError(400, "too_many_images", f"at most {settings.max_batch} images in one "
                                                   "batch; send the rest in another") from None
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            raise ApiError(400, "no_image", f"the multipart body has no file part; {HOW_TO_SEND}")
        if len(uploads) > 1 and not many:
            raise ApiError(400, "too_many_images", f"{len(uploads)} images sent; /v1/analyze takes "
                                                   "one, /v1/analyze/batch several")
        images = []
        for upload in uploads:
            name = _source_name(upload.filename)
            kind = (upload.content_type or "application/octet-stream").lower()
            if not kind.startswith(IMAGE_TYPES):
                raise ApiError(415, "wrong_content_type",
                               f"{name}: content type {kind} is not an image; send image/jpeg, "
                               "image/png, ... (or application/octet-stream)")
            images.append((name, await upload.read(settings.max_bytes + 1)))
        return images
    if media.startswith(IMAGE_TYPES):
        if many:
            raise ApiError(415, "wrong_content_type", "a batch is multipart/form-data with one file "
                                                      "part per image (curl -F files=@a.jpg -F "
                                                      "files=@b.jpg); POST one raw image to "
                                                      "/v1/analyze")
        return [("upload", await request.body())]
    raise ApiError(415, "wrong_content_type", f"content type {media or '(none)'} is not an image; "
                                              f"{HOW_TO_SEND}")


def create_app(pipe: FacePipeline, settings: ServeSettings | None = None,
               cfg: PipelineConfig | None = None) -> FastAPI:
    """The app around a loaded pipeline; `cfg` (what it was loaded from) only feeds /v1/models."""
    settings = settings or ServeSettings()
    cfg = cfg or PipelineConfig()
    analyser = Analyser(pipe, settings)
    static = {name: (files("pipeline.serve").joinpath("static", name).read_bytes(), kind)
              for name, kind in STATIC.items()}
    app = FastAPI(title="fer-serve", version="1", docs_url="/docs", redoc_url=None,
                  description="Faces and their expressions in photos: the records `fer-detect "
                              "--json` writes, over HTTP.")
    single_limit = settings.max_bytes + 64 * 1024  # room for a multipart envelope
    app.add_middleware(BodyLimit, limit=lambda path: settings.max_body if path.endswith("/batch")
                       else single_limit)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.code, e.message)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, e: BodyTooLarge) -> JSONResponse:
        return _error(413, "too_large", f"the upload is over this server's limit of "
                                        f"{settings.max_bytes} bytes an image (a batch: "
                                        f"{settings.max_batch} images); send a smaller image")

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        name = str(first["loc"][-1])
        given = first.get("input")
        if name in LIMITS:
            message = f"{name} must be {LIMITS[name].describe()}, got {given!r}"
        else:
            message = f"{name}: {first['msg']}, got {given!r}"
        return _error(422, "bad_parameter", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = e.detail if isinstance(e.detail, str) else "bad request"
        if e.status_code == 400:  # Starlette's multipart parser
            detail = f"malformed multipart body ({detail}); {HOW_TO_SEND}"
        elif e.status_code == 404:
            detail = f"no such page {request.url.path}; see /docs for the API"
        elif e.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
        return _error(e.status_code, codes.get(e.status_code, "bad_request"), detail)

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception) -> JSONResponse:
        log.exception("fer-serve: %s %s failed", request.method, request.url.path)
        return _error(500, "internal_error", "the server failed on this request (a bug, not your "
                                             "input); its log has the details")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        content, kind = static["index.html"]
        return Response(content, media_type=kind)

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in static:
            raise ApiError(404, "not_found", f"no such file {name}; the page is at /")
        content, kind = static[name]
        return Response(content, media_type=kind)

    @app.get("/health", summary="Is the server up with its models loaded")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models", summary="The models, their labels and metadata, and this server's limits")
    def models() -> dict:
        detector = pipe.detector
        classifier = pipe.classifier
        meta = classifier.meta
        from pipeline.models import default_face_model

        face_model = cfg.fd_model or (default_face_model() if cfg.detector in ("auto", "yolo")
                                      else None)
        return {
            "detector": {"kind": DETECTOR_KINDS.get(type(detector).__name__, type(detector).__name__),
                         "model": PurePosixPath(str(face_model)).name if hasattr(
                             detector, "imgsz") and face_model else None,
                         **{k: getattr(detector, k, None) for k in ("imgsz", "zoom_out", "conf", "iou",
                                                                   "max_det")}},
            "classifier": {"model": classifier.path.name, "labels": list(classifier.labels),
                           "input": meta.get("input"), "tta_flip": classifier.tta_flip,
                           "validation": meta.get("validation")},
            "pipeline": {"margin": pipe.margin, "min_face": pipe.min_face, "tta": pipe.tta},
            "colours": {label: _hex(COLOURS.get(label, (255, 255, 255)))
                        for label in classifier.labels},
            "limits": {"max_bytes": settings.max_bytes, "max_pixels": settings.max_pixels,
                       "max_batch": settings.max_batch},
            "options": {name: DESCRIPTIONS[name] for name in OPTION_NAMES},
        }

    body_doc = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string",
                                                                   "format": "binary"}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}}}}}

    @app.post("/v1/analyze", summary="Every face in one image and its expression",
              dependencies=[_known_parameters(*OPTION_NAMES, "annotate")],
              responses={200: {"model": PhotoRecord, "content": {"image/jpeg": {}},
                               "description": "the record fer-detect --json writes for a photo; "
                                              "with annotate=true, a JPEG with the drawing"},
                         **ERRORS},
              openapi_extra=body_doc)
    async def analyze(request: Request,
                      options: Annotated[dict, Depends(analysis_options)],
                      annotate: Annotated[bool, Query(description="return the image with boxes "
                                                                  "and labels as JPEG")] = False
                      ) -> Response:
        [(name, data)] = await _uploads(request, settings, many=False)
        frame, result = await run_in_threadpool(analyser.analyse, name, data, options)
        headers = {"Server-Timing": _timing(result)}
        if annotate:
            jpeg = await run_in_threadpool(annotated_jpeg, frame.image, result, frame.scale)
            return Response(jpeg, media_type="image/jpeg", headers=headers)
        return JSONResponse(result.to_json(), headers=headers)

    batch_doc = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["files"], "properties": {"files": {
            "type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}

    @app.post("/v1/analyze/batch", summary="Several images in one request",
              dependencies=[_known_parameters(*OPTION_NAMES)],
              responses={200: {"model": BatchRecord}, **ERRORS}, openapi_extra=batch_doc)
    async def analyze_batch(request: Request,
                            options: Annotated[dict, Depends(analysis_options)]) -> JSONResponse:
        results, failed = [], 0
        for name, data in await _uploads(request, settings, many=True):
            try:
                _, result = await run_in_threadpool(analyser.analyse, name, data, options)
                results.append(result.to_json())
            except ApiError as e:  # one bad image never loses the others' records
                if e.code == "bad_parameter":
                    raise
                failed += 1
                results.append({"source": name, "error": e.code, "message": e.message})
        return JSONResponse({"results": results, "analysed": len(results) - failed,
                             "failed": failed})

    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process: the models load here, once per worker."""
    cfg, settings = from_environment()
    return create_app(FacePipeline.from_config(cfg), settings, cfg)
