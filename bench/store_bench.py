"""Feed store benchmark: the local store against S3 (moto's server mode on loopback, standing in
for S3/MinIO), for exporting and for serving, each beside a floor measured in the same run.

    python bench/store_bench.py --products 20000 [--requests 20]

Export: a full native XML export of N products into each store (the whole run: its gzip twin too),
beside the export floor (bench/floor.py) and, for S3, the bare upload of the same file with
boto3 (``upload_file``, the multipart transfer the store uses). Serving: full GETs, gzip GETs,
small ranges and 304s through the feed endpoint on a live loopback server, beside the floor of
reading the same bytes straight from the disk or from the bucket (boto3 ``get_object``). Each
step runs in its own process, so its peak memory (ru_maxrss) is its own: a served feed is
streamed, never held whole. Prints the figures and a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
SHOP = "bench"
NAME = "store-bench"
BUCKET = "bench-feeds"
CHUNK = 64 * 1024


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _app(instance: str, store: str, endpoint: str):
    os.environ["IMPEXMOD_INSTANCE_PATH"] = instance
    os.environ["IMPEXMOD_SHOP_ID"] = SHOP
    for name in ("IMPEXMOD_REDIS_URL", "IMPEXMOD_DATABASE_URL", "IMPEXMOD_FEED_STORE"):
        os.environ.pop(name, None)
    from impexmod import create_app

    # Each run writes its gzip twin, as by default (on S3 from the scratch file it uploaded).
    config = {"GZIP_FEEDS": True}
    if store == "s3":
        config.update(
            FEED_STORE=f"s3://{BUCKET}/feeds",
            S3_ENDPOINT_URL=endpoint,
            S3_ACCESS_KEY_ID="bench",
            S3_SECRET_ACCESS_KEY="bench",
        )
    return create_app(config)


def step_setup(instance: str, products: str) -> dict:
    """Schema and seed."""
    from flask_migrate import upgrade

    app = _app(instance, "local", "")
    with app.app_context():
        from impexmod.extensions import db
        from impexmod.factories.seed import seed_catalog

        upgrade()
        start = time.perf_counter()
        seed_catalog(db.engine, int(products), seed=1)
        return {"seconds": time.perf_counter() - start}


def step_export(instance: str, store: str, endpoint: str) -> dict:
    """One full run of the exporter into ``store``: export, upload, pointer, gzip twin."""
    app = _app(instance, store, endpoint)
    with app.app_context():
        from impexmod.dispatch import jobs
        from impexmod.export import definition as exporters
        from impexmod.runs import tasks
        from impexmod.runs.feedstore import get_store

        task = next((t for t in tasks.list_tasks() if t.name == NAME), None)
        task = task or exporters.create_exporter(NAME, "products", strategy="full", fmt="xml")
        start = time.perf_counter()
        run = jobs.start_run(task, inline=True)
        seconds = time.perf_counter() - start
        assert run.status == "succeeded", run.error
        assert get_store().current(task.id).gzip_name
        return {
            "seconds": seconds,
            "bytes": run.bytes,
            "entities": run.entity_count,
            "rss_mb": _peak_mb(),
        }


def step_floor(instance: str) -> dict:
    """The export floor: same rows, bare sqlite3 and lxml (bench/floor.py)."""
    sys.path.insert(0, str(HERE))
    from floor import export_floor

    out = Path(instance) / "floor.xml"
    start = time.perf_counter()
    export_floor(str(Path(instance) / "impexmod.sqlite3"), str(out), f"shop:{SHOP}")
    return {"seconds": time.perf_counter() - start, "bytes": out.stat().st_size}


def _client(endpoint: str):
    from impexmod.runs.s3store import S3Settings, make_client

    settings = S3Settings(BUCKET, "", endpoint, None, "bench", "bench")
    return make_client(settings)


def step_upload_floor(instance: str, endpoint: str) -> dict:
    """Bare boto3 upload_file of the floor's file (8 MiB parts, 4 threads, as the store)."""
    from boto3.s3.transfer import TransferConfig

    s3 = _client(endpoint)
    path = Path(instance) / "floor.xml"
    config = TransferConfig(8 << 20, max_concurrency=4, multipart_chunksize=8 << 20)
    start = time.perf_counter()
    s3.upload_file(str(path), BUCKET, "floor/floor.xml", Config=config)
    seconds = time.perf_counter() - start
    s3.delete_object(Bucket=BUCKET, Key="floor/floor.xml")
    return {"seconds": seconds, "bytes": path.stat().st_size}


def _drain(response) -> int:
    # The bytes as sent (a gzip answer stays compressed), read as they come.
    size = sum(len(chunk) for chunk in response.raw.stream(CHUNK, decode_content=False))
    response.close()
    return size


def _timed(times: int, call) -> tuple[float, int]:
    size, start = 0, time.perf_counter()
    for _ in range(times):
        size += call()
    return (time.perf_counter() - start) / times, size // times


