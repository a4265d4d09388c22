"""Parallel full exports: one feed written in key-range parts by 1 or 2 `impexmod worker`
processes on a real Redis, beside the same export unsplit and the floor, in the same run.

    python bench/parts_bench.py --products 40000 [--redis redis://127.0.0.1:6379/0]

Each configuration runs a full native XML export of N products through RQ: the run queued,
then timed until it has ended (the workers are started and listening beforehand). "1 worker,
unsplit" is the plain run; "1 worker, 2 parts" is the cost of the split and the join when no
other worker helps (the run's worker writes every part itself); "2 workers" shows the
speed-up. Every split feed is checked byte for byte against the unsplit one (bar its
generation time and change epoch). The floor is bench/floor.py's bare sqlite3 + lxml export.
The catalog is a SQLite file (WAL: the workers read it at once). Prints a Markdown table for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from export_bench import SHOP, child  # noqa: E402 (the setup and floor steps, in their processes)

# (label, workers, parts): parts 1 never splits.
CONFIGS = [
    ("1 worker, unsplit", 1, 1),
    ("1 worker, 2 parts", 1, 2),
    ("2 workers, 2 parts", 2, 2),
    ("2 workers, 4 parts", 2, 4),
]


def _env(instance: Path, redis_url: str, queue: str, parts: int) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("IMPEXMOD_DATABASE_URL", None)
    env.update(
        IMPEXMOD_INSTANCE_PATH=str(instance),
        IMPEXMOD_SHOP_ID=SHOP,
        IMPEXMOD_REDIS_URL=redis_url,
        IMPEXMOD_QUEUE_NAME=queue,
        IMPEXMOD_EXPORT_PARTS=str(parts),
        IMPEXMOD_EXPORT_PART_MIN="1",
        IMPEXMOD_GZIP_FEEDS="false",
    )
    return env


def _masked(data: bytes) -> bytes:
    data = re.sub(rb'generated-at="[^"]+"', b"", data, count=1)
    return re.sub(rb'window-to="[^"]+"', b"", data, count=1)


def measure(instance: Path, redis_url: str, workers: int, parts: int) -> dict:
    """One export run through ``workers`` workers with exports cut into ``parts``."""
    queue = f"impexmod-bench-{uuid.uuid4().hex[:8]}"
    env = _env(instance, redis_url, queue, parts)
    os.environ.update(env)
    from impexmod import create_app

    app = create_app({"GZIP_FEEDS": False})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "impexmod.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        with app.app_context():
            from rq import Worker

            from impexmod.dispatch import jobs
            from impexmod.export import definition as exporters
            from impexmod.runs import tasks
            from impexmod.runs.feedstore import get_store

            q = jobs.queue()
            deadline = time.monotonic() + 60
            while len(Worker.all(queue=q)) < workers:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.1)
            task = next((t for t in tasks.list_tasks() if t.name == "parts"), None)
            task = task or exporters.create_exporter("parts", "products")
            start = time.perf_counter()
            run = jobs.wait(jobs.start_run(task), poll=0.05)
            seconds = time.perf_counter() - start
            assert run.status == "succeeded", run.error
            store = get_store()
            with store.open(task.id, store.current(task.id).name) as fh:
                body = _masked(fh.read())
            writers = sorted({m for m in re.findall(r"entities, by (\S+)$", run.log, re.M)})
            return {
                "seconds": seconds,
                "run_seconds": run.duration,
                "entities": run.entity_count,
                "bytes": run.bytes,
                "split": "Split into" in run.log,
                "writers": len(writers),
                "digest": __import__("hashlib").sha256(body).hexdigest(),
            }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=40000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/impexmod-parts-bench"))
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.step == "measure":
        instance, workers, parts = opts.args
        print(json.dumps(measure(Path(instance), opts.redis, int(workers), int(parts))))
        return
    instance = opts.workdir / f"n{opts.products}"
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    n = opts.products
    child("setup", instance, n)
    floor = child("floor", instance)
    results = []
    for label, workers, parts in CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--redis", opts.redis, "--step", "measure"]
            + [str(instance), str(workers), str(parts)],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"{label}: the measure step failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"# {label}: {json.dumps(r)}", flush=True)
        results.append((label, r))
    base = results[0][1]
    for label, r in results[1:]:
        assert r["split"] and r["digest"] == base["digest"], f"{label}: not the unsplit feed"
    print(f"\n{n:,} products, native XML, full export through RQ ({os.cpu_count()} cores)")
    print(f"floor (bare sqlite3 + lxml, one process) {floor['seconds']:8.2f} s")
    for label, r in results:
        print(
            f"{label:22} {r['seconds']:8.2f} s  {n / r['seconds']:9,.0f} products/s"
            f"  {r['seconds'] / floor['seconds']:5.2f} x floor"
            f"  {base['seconds'] / r['seconds']:5.2f} x unsplit"
            f"  ({r['writers'] or 1} writing process(es))"
        )
    print("\n| configuration | seconds | products/s | x floor | speed-up vs unsplit |")
    print("|---|---|---|---|---|")
    rate = n / floor["seconds"]
    print(f"| floor (bare, one process) | {floor['seconds']:.2f} | {rate:,.0f} | 1.00 | |")
    for label, r in results:
        print(
            f"| {label} | {r['seconds']:.2f} | {n / r['seconds']:,.0f} |"
            f" {r['seconds'] / floor['seconds']:.2f} | {base['seconds'] / r['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
