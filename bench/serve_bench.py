"""Serving under gunicorn (`impexmod serve`): feed 304s against a bare Flask route under the
same server settings, full downloads (by sendfile), and 200 concurrent pollers' latencies.

    python bench/serve_bench.py --products 5000

One SQLite shop in a temporary instance folder, one native XML exporter run once. Two servers
are started one after the other with the same settings (impexmod.serving: gthread workers,
``--workers`` processes x ``--threads`` threads): `impexmod serve`, and the same gunicorn
application class serving a bare Flask app whose one route answers 304 with an ETag (what a
conditional GET cannot avoid: the WSGI server and Flask). The load comes from one asyncio
client process on keep-alive connections (stdlib only; it shares the machine's cores with the
server, the same for both servers).

- *304s*: ``--connections`` clients in a closed loop (each sends its next request as soon as
  it has its answer) with ``If-None-Match``, for ``--seconds``: requests per second.
- *pollers*: 200 clients in a closed loop on conditional GETs: p50, p99 and max latency.
- *full downloads*: 4 clients downloading the whole (uncompressed) feed: MB/s; with strace
  installed, the worker's ``sendfile`` calls are counted during it (the proof that the bytes go
  from the file to the socket without passing through Python).

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(instance: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        IMPEXMOD_INSTANCE_PATH=str(instance),
        IMPEXMOD_SHOP_ID="bench",
        PYTHONPATH=str(ROOT),
    )
    env.pop("IMPEXMOD_REDIS_URL", None)
    env.pop("IMPEXMOD_DATABASE_URL", None)
    return env


def setup(instance: Path, products: int, port: int) -> dict:
    """Seed the shop, run one native XML exporter; its feed's path and ETag."""
    os.environ.update(_env(instance))
    os.environ["IMPEXMOD_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    from flask_migrate import upgrade

    from impexmod import create_app
    from impexmod.dispatch import jobs
    from impexmod.export import definition
    from impexmod.extensions import db
    from impexmod.factories.seed import seed_catalog
    from impexmod.runs.feedstore import get_store
    from impexmod.runs.tokens import feed_url

    app = create_app()
    with app.app_context():
        upgrade()
        seed_catalog(db.engine, products, seed=1)
        task = definition.create_exporter("Bench feed", "products", "xml", schedule="none")
        run = jobs.start_run(task, inline=True)
        assert run.status == "succeeded", (run.status, run.error)
        current = get_store().current(task.id)
        url = feed_url(task)
        size = get_store().stat(task.id, current.name).size
    path = url.split(f":{port}", 1)[1]
    return {"path": path, "etag": current.etag, "size": size}


def bare_app():
    """A Flask app whose one route answers a conditional GET with 304 (or 200 without it)."""
    from flask import Flask, Response, request

    app = Flask("bare")

    @app.get("/feeds/<token>/<name>")
    def feed(token, name):
        etag = '"bare"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response("ok", headers={"ETag": etag})

    return app


def _start(kind: str, instance: Path, port: int, workers: int, threads: int):
    factory = "bare_app" if kind == "bare" else "create_app"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from impexmod import serving; "
        "from bench.serve_bench import bare_app; from impexmod import create_app; "
        f"serving.serve({factory}, port={port}, workers={workers}, threads={threads})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=_env(instance),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(1.5)  # every worker booted
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start: {proc.stderr.read().decode()[-2000:]}")


def _stop(proc) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def _client(port, request: bytes, until: float, latencies: list, counts: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            remaining = length if status != 304 else 0
            while remaining:
                chunk = await reader.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ConnectionError("closed mid-body")
                remaining -= len(chunk)
            latencies.append(time.perf_counter() - started)
            counts[status] = counts.get(status, 0) + 1
            counts["bytes"] = counts.get("bytes", 0) + length
    finally:
        writer.close()


def load(port: int, path: str, etag: str | None, connections: int, seconds: float) -> dict:
    """``connections`` keep-alive clients in a closed loop for ``seconds``."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    counts: dict = {}

    async def main():
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(port, request, until, latencies, counts) for _ in range(connections))
        )

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
        "requests": len(latencies),
        "counts": {str(k): v for k, v in counts.items()},
        "mb_s": counts.get("bytes", 0) / elapsed / 1e6,
    }


def _workers_of(proc) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def downloads(proc, port: int, path: str, seconds: float) -> dict:
    """4 clients downloading the whole feed; the workers' sendfile calls, with strace."""
    tracers = []
    strace = shutil.which("strace")
    if strace:
        for pid in _workers_of(proc):
            tracers.append(
                subprocess.Popen(
                    [strace, "-f", "-c", "-e", "trace=sendfile", "-p", str(pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        time.sleep(1)
    result = load(port, path, None, 4, seconds)
    calls = None
    if strace:
        calls = 0
        for tracer in tracers:
            tracer.send_signal(signal.SIGINT)
            report = tracer.communicate(timeout=30)[1]
            for line in report.splitlines():
                if line.strip().endswith("sendfile"):
                    calls += int(line.split()[3])
    result["sendfile_calls"] = calls
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="impexmod-serve-bench-"))
    port = _free_port()
    try:
        feed = setup(instance, args.products, port)
        settings = (instance, port, args.workers, args.threads)
        bare = _start("bare", *settings)
        try:
            load(port, "/feeds/t/x", '"bare"', args.connections, 2)  # warm up
            bare_304 = load(port, "/feeds/t/x", '"bare"', args.connections, args.seconds)
        finally:
            _stop(bare)
        served = _start("impexmod", *settings)
        try:
            load(port, feed["path"], feed["etag"], args.connections, 2)
            feed_304 = load(port, feed["path"], feed["etag"], args.connections, args.seconds)
            pollers = load(port, feed["path"], feed["etag"], args.pollers, args.seconds)
            full = downloads(served, port, feed["path"], args.seconds)
        finally:
            _stop(served)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    assert feed_304["counts"].get("304") == feed_304["requests"], feed_304["counts"]
    assert pollers["counts"].get("304") == pollers["requests"], pollers["counts"]
    print(json.dumps({"bare": bare_304, "feed": feed_304, "pollers": pollers, "full": full}))
    print(
        f"\nServing, gunicorn gthread, {args.workers} workers x {args.threads} threads, "
        f"{args.products:,} products (feed {feed['size'] / 1e6:.1f} MB), SQLite, local store\n"
    )
    print("| Measure | Result | Floor (same run) |")
    print("|---|---|---|")
    ratio = feed_304["rps"] / bare_304["rps"]
    print(
        f"| feed 304s, {args.connections} keep-alive clients | {feed_304['rps']:,.0f} req/s |"
        f" bare Flask route 304: {bare_304['rps']:,.0f} req/s ({ratio:.0%}) |"
    )
    print(
        f"| {args.pollers} concurrent pollers (304s) | p50 {pollers['p50_ms']:.1f} ms,"
        f" p99 {pollers['p99_ms']:.1f} ms, max {pollers['max_ms']:.1f} ms,"
        f" {pollers['rps']:,.0f} req/s | - |"
    )
    calls = full["sendfile_calls"]
    said = "strace not installed" if calls is None else f"{calls:,} sendfile calls"
    print(
        f"| full downloads, 4 clients | {full['mb_s']:,.0f} MB/s, {full['rps']:,.1f} req/s"
        f" ({said}) | - |"
    )


if __name__ == "__main__":
    main()
