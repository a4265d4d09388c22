"""Export benchmark: seed N products, then time full and incremental native XML exports against
a floor measured in the same run, and full exports in the other formats (CSV, JSON Lines, XLSX,
an XSLT stylesheet). Each step runs in its own process so that its peak memory (ru_maxrss) is
its own.

    python bench/export_bench.py --products 100000 --products 1000000 [--formats csv,jsonl]

Prints one table per N, and a Markdown table to paste into docs/performance.md.
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


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _app(instance: str):
    os.environ["IMPEXMOD_INSTANCE_PATH"] = instance
    os.environ["IMPEXMOD_SHOP_ID"] = SHOP
    os.environ.pop("IMPEXMOD_REDIS_URL", None)
    os.environ.pop("IMPEXMOD_DATABASE_URL", None)
    from impexmod import create_app

    return create_app({"GZIP_FEEDS": False})


def step_setup(instance: str, products: int) -> dict:
    """Schema and seed."""
    from flask_migrate import upgrade

    app = _app(instance)
    with app.app_context():
        from impexmod.extensions import db
        from impexmod.factories.seed import seed_catalog

        upgrade()
        start = time.perf_counter()
        seed_catalog(db.engine, products, seed=1)
        return {"seconds": time.perf_counter() - start}


# Output shapes timed besides the native XML: name -> exporter arguments.
SHAPES = {
    "csv": {"fmt": "csv"},
    "jsonl": {"fmt": "jsonl"},
    "xlsx": {"fmt": "xlsx"},
    "xslt": {"stylesheet": "native-to-csv"},
}


def step_export(instance: str, name: str, strategy: str) -> dict:
    """One run of a products exporter (created on first use), then its gzip twin, timed apart."""
    app = _app(instance)
    with app.app_context():
        from impexmod.dispatch import jobs
        from impexmod.export import definition as exporters
        from impexmod.runs import tasks
        from impexmod.runs.feedstore import get_store

        task = next((t for t in tasks.list_tasks() if t.name == name), None)
        shape = SHAPES.get(name, {"fmt": "xml"})
        task = task or exporters.create_exporter(name, "products", strategy=strategy, **shape)
        start = time.perf_counter()
        run = jobs.start_run(task, inline=True)
        seconds = time.perf_counter() - start
        assert run.status == "succeeded", run.error
        feed = get_store().current(task.id)
        start = time.perf_counter()
        get_store().add_gzip(feed)
        return {
            "seconds": seconds,
            "entities": run.entity_count,
            "deleted": run.deleted_count,
            "bytes": run.bytes,
            "gzip_seconds": time.perf_counter() - start,
            "rss_mb": _peak_mb(),
        }


def step_floor(instance: str) -> dict:
    """The floor: same rows, bare sqlite3 and lxml."""
    sys.path.insert(0, str(HERE))
    from floor import export_floor

    out = Path(instance) / "floor.xml"
    start = time.perf_counter()
    count = export_floor(str(Path(instance) / "impexmod.sqlite3"), str(out), f"shop:{SHOP}")
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "entities": count,
        "bytes": out.stat().st_size,
        "rss_mb": _peak_mb(),
    }


def step_change(instance: str, percent: float) -> dict:
    """Change the price and stock of ``percent`` % of the products through the ORM."""
    app = _app(instance)
    with app.app_context():
        from sqlalchemy import func, select

        from impexmod.extensions import db
        from impexmod.models import Product, StockAvailable

        total = db.session.scalar(select(func.count()).select_from(Product))
        step = max(1, round(100 / percent))
        ids = db.session.scalars(select(Product.id).where(Product.id % step == 0)).all()
        start = time.perf_counter()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for product in db.session.scalars(select(Product).where(Product.id.in_(part))):
                product.price = product.price + 1
            for stock in db.session.scalars(
                select(StockAvailable).where(StockAvailable.id_product.in_(part))
            ):
                stock.quantity += 1
            db.session.commit()
        return {"seconds": time.perf_counter() - start, "changed": len(ids), "total": total}


STEPS = {"setup": step_setup, "export": step_export, "floor": step_floor, "change": step_change}


def child(step: str, *args) -> dict:
    """Run one step in a fresh interpreter and return what it printed."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", step, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Each step's figures as soon as it ends: a long run that is cut off still tells something.
    print(f"# {step} {' '.join(map(str, args[1:]))}: {json.dumps(result)}", flush=True)
    return result


