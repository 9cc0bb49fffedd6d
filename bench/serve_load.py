"""fer-serve under load on loopback, against the same photos through FacePipeline directly.

Starts `fer-serve --workers N` on a free loopback port, sends a bounded number of real photos
(examples/ and, when present, WIDER FACE images from the shared data) from concurrent clients,
stops it, then analyses the same photos in N plain processes running FacePipeline (decode,
analyse, JSON: the server's work without HTTP). Prints throughput, p50/p99 latency, errors and
the ratio of the two throughputs.

    python bench/serve_load.py [--workers 1] [--clients 16] [--requests 200] [--photos 40]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDER = Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data")) / "widerface"


def photos(limit: int) -> list[tuple[str, bytes]]:
    """(name, bytes): the example photos, then WIDER FACE images in a fixed order."""
    paths = sorted((ROOT / "examples").glob("*.png")) + sorted((ROOT / "examples").glob("*.jpg"))
    paths += sorted(WIDER.rglob("*.jpg"))[:max(0, limit - len(paths))] if WIDER.is_dir() else []
    return [(p.name, p.read_bytes()) for p in paths[:limit]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn: http.client.HTTPConnection, data: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/v1/analyze", body=data, headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    return response.status, response.read()


def start_server(workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "pipeline.serve.cli", "--port", str(port),
                               "--workers", str(workers), "--quiet"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"fer-serve exited with {server.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit("fer-serve did not answer /health in 300 s")


def load(port: int, images: list[tuple[str, bytes]], clients: int, requests: int
         ) -> tuple[float, list[float], int, dict]:
    """Wall seconds, per-request latencies, error count and a sample of error bodies."""
    work: queue.Queue[int] = queue.Queue()
    for i in range(requests):
        work.put(i)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                break
            t = time.perf_counter()
            try:
                status, body = post(conn, images[i % len(images)][1])
                bad = None if status == 200 else f"{status} {body[:120]!r}"
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                bad = type(e).__name__
            with lock:
                latencies.append(time.perf_counter() - t)
                if bad:
                    errors[bad] = errors.get(bad, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0, latencies, sum(errors.values()), errors


_PIPE = None


def _load_pipeline() -> None:
    global _PIPE
    from pipeline.run import FacePipeline

    _PIPE = FacePipeline.from_config()


def _analyse(item: tuple[str, bytes]) -> int:
    """The server's work for one photo, without HTTP: decode, analyse, the JSON record."""
    from pipeline.sources import decode_image

    name, data = item
    return len(json.dumps(_PIPE.analyze_frame(decode_image(data, name)).to_json()))


def direct(images: list[tuple[str, bytes]], workers: int, requests: int) -> float:
    """Wall seconds for `requests` photos through FacePipeline in `workers` processes."""
    items = [images[i % len(images)] for i in range(requests)]
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_load_pipeline) as pool:
        pool.map(_analyse, items[:workers * 2], chunksize=1)  # every process warm
        t0 = time.perf_counter()
        pool.map(_analyse, items, chunksize=1)
        return time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--photos", type=int, default=40, help="distinct photos sent in turn")
    args = parser.parse_args()
    images = photos(args.photos)
    mean_kb = statistics.mean(len(d) for _, d in images) / 1e3
    print(f"{len(images)} photos ({mean_kb:.0f} kB mean), {args.requests} requests, "
          f"{args.clients} clients, {args.workers} worker(s), {os.cpu_count()} CPUs")

    server, port = start_server(args.workers)
    try:
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for _, data in images[:args.workers * 2]:
            post(warm, data)
        warm.close()
        wall, latencies, errors, kinds = load(port, images, args.clients, args.requests)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    served = args.requests / wall
    print(f"fer-serve: {served:.2f} requests/s, latency p50 {percentile(latencies, 50):.2f} s, "
          f"p99 {percentile(latencies, 99):.2f} s, errors {errors}")
    for kind, n in kinds.items():
        print(f"  {n} x {kind}")

    wall_direct = direct(images, args.workers, args.requests)
    plain = args.requests / wall_direct
    print(f"FacePipeline in {args.workers} process(es): {plain:.2f} photos/s")
    print(f"fer-serve / direct throughput: {served / plain:.2f}")


if __name__ == "__main__":
    main()
