"""fer-serve's API through FastAPI's test client: the records fer-detect writes, per-request
options, the annotated JPEG, batches, and every bad input answered with a 4xx JSON error."""

from __future__ import annotations

import json
import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.run import FacePipeline  # noqa: E402
from pipeline.serve.app import create_app  # noqa: E402
from pipeline.serve.settings import ServeSettings  # noqa: E402
from tests import fixtures  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    """The shipped models, loaded once: the records are the product's own."""
    return FacePipeline.from_config(PipelineConfig())


@pytest.fixture(scope="module")
def client(pipe) -> TestClient:
    return TestClient(create_app(pipe))


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return fixtures.astronaut_path().read_bytes()


def jpeg_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def raw(client: TestClient, data: bytes, kind: str = "image/png", query: str = ""):
    return client.post(f"/v1/analyze{query}", content=data, headers={"Content-Type": kind})


def refused(response, status: int, code: str) -> str:
    """The response is the 4xx JSON error asked for; its message, for more checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    assert "Traceback" not in response.text and len(body["message"]) > 20
    return body["message"]


# --- what a client gets ---------------------------------------------------------------------------

def test_health_and_models(client, pipe):
    assert client.get("/health").json() == {"status": "ok"}
    models = client.get("/v1/models").json()
    assert models["classifier"]["labels"] == list(pipe.labels)
    assert models["classifier"]["model"] == "fer.onnx"
    assert models["detector"]["model"] == "face_yolov8n.onnx" and models["detector"]["conf"] == 0.35
    assert set(models["colours"]) == set(pipe.labels)
    assert all(c.startswith("#") and len(c) == 7 for c in models["colours"].values())
    assert models["limits"] == {"max_bytes": 20_000_000, "max_pixels": 40_000_000, "max_batch": 16}


def test_the_record_is_fer_detects_own(client, astronaut, tmp_path, monkeypatch):
    """Multipart upload and raw body both give exactly the line `fer-detect --json` writes."""
    from pipeline.cli import main

    shutil.copy(fixtures.astronaut_path(), tmp_path / "astronaut.png")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["astronaut.png", "--json", "out.jsonl"])
    assert result.exit_code == 0, result.output
    (line,) = (tmp_path / "out.jsonl").read_text().splitlines()
    expected = json.loads(line)
    assert expected["faces"] and expected["faces"][0]["emotion"]

    uploaded = client.post("/v1/analyze", files={"file": ("astronaut.png", astronaut, "image/png")})
    assert uploaded.status_code == 200 and uploaded.json() == expected
    body = raw(client, astronaut)
    assert body.status_code == 200 and body.json() == {**expected, "source": "upload"}
    assert "detect;dur=" in body.headers["server-timing"]
    # the OpenAPI page documents exactly these fields
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["PhotoRecord"]["properties"]) == set(expected)
    assert set(schemas["FaceRecord"]["properties"]) == set(expected["faces"][0])


def test_options_per_request(client, astronaut):
    plain = raw(client, astronaut).json()
    assert plain["faces"][0]["score"] < 0.99
    assert raw(client, astronaut, query="?conf=0.99").json()["faces"] == []
    small = raw(client, astronaut, query="?min_face=10000").json()["faces"]
    assert [(f["too_small"], f["emotion"], f["probabilities"]) for f in small] == [(True, None, None)]
    # imgsz 100 is rounded up to 128: still a face, found on a coarser grid
    coarse = raw(client, astronaut, query="?imgsz=100")
    assert coarse.status_code == 200 and coarse.json()["faces"][0]["box"] != plain["faces"][0]["box"]
    assert raw(client, astronaut, query="?tta=false&margin=0.2").status_code == 200
    # one request's options never stay behind for the next
    assert raw(client, astronaut).json() == plain


def test_annotate_returns_the_drawing_as_jpeg(client, astronaut):
    response = raw(client, astronaut, query="?annotate=true")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(fixtures.astronaut_path()))
    assert drawn.shape == original.shape
    x1, y1, x2, y2 = (round(v) for v in raw(client, astronaut).json()["faces"][0]["box"])
    changed = np.abs(drawn.astype(int) - original.astype(int)).sum(axis=2) > 60
    assert changed[y1:y2, x1 - 3:x1 + 4].mean() > 0.5  # the box's left edge is drawn
    assert changed[300:, 300:].mean() < 0.05  # far from the face: only JPEG noise


def test_annotate_scales_boxes_for_a_photo_decoded_reduced(client):
    """A 8192 px photo is decoded at half size: the drawing's box must land on the face."""
    face = cv2.imread(str(fixtures.astronaut_path()))
    big = cv2.resize(face, (8192, 8192), interpolation=cv2.INTER_LINEAR)
    data = jpeg_bytes(big)
    record = raw(client, data, "image/jpeg").json()
    assert (record["width"], record["height"]) == (8192, 8192)
    x1, y1, x2, y2 = record["faces"][0]["box"]
    assert 2500 < x1 < 3300 and 2000 < x2 / 1.5 < 3000
    drawn = cv2.imdecode(np.frombuffer(raw(client, data, "image/jpeg", "?annotate=true").content,
                                       np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape[:2] == (4096, 4096)
    small = cv2.resize(big, (4096, 4096), interpolation=cv2.INTER_AREA)
    changed = np.abs(drawn.astype(int) - small.astype(int)).sum(axis=2) > 60
    left = round(x1 / 2)
    assert changed[round(y1 / 2):round(y2 / 2), left - 4:left + 5].mean() > 0.5


def test_batch_keeps_the_good_records_beside_a_bad_one(client, astronaut):
    response = client.post("/v1/analyze/batch", files=[
        ("files", ("a.png", astronaut, "image/png")),
        ("files", ("broken.jpg", b"not really a jpeg", "image/jpeg")),
        ("files", ("b.jpg", jpeg_bytes(cv2.imread(str(fixtures.astronaut_path()))), "image/jpeg"))])
    assert response.status_code == 200
    body = response.json()
    assert (body["analysed"], body["failed"]) == (2, 1)
    a, broken, b = body["results"]
    assert a["source"] == "a.png" and a["faces"][0]["emotion"] == raw(
        client, astronaut).json()["faces"][0]["emotion"]
    assert broken["source"] == "broken.jpg" and broken["error"] == "not_an_image"
    assert b["source"] == "b.jpg" and len(b["faces"]) == 1


def test_a_client_path_is_never_opened(client, astronaut):
    response = client.post("/v1/analyze",
                           files={"file": ("../../../../etc/passwd", astronaut, "image/png")})
    assert response.status_code == 200
    assert response.json()["source"] == "passwd" and response.json()["width"] == 512
    refused(raw(client, b"/etc/passwd", "image/png"), 422, "not_an_image")
    refused(raw(client, str(fixtures.astronaut_path()).encode(), "image/png"), 422, "not_an_image")


def test_the_page_and_its_script_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.split("<footer>")[0]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    refused(client.get("/static/cli.py"), 404, "not_found")
    refused(client.get("/static/..%2Fcli.py"), 404, "not_found")
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


def test_cors_is_off_unless_configured(pipe):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    closed = TestClient(create_app(pipe)).options("/v1/analyze", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(create_app(pipe, ServeSettings(cors_origins=("https://example.org",))))
    answer = opened.options("/v1/analyze", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "https://example.org"


# --- every bad input: a 4xx JSON error, never a 500 -----------------------------------------------

@pytest.fixture(scope="module")
def strict(pipe) -> TestClient:
    """Small limits, so 'too large' needs no large upload."""
    return TestClient(create_app(pipe, ServeSettings(max_bytes=50_000, max_pixels=100_000,
                                                     max_batch=2)))


def test_not_an_image(client):
    refused(raw(client, b"hello, this is text"), 422, "not_an_image")
    refused(client.post("/v1/analyze", files={"file": ("x.png", b"GIF89a but no", "image/png")}),
            422, "not_an_image")
    refused(raw(client, np.random.default_rng(0).bytes(5000), "application/octet-stream"), 422,
            "not_an_image")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_truncated_image(client, ext):
    ok, data = cv2.imencode(ext, cv2.imread(str(fixtures.astronaut_path())))
    message = refused(raw(client, data.tobytes()[: len(data) // 2], "application/octet-stream"),
                      422, "not_an_image")
    assert "truncated" in message


def test_empty(client):
    refused(raw(client, b""), 400, "empty_body")
    refused(client.post("/v1/analyze", files={"file": ("a.png", b"", "image/png")}), 400,
            "empty_body")
    refused(client.post("/v1/analyze", files={"note": (None, "no file here")}), 400, "no_image")


def test_too_many_bytes(strict, astronaut):
    assert len(astronaut) > 50_000
    assert "50000 bytes" in refused(raw(strict, astronaut), 413, "too_large")
    refused(strict.post("/v1/analyze", files={"file": ("a.png", astronaut, "image/png")}), 413,
            "too_large")
    jpeg = jpeg_bytes(cv2.imread(str(fixtures.astronaut_path())))  # under the body's limit
    assert 50_000 < len(jpeg) < 100_000
    assert "50000 bytes" in refused(strict.post("/v1/analyze", files={"file": ("a.jpg", jpeg,
                                                                              "image/jpeg")}),
                                    413, "too_large")

    def chunked():  # no Content-Length: the limit holds on the stream itself
        for i in range(0, len(astronaut), 8192):
            yield astronaut[i:i + 8192]

    response = strict.post("/v1/analyze", content=chunked(), headers={"Content-Type": "image/png"})
    assert "content-length" not in response.request.headers
    refused(response, 413, "too_large")


def test_too_many_pixels(client, pipe):
    bomb = png_declaring(20000, 20000)
    assert len(bomb) < 2000
    assert "20000x20000" in refused(raw(client, bomb), 413, "too_many_pixels")
    # a real 512x512 photo against a 0.1 megapixel limit
    strict = TestClient(create_app(pipe, ServeSettings(max_pixels=100_000)))
    refused(raw(strict, jpeg_bytes(cv2.imread(str(fixtures.astronaut_path()))), "image/jpeg"), 413,
            "too_many_pixels")


@pytest.mark.parametrize("kind", ["text/plain", "application/json", "application/x-www-form-urlencoded",
                                  ""])
def test_wrong_content_type(client, astronaut, kind):
    response = client.post("/v1/analyze", content=astronaut,
                           headers={"Content-Type": kind} if kind else {})
    assert "Content-Type" in refused(response, 415, "wrong_content_type")


def test_wrong_content_type_of_a_part(client, astronaut):
    refused(client.post("/v1/analyze", files={"file": ("a.txt", astronaut, "text/plain")}), 415,
            "wrong_content_type")
    refused(client.post("/v1/analyze/batch", content=astronaut, headers={"Content-Type": "image/png"}),
            415, "wrong_content_type")


@pytest.mark.parametrize("query", ["?cof=0.5", "?conf=0.5&colour=red", "?annotate=true&file=/etc/passwd"])
def test_unknown_parameter(client, astronaut, query):
    message = refused(raw(client, astronaut, query=query), 400, "unknown_parameter")
    assert "known: annotate, conf" in message


@pytest.mark.parametrize("query,says", [
    ("?conf=1.5", "conf must be a number from 0 to 1"), ("?conf=-0.1", "conf must be"),
    ("?conf=nan", "conf must be"), ("?conf=abc", "conf must be"), ("?iou=2", "iou must be"),
    ("?imgsz=0", "imgsz must be a whole number from 1 to 4096"), ("?imgsz=5000", "imgsz must be"),
    ("?imgsz=1.5", "imgsz must be"), ("?max_det=0", "max_det must be"), ("?margin=3", "margin must be"),
    ("?min_face=-1", "min_face must be"), ("?tta=maybe", "tta"), ("?annotate=perhaps", "annotate")])
def test_out_of_range_option(client, astronaut, query, says):
    assert says in refused(raw(client, astronaut, query=query), 422, "bad_parameter")


def test_option_the_detector_cannot_take():
    haar = FacePipeline.from_config(PipelineConfig(detector="haar"))
    client = TestClient(create_app(haar, cfg=PipelineConfig(detector="haar")))
    data = fixtures.astronaut_path().read_bytes()
    assert "takes no conf" in refused(raw(client, data, query="?conf=0.5"), 422, "bad_parameter")
    assert raw(client, data, query="?min_face=0").status_code == 200


def test_batch_limits(strict, client, astronaut):
    small = jpeg_bytes(cv2.resize(cv2.imread(str(fixtures.astronaut_path())), (100, 100)))
    files = [("files", (f"{i}.jpg", small, "image/jpeg")) for i in range(3)]
    assert "at most 2 images" in refused(strict.post("/v1/analyze/batch", files=files), 400,
                                         "too_many_images")
    refused(client.post("/v1/analyze", files=files[:2]), 400, "too_many_images")
    refused(client.post("/v1/analyze/batch?annotate=true", files=files[:1]), 400, "unknown_parameter")
    refused(client.post("/v1/analyze/batch?conf=7", files=files[:1]), 422, "bad_parameter")


def test_wrong_method_and_path(client):
    refused(client.get("/v1/analyze"), 405, "method_not_allowed")
    refused(client.get("/v2/everything"), 404, "not_found")


def test_malformed_multipart(client):
    response = client.post("/v1/analyze", content=b"--x\r\nnonsense",
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert 400 <= response.status_code < 500 and response.json()["error"] in ("bad_request", "no_image")


def test_a_server_bug_is_a_json_500_without_traceback(pipe, astronaut):
    class Broken:
        labels, margin, min_face, tta = pipe.labels, 0.0, 24, None
        detector, classifier = pipe.detector, pipe.classifier

        def analyze_frame(self, frame):
            raise RuntimeError("secret internals")

    client = TestClient(create_app(Broken()), raise_server_exceptions=False)
    response = raw(client, astronaut)
    assert response.status_code == 500 and response.json()["error"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text
