"""The orders channel: a flag-driven export of N orders POSTed to a loopback receiver, and N
inbound delivery events queued then applied, with the floor of each measured in the same run.

    python bench/orders_bench.py --orders 10000

Each phase runs in its own process (so its peak memory, ru_maxrss, is its own) on one SQLite
file in a temporary instance folder, without Redis (the runs execute in the process):

- *export, one order per request*: an order exporter (JSON, HMAC-signed, idempotency key)
  serves the `erp` flag of every order, one POST each, to a ThreadingHTTPServer on loopback
  answering 200. Its floor is the same number of POSTs of the same size from a bare
  ``requests.Session`` (no database, no rendering): what HTTP alone costs.
- *export, batches of 100*: the same, 100 orders per request.
- *inbound, queued*: the events pushed as JSON bodies of 500 through ``inbound.receive``
  (parse, check, dedupe, store); *inbound, applied*: the feed's run applies them (each its own
  transaction: a shipment created and shipped, the order moved to Shipped with its history).
  The floor of applying is bare sqlite3 doing those writes, one transaction per event.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


class Receiver(BaseHTTPRequestHandler):
    """Answers 200 to every POST, counting requests and bytes."""

    posts = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with Receiver.lock:
            Receiver.posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/orders"


def _app(instance: Path):
    os.environ.update(
        IMPEXMOD_INSTANCE_PATH=str(instance),
        IMPEXMOD_SHOP_ID="bench",
        IMPEXMOD_IMPORT_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    os.environ.pop("IMPEXMOD_REDIS_URL", None)
    os.environ.pop("IMPEXMOD_DATABASE_URL", None)
    from impexmod import create_app

    return create_app()


def setup(instance: Path, orders: int) -> dict:
    """N orders in Payment accepted, one line each, with the erp flag ready."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from impexmod.extensions import db
    from impexmod.factories.orm import ensure_order_states
    from impexmod.models import Order, OrderDetail, now
    from impexmod.orders import flags, states

    app = _app(instance)
    with app.app_context():
        upgrade()
        paid = ensure_order_states(db.session)["Payment accepted"].id
        db.session.commit()
        states.ensure_standard_transitions()
        flags.define("erp", "ERP")
        stamp = now()
        rows = [
            {
                "id": i,
                "reference": f"B{i:08d}",
                "current_state": paid,
                "payment": "card",
                "total_paid_tax_incl": 42,
                "date_add": stamp,
                "date_upd": stamp,
            }
            for i in range(1, orders + 1)
        ]
        db.session.execute(insert(Order), rows)
        db.session.execute(
            insert(OrderDetail),
            [
                {"id_order": i, "product_id": 1, "product_name": f"Item {i}", "product_quantity": 1}
                for i in range(1, orders + 1)
            ],
        )
        db.session.commit()
    return {"maxrss_mb": _rss()}


def _flag_all(orders: int) -> None:
    from sqlalchemy import delete, insert

    from impexmod.extensions import db
    from impexmod.models import FlagStatus, OrderFlag, now

    db.session.execute(delete(OrderFlag))
    stamp = now()
    db.session.execute(
        insert(OrderFlag),
        [
            {
                "id_order": i,
                "flag": "erp",
                "status": FlagStatus.READY,
                "set_at": stamp,
                "set_by": "bench",
            }
            for i in range(1, orders + 1)
        ],
    )
    db.session.commit()