def bench(products: int, workdir: Path, shapes: list[str]) -> dict:
    """All the figures for one catalog size."""
    instance = workdir / f"n{products}"
    shutil.rmtree(instance, ignore_errors=True)
    instance.mkdir(parents=True)
    r = {"products": products}
    r["seed"] = child("setup", instance, products)
    r["full"] = child("export", instance, "full", "full")
    r["floor"] = child("floor", instance)
    r["incremental_first"] = child("export", instance, "incr", "incremental")
    r["change"] = child("change", instance, 1)
    r["incremental"] = child("export", instance, "incr", "incremental")
    r["shapes"] = {shape: child("export", instance, shape, "full") for shape in shapes}
    return r


def report(r: dict) -> None:
    """Print one size's figures."""
    full, floor, inc = r["full"], r["floor"], r["incremental"]
    n = r["products"]
    print(f"\n== {n:,} products (seeded in {r['seed']['seconds']:.1f} s)")
    print(
        f"full export      {full['seconds']:8.2f} s  {n / full['seconds']:9,.0f} products/s"
        f"  peak {full['rss_mb']:6.0f} MB  {full['bytes'] / 1e6:8.1f} MB written"
    )
    print(
        f"floor (bare)     {floor['seconds']:8.2f} s  {n / floor['seconds']:9,.0f} products/s"
        f"  peak {floor['rss_mb']:6.0f} MB  {floor['bytes'] / 1e6:8.1f} MB written"
    )
    print(f"full / floor     {full['seconds'] / floor['seconds']:8.2f} x   (target <= 1.5)")
    print(f"gzip twin        {full['gzip_seconds']:8.2f} s  (after publishing, not in the export)")
    print(
        f"incremental 1%   {inc['seconds']:8.2f} s  {inc['entities']:,} products"
        f"  peak {inc['rss_mb']:6.0f} MB  = {100 * inc['seconds'] / full['seconds']:.1f} % of"
        f" full (target < 5 %)"
    )
    for shape, fig in r["shapes"].items():
        print(
            f"{shape:<16} {fig['seconds']:8.2f} s  {n / fig['seconds']:9,.0f} products/s"
            f"  peak {fig['rss_mb']:6.0f} MB  {fig['bytes'] / 1e6:8.1f} MB written"
        )


def markdown(results: list[dict]) -> None:
    """The table for docs/performance.md."""
    print(
        "\n| products | seed | full export | rows/s | peak MB | floor | rows/s | full/floor |"
        " peak MB (floor) | incremental 1% | % of full | peak MB (incr.) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        n, full, floor, inc = r["products"], r["full"], r["floor"], r["incremental"]
        print(
            f"| {n:,} | {r['seed']['seconds']:.1f} s | {full['seconds']:.1f} s |"
            f" {n / full['seconds']:,.0f} | {full['rss_mb']:.0f} | {floor['seconds']:.1f} s |"
            f" {n / floor['seconds']:,.0f} | {full['seconds'] / floor['seconds']:.2f} |"
            f" {floor['rss_mb']:.0f} | {inc['seconds']:.2f} s ({inc['entities']:,}) |"
            f" {100 * inc['seconds'] / full['seconds']:.1f} % | {inc['rss_mb']:.0f} |"
        )


def markdown_shapes(results: list[dict]) -> None:
    """The table of the other formats for docs/performance.md."""
    print("\n| products | format | time | products/s | peak MB | MB written | vs native XML |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        n, full = r["products"], r["full"]
        for shape, fig in r["shapes"].items():
            print(
                f"| {n:,} | {shape} | {fig['seconds']:.1f} s | {n / fig['seconds']:,.0f} |"
                f" {fig['rss_mb']:.0f} | {fig['bytes'] / 1e6:.1f} |"
                f" {fig['seconds'] / full['seconds']:.2f} x |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--products", type=int, action="append", help="catalog size (repeatable); default 100000"
    )
    parser.add_argument(
        "--formats",
        default=",".join(SHAPES),
        help=f"other formats to time, comma-separated (default: {','.join(SHAPES)}; '' for none)",
    )
    parser.add_argument("--workdir", default="/tmp/impexmod-bench")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.step:
        args = [int(a) if a.isdigit() else a for a in opts.args]
        print(json.dumps(STEPS[opts.step](*args)))
        return
    shapes = [f for f in opts.formats.split(",") if f]
    unknown = [f for f in shapes if f not in SHAPES]
    if unknown:
        parser.error(f"unknown format(s) {', '.join(unknown)}; choose among {', '.join(SHAPES)}")
    results = []
    for n in opts.products or [100_000]:
        results.append(bench(n, Path(opts.workdir), shapes))
        report(results[-1])
    markdown(results)
    if shapes:
        markdown_shapes(results)


if __name__ == "__main__":
    main()