def step_serve(instance: str, store: str, endpoint: str, requests_: str) -> dict:
    """Full, gzip, range and 304 answers of the feed endpoint; and the floor of its bytes."""
    import requests

    from tests.support import live_server

    n = int(requests_)
    app = _app(instance, store, endpoint)
    with app.app_context():
        from impexmod.runs import tasks
        from impexmod.runs.feedstore import get_store

        task = next(t for t in tasks.list_tasks() if t.name == NAME)
        feed = get_store().current(task.id)
        if store == "s3":
            s3 = _client(endpoint)
            key = f"feeds/{task.id}/{feed.name}"

            def floor(**ranged) -> int:
                body = s3.get_object(Bucket=BUCKET, Key=key, **ranged)["Body"]
                size = sum(len(c) for c in iter(lambda: body.read(CHUNK), b""))
                body.close()
                return size

            def range_floor() -> int:
                return floor(Range="bytes=1000-1999")
        else:
            path = get_store().path(task.id, feed.name)

            def floor() -> int:
                with open(path, "rb") as fh:
                    return sum(len(c) for c in iter(lambda: fh.read(CHUNK), b""))

            def range_floor() -> int:
                with open(path, "rb") as fh:
                    fh.seek(1000)
                    return len(fh.read(1000))

        rss_before = _peak_mb()
        with live_server(app) as base:
            app.config["PUBLIC_URL"] = base
            url = tasks.feed_url(task)
            with requests.Session() as http:

                def get(**headers):
                    return lambda: _drain(http.get(url, headers=headers, stream=True, timeout=60))

                full = _timed(n, get(**{"Accept-Encoding": "identity"}))
                zipped = _timed(n, get(**{"Accept-Encoding": "gzip"}))
                plain = {"Accept-Encoding": "identity"}
                ranged = _timed(n * 5, get(**plain, Range="bytes=1000-1999"))
                etag = http.head(url, headers=plain).headers["ETag"]
                cached = _timed(n * 5, get(**plain, **{"If-None-Match": etag}))
        floored = _timed(n, floor)
        range_floored = _timed(n * 5, range_floor)
        return {
            "bytes": full[1],
            "gzip_bytes": zipped[1],
            "full": full[0],
            "gzip": zipped[0],
            "range": ranged[0],
            "not_modified": cached[0],
            "floor": floored[0],
            "range_floor": range_floored[0],
            "rss_before_mb": rss_before,
            "rss_mb": _peak_mb(),
        }


STEPS = {
    "setup": step_setup,
    "export": step_export,
    "floor": step_floor,
    "upload_floor": step_upload_floor,
    "serve": step_serve,
}


def child(step: str, *args) -> dict:
    """Run one step in a fresh interpreter and return what it printed."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", step, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# {step} {' '.join(map(str, args[1:]))}: {json.dumps(result)}", flush=True)
    return result


def bench(products: int, requests_: int, workdir: Path) -> dict:
    """All the figures, with moto's server in a process of its own for the steps to use."""
    from tests.delivery_servers import free_port

    instance = workdir / f"n{products}"
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    port = free_port()
    # Its own process: it keeps every object in memory, which must not count as a step's.
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for(endpoint)
        _client(endpoint).create_bucket(Bucket=BUCKET)
        r = {"products": products, "requests": requests_}
        r["seed"] = child("setup", instance, products)
        r["floor"] = child("floor", instance)
        r["upload_floor"] = child("upload_floor", instance, endpoint)
        for store in ("local", "s3"):
            r[f"export_{store}"] = child("export", instance, store, endpoint)
            r[f"serve_{store}"] = child("serve", instance, store, endpoint, requests_)
    finally:
        r["load"] = os.getloadavg()
        server.terminate()
        server.wait(10)
    return r


def _wait_for(endpoint: str) -> None:
    import requests

    for _ in range(100):
        try:
            requests.get(endpoint, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not start at {endpoint}")


def report(r: dict) -> None:
    """Print the figures, then the Markdown rows."""
    mb = r["export_local"]["bytes"] / 1e6
    floor, upload = r["floor"]["seconds"], r["upload_floor"]["seconds"]
    load = ", ".join(f"{a:.1f}" for a in r["load"])
    print(f"\n== {r['products']:,} products, feed {mb:.1f} MB (load average {load} at the end)")
    print(f"export floor (bare lxml)      {floor:7.2f} s")
    print(f"upload floor (bare boto3)     {upload:7.2f} s  {mb / upload:7.1f} MB/s")
    rows = []
    for store in ("local", "s3"):
        e, s = r[f"export_{store}"], r[f"serve_{store}"]
        print(
            f"export, {store:<5}               {e['seconds']:7.2f} s  {e['seconds'] / floor:5.2f} x"
            f" floor  peak {e['rss_mb']:.0f} MB"
        )
        print(
            f"serve, {store:<5}  full {s['full'] * 1e3:8.1f} ms ({mb / s['full']:6.1f} MB/s)"
            f"  floor {s['floor'] * 1e3:8.1f} ms  gzip {s['gzip'] * 1e3:7.1f} ms"
            f"  1 kB range {s['range'] * 1e3:6.1f} ms (floor {s['range_floor'] * 1e3:.1f})"
            f"  304 {s['not_modified'] * 1e3:6.1f} ms"
            f"  peak {s['rss_before_mb']:.0f} -> {s['rss_mb']:.0f} MB"
        )
        rows.append(
            f"| {store} | {e['seconds']:.2f} s | {e['seconds'] / floor:.2f} | "
            f"{s['full'] * 1e3:.0f} ms | {s['floor'] * 1e3:.0f} ms | "
            f"{s['full'] / s['floor']:.2f} | {s['gzip'] * 1e3:.0f} ms | "
            f"{s['range'] * 1e3:.1f} ms | {s['range_floor'] * 1e3:.1f} ms | "
            f"{s['not_modified'] * 1e3:.1f} ms | "
            f"{s['rss_before_mb']:.0f} → {s['rss_mb']:.0f} |"
        )
    print(
        "\n| store | full run | / floor | serve full | floor | / floor | serve gzip"
        " | 1 kB range | floor | 304 | peak MB (serving) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--workdir", default="/tmp/impexmod-store-bench")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        result = STEPS[args.step[0]](*args.step[1:])
        print(json.dumps(result))
        return
    report(bench(args.products, args.requests, Path(args.workdir)))


if __name__ == "__main__":
    main()