def export(instance: Path, orders: int, batch: int) -> dict:
    """Serve every order's erp flag through an order exporter; returns the figures."""
    from impexmod.dispatch import jobs
    from impexmod.orders import exporter

    server, url = _serve()
    app = _app(instance)
    with app.app_context():
        _flag_all(orders)
        task = exporter.create_order_exporter(
            f"ERP {batch}", "erp", url=url, secret="bench", fmt="json", batch=batch, on_flag=False
        )
        started = time.perf_counter()
        run = jobs.start_run(task, inline=True)
        seconds = time.perf_counter() - started
        assert run.status == "succeeded", (run.status, run.error)
    server.shutdown()
    assert Receiver.posts == -(-orders // batch), Receiver.posts
    return {
        "seconds": seconds,
        "per_s": orders / seconds,
        "posts": Receiver.posts,
        "maxrss_mb": _rss(),
    }


def http_floor(orders: int, size: int) -> dict:
    """N bare POSTs of ``size`` bytes over one keep-alive session."""
    import requests

    server, url = _serve()
    body = b"x" * size
    session = requests.Session()
    started = time.perf_counter()
    for _ in range(orders):
        session.post(url, data=body, timeout=10).raise_for_status()
    seconds = time.perf_counter() - started
    server.shutdown()
    return {"seconds": seconds, "per_s": orders / seconds, "maxrss_mb": _rss()}


def inbound(instance: Path, orders: int) -> dict:
    """Queue N shipped events in bodies of 500, then apply them in the feed's run."""
    from impexmod.dispatch import jobs
    from impexmod.orders import inbound as feeds

    app = _app(instance)
    with app.app_context():
        task = feeds.create_inbound("carrier", schedule="none")
        started = time.perf_counter()
        for start in range(1, orders + 1, 500):
            events = [
                {
                    "id": f"E{i}",
                    "type": "shipped",
                    "order": f"B{i:08d}",
                    "carrier": "Post",
                    "tracking": f"T{i}",
                }
                for i in range(start, min(start + 500, orders + 1))
            ]
            receipt = feeds.receive(task, json.dumps(events).encode(), "application/json")
            assert receipt.accepted == len(events), receipt
        queued = time.perf_counter() - started
        started = time.perf_counter()
        run = jobs.start_run(task, inline=True)
        applied = time.perf_counter() - started
        assert run.status == "succeeded", (run.status, run.error)
        counts = feeds.counts(task)
        assert counts.get("applied") == orders, counts
    return {
        "queued_s": queued,
        "queued_per_s": orders / queued,
        "applied_s": applied,
        "applied_per_s": orders / applied,
        "maxrss_mb": _rss(),
    }


def apply_floor(instance: Path, orders: int) -> dict:
    """Bare sqlite3: per event, one transaction creating a shipped shipment, moving the order
    (compare-and-set) and writing its history row: the writes applying cannot avoid."""
    path = instance / "floor.sqlite3"
    shutil.copy(instance / "impexmod.sqlite3", path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    shipped = conn.execute("SELECT id FROM order_state WHERE name='Shipped'").fetchone()[0]
    paid = conn.execute("SELECT id FROM order_state WHERE name='Payment accepted'").fetchone()[0]
    started = time.perf_counter()
    for i in range(1, orders + 1):
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO shipment (id_order, number, carrier, tracking_number, status, shipped_at,"
            " date_add, date_upd) VALUES (?, 1, 'Post', ?, 'shipped', datetime(), datetime(),"
            " datetime())",
            (i, f"T{i}"),
        )
        conn.execute(
            "UPDATE orders SET current_state=? WHERE id=? AND current_state=?", (shipped, i, paid)
        )
        conn.execute(
            "INSERT INTO order_history (id_order, id_order_state, date_add)"
            " VALUES (?, ?, datetime())",
            (i, shipped),
        )
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "per_s": orders / seconds}


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(phase: str, instance: Path, orders: int, *extra: str) -> dict:
    """Run one phase in a fresh process; return what it printed (one JSON object)."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--instance",
            str(instance),
            "--orders",
            str(orders),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--phase")
    parser.add_argument("--instance")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=1500)
    args = parser.parse_args()
    if args.phase:
        instance = Path(args.instance)
        result = {
            "setup": lambda: setup(instance, args.orders),
            "export": lambda: export(instance, args.orders, args.batch),
            "http_floor": lambda: http_floor(args.orders, args.size),
            "inbound": lambda: inbound(instance, args.orders),
            "apply_floor": lambda: apply_floor(instance, args.orders),
        }[args.phase]()
        print(json.dumps(result))
        return
    n = args.orders
    instance = Path(tempfile.mkdtemp(prefix="impexmod-orders-bench-"))
    try:
        child("setup", instance, n)
        one = child("export", instance, n, "--batch", "1")
        hundred = child("export", instance, n, "--batch", "100")
        floor = child("http_floor", instance, n)
        floor_apply = child("apply_floor", instance, n)
        events = child("inbound", instance, n)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    print(f"Orders channel, {n:,} orders (SQLite, in-process runs, loopback receiver)\n")
    print("| Phase | Time | Per second | Floor (same run) | Peak RSS |")
    print("|---|---|---|---|---|")
    print(
        f"| export, one order per POST | {one['seconds']:.2f} s | {one['per_s']:,.0f} orders/s |"
        f" {floor['per_s']:,.0f} bare POSTs/s ({one['per_s'] / floor['per_s']:.2f}x) |"
        f" {one['maxrss_mb']:.0f} MB |"
    )
    print(
        f"| export, 100 orders per POST | {hundred['seconds']:.2f} s |"
        f" {hundred['per_s']:,.0f} orders/s | - | {hundred['maxrss_mb']:.0f} MB |"
    )
    print(
        f"| inbound, queued (bodies of 500) | {events['queued_s']:.2f} s |"
        f" {events['queued_per_s']:,.0f} events/s | - | {events['maxrss_mb']:.0f} MB |"
    )
    print(
        f"| inbound, applied | {events['applied_s']:.2f} s | {events['applied_per_s']:,.0f}"
        f" events/s | {floor_apply['per_s']:,.0f} bare sqlite3 events/s"
        f" ({events['applied_per_s'] / floor_apply['per_s']:.2f}x) | {events['maxrss_mb']:.0f} MB |"
    )


if __name__ == "__main__":
    main()
