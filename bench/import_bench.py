"""Import benchmark: a product feed of N products and a stock feed of N lines into SQLite.

Shop A is seeded and exports its product feed; a stock feed of N lines (``mode="set"``, keyed
by A's product keys) is written next to it. Shop B, empty, imports the product feed (a large
feed is parsed by a second process: ``IMPORT_PARALLEL_BYTES``), imports it again into another
empty shop with that process turned off, imports it once more (nothing changed), then the stock
feed, then the stock feed again with every quantity changed. Each step runs in its own process,
so that its peak memory (ru_maxrss) is its own; the CPU seconds of the step and of its parser
process are printed too (on a shared machine, wall time well above them means busy cores).

    python bench/import_bench.py --products 100000

The floor is measured in the same run: streaming each feed's top-level elements with lxml and
doing nothing with them. Each step also times a bare Python loop just before it ("loop"): the
machine's speed at that moment, which on a shared machine varies by two within minutes.

Prints the figures and a Markdown table for docs/performance.md ("## Import").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _app(instance: str, shop: str):
    os.environ["IMPEXMOD_INSTANCE_PATH"] = instance
    os.environ["IMPEXMOD_SHOP_ID"] = shop
    for name in ("IMPEXMOD_REDIS_URL", "IMPEXMOD_DATABASE_URL"):
        os.environ.pop(name, None)
    from impexmod import create_app

    return create_app({"GZIP_FEEDS": False})


def step_source(workdir: str, products: int) -> dict:
    """Shop A: schema, seed, product feed; then a stock feed of ``products`` lines."""
    from flask_migrate import upgrade

    app = _app(str(Path(workdir) / "a"), "bencha")
    with app.app_context():
        from sqlalchemy import select

        from impexmod.dispatch import jobs
        from impexmod.export import definition as exporters
        from impexmod.extensions import db
        from impexmod.factories.seed import seed_catalog
        from impexmod.models import Product
        from impexmod.runs.feedstore import get_store

        upgrade()
        seed_catalog(db.engine, products, seed=1)
        task = exporters.create_exporter("bench products", "products")
        run = jobs.start_run(task, inline=True)
        assert run.status == "succeeded", run.error
        store = get_store()
        feed = Path(workdir) / "products.xml"
        shutil.copy(store.path(task.id, store.current(task.id).name), feed)
        from impexmod.catalog.identity import KeyResolver, shop_source

        ids = db.session.scalars(select(Product.id).order_by(Product.id)).all()
        with db.engine.connect() as conn:
            resolver = KeyResolver(conn, shop_source()).load("product", ids)
            keys = [resolver.key("product", i) for i in ids]
    rng = random.Random(1)
    for name in ("stock.xml", "stock-changed.xml"):
        with open(Path(workdir) / name, "w") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n<advancedimporter>\n')
            for i in range(products):
                reference, source = keys[i % len(keys)]
                out.write(
                    f'<stock mode="set"><quantity>{rng.randint(0, 500)}</quantity>'
                    f'<product supplier-reference="product" source="{source}">'
                    f"{reference}</product></stock>\n"
                )
            out.write("</advancedimporter>\n")
    return {"feed_bytes": feed.stat().st_size, "entities": run.entity_count}


def step_import(workdir: str, name: str, fresh: bool, parallel: int = -1) -> dict:
    """Shop B imports one feed; timed alone (``parallel``: IMPORT_PARALLEL_BYTES, if >= 0)."""
    from flask_migrate import upgrade

    if parallel >= 0:
        os.environ["IMPEXMOD_IMPORT_PARALLEL_BYTES"] = str(parallel)
    instance = Path(workdir) / "b"
    if fresh:
        shutil.rmtree(instance, ignore_errors=True)
    app = _app(str(instance), "benchb")
    with app.app_context():
        from impexmod.importing import import_file

        if fresh:
            upgrade()
        loop = python_loop()  # just before: the speed the import is measured at
        before = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        report = import_file(Path(workdir) / name)
        seconds = time.perf_counter() - start
        assert report.ok, [str(e) for e in report.errors[:5]]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "seconds": seconds,
            "totals": report.totals(),
            "rss_mb": _peak_mb(),
            # CPU seconds of this process and of the feed's parsing process (if one ran): on a
            # shared machine, wall time well above them means the cores were busy elsewhere.
            "cpu": _cpu(resource.RUSAGE_SELF) - before[0],
            "parser_cpu": _cpu(resource.RUSAGE_CHILDREN) - before[1],
            "parser_mb": children.ru_maxrss / 1024,
            "python_loop": loop,
        }


def step_floor(workdir: str, name: str) -> dict:
    """The floor: stream the feed's top-level elements with lxml and do nothing with them (what
    reading the file costs on this machine), and a bare Python loop of 20 million additions
    (how fast this machine runs Python: figures from different days compare through it)."""
    from impexmod.importing import safexml
    from impexmod.importing.native import TOP_LEVEL

    start = time.perf_counter()
    for _ in safexml.elements(Path(workdir) / name, name, TOP_LEVEL):
        pass
    read = time.perf_counter() - start
    return {"seconds": read, "python_loop": python_loop()}


def python_loop() -> float:
    """Seconds for a bare loop of 20 million additions: this machine's speed right now (on a
    shared machine it varies by two from one minute to the next)."""
    start = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return time.perf_counter() - start


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


STEPS = {"source": step_source, "import": step_import, "floor": step_floor}


def child(step: str, *args) -> dict:
    """Run one step in a fresh interpreter and return what it printed."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", step, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(products: int, workdir: Path) -> dict:
    """All the figures for one size."""
    folder = workdir / f"n{products}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    r = {"products": products, "source": child("source", folder, products)}
    r["floor"] = child("floor", folder, "products.xml")
    r["stock_floor"] = child("floor", folder, "stock.xml")
    r["products_in_process"] = child("import", folder, "products.xml", 1, 0)
    r["products_import"] = child("import", folder, "products.xml", 1)
    r["products_again"] = child("import", folder, "products.xml", 0)
    r["stock"] = child("import", folder, "stock.xml", 0)
    r["stock_changed"] = child("import", folder, "stock-changed.xml", 0)
    return r


