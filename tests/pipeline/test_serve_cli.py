"""fer-serve's command: one-line refusals before anything listens, and a real multi-worker server
whose workers load their own models from the settings handed to them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.serve.cli import main  # noqa: E402
from pipeline.serve.settings import ServeSettings, from_environment, to_environment  # noqa: E402
from tests import fixtures  # noqa: E402
from tests.conftest import ROOT  # noqa: E402


@pytest.mark.parametrize("args,says,code", [
    (["--port", "70000"], "--port", 2),
    (["--conf", "5"], "--conf", 2),
    (["--workers", "0"], "--workers", 2),
    (["--max-mb", "0"], "--max-mb", 2),
    (["--fer-model", "no/such/model.onnx"], "no/such/model.onnx", 1),
])
def test_bad_options_are_one_line(args, says, code):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and says in lines[0], result.output


def test_without_the_serve_extra_it_says_which_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if never installed
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: fer-serve needs the Python package 'uvicorn', which "
                                     "only the serve extra installs: pip install "
                                     "'fer-detect[serve]'")


def test_a_bad_config_file_is_refused(tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("conff: 0.5\n")
    result = CliRunner().invoke(main, ["--config", str(config)])
    assert result.exit_code == 2 and "unknown setting 'conff'" in result.output


def test_settings_reach_the_workers(monkeypatch):
    monkeypatch.delenv("FER_SERVE_SETTINGS", raising=False)
    cfg = PipelineConfig(conf=0.6, min_face=0, imgsz=320)
    settings = ServeSettings(max_bytes=1234, max_pixels=5678, max_batch=3, cors_origins=("http://a",))
    to_environment(cfg, settings)
    assert from_environment() == (cfg, settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_two_workers_serve_the_same_records_and_stop_on_ctrl_c():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "pipeline.serve.cli", "--port", str(port),
                               "--workers", "2", "--quiet", "--min-face", "0"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "fer-serve did not answer /health"
            try:
                if request(port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        image = fixtures.astronaut_path().read_bytes()
        records = [request(port, "POST", "/v1/analyze", image, {"Content-Type": "image/png"})
                   for _ in range(4)]
        assert {status for status, _ in records} == {200}
        bodies = {body for _, body in records}
        assert len(bodies) == 1  # every worker gives the same record
        record = json.loads(bodies.pop())
        assert record["source"] == "upload" and record["faces"][0]["emotion"]
        status, body = request(port, "GET", "/v1/models")
        assert json.loads(body)["pipeline"]["min_face"] == 0  # the flag reached the workers
        status, body = request(port, "POST", "/v1/analyze?conf=3", image, {"Content-Type": "image/png"})
        assert status == 422 and json.loads(body)["error"] == "bad_parameter"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    output = server.stdout.read().decode()
    assert code == 0, output[-2000:]
    assert "Traceback" not in output