def report(r: dict) -> None:
    """Print one size's figures."""
    n = r["products"]
    print(f"\n== {n:,} products ({r['source']['feed_bytes'] / 1e6:.0f} MB product feed)")
    floor, stock_floor = r["floor"], r["stock_floor"]
    print(
        f"floor: reading the product feed {floor['seconds']:.2f} s"
        f" ({n / floor['seconds']:,.0f} products/s), the stock feed {stock_floor['seconds']:.2f} s"
        f" ({n / stock_floor['seconds']:,.0f} lines/s); a bare 20M-addition Python loop"
        f" {floor['python_loop']:.2f} s"
    )
    for key, label, unit in (
        ("products_import", "product feed, empty shop", "products"),
        ("products_in_process", "the same, parsed in-process", "products"),
        ("products_again", "same feed again (unchanged)", "products"),
        ("stock", "stock feed", "stock lines"),
        ("stock_changed", "stock feed, every line changed", "stock lines"),
    ):
        step = r[key]
        base = r["stock_floor" if key.startswith("stock") else "floor"]["seconds"]
        parser = (
            f", parser {step['parser_cpu']:.1f} s, {step['parser_mb']:.0f} MB"
            if step["parser_cpu"]
            else ""
        )
        print(
            f"{label:<32} {step['seconds']:8.2f} s  {n / step['seconds']:9,.0f} {unit}/s"
            f"  {step['seconds'] / base:4.1f}x floor"
            f"  peak {step['rss_mb']:6.0f} MB  (cpu {step['cpu']:.1f} s{parser};"
            f" loop {step['python_loop']:.2f} s)"
            f"  {step['totals']}"
        )


def markdown(results: list[dict]) -> None:
    """The table for docs/performance.md."""
    print(
        "\n| feed | lines | time | per second | x floor | CPU s (parser) | peak MB (parser)"
        " | loop s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        n = r["products"]
        for key, label in (
            ("floor", "floor: read the product feed"),
            ("stock_floor", "floor: read the stock feed"),
        ):
            seconds = r[key]["seconds"]
            loop = r[key]["python_loop"]
            print(
                f"| {label} | {n:,} | {seconds:.1f} s | {n / seconds:,.0f} | 1.0 | | | {loop:.2f} |"
            )
        for key, label in (
            ("products_import", "products, into an empty shop"),
            ("products_in_process", "products, into an empty shop, parsed in-process"),
            ("products_again", "products, unchanged (no write)"),
            ("stock", "stock"),
            ("stock_changed", "stock, every quantity changed"),
        ):
            step = r[key]
            base = r["stock_floor" if key.startswith("stock") else "floor"]["seconds"]
            cpu, peak = f"{step['cpu']:.1f}", f"{step['rss_mb']:.0f}"
            if step["parser_cpu"]:
                cpu += f" ({step['parser_cpu']:.1f})"
                peak += f" ({step['parser_mb']:.0f})"
            print(
                f"| {label} | {n:,} | {step['seconds']:.1f} s | {n / step['seconds']:,.0f} |"
                f" {step['seconds'] / base:.1f} | {cpu} | {peak} | {step['python_loop']:.2f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, action="append", help="size (repeatable)")
    parser.add_argument("--workdir", default="/tmp/impexmod-import-bench")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.step:
        print(json.dumps(STEPS[args.step](*[int(a) if a.isdigit() else a for a in rest])))
        return
    results = [bench(n, Path(args.workdir)) for n in args.products or [100_000]]
    for r in results:
        report(r)
    markdown(results)


if __name__ == "__main__":
    main()
