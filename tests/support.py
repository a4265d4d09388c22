"""Helpers shared by tests: a real HTTP server on loopback, feed parsing, process settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from lxml import etree
from werkzeug.serving import make_server


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Join the request threads on close: a request still tearing down its app context would
    # give its database connection back after the test has disposed of the engine.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def parse_feed(data: bytes) -> etree._Element:
    """Parse a native feed safely (no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def process_env(app: Flask, **extra: str) -> dict[str, str]:
    """The environment under which another process (worker, scheduler) sees ``app``'s shop;
    with Redis and its queue when ``app`` has them."""
    cfg = app.config
    env = {k: v for k, v in os.environ.items() if k != "IMPEXMOD_REDIS_URL"}
    env.update(
        IMPEXMOD_DATABASE_URL=cfg["DATABASE_URL"],
        IMPEXMOD_INSTANCE_PATH=app.instance_path,
        IMPEXMOD_SECRET_KEY=cfg["SECRET_KEY"],
        IMPEXMOD_SHOP_ID=cfg["SHOP_ID"],
        IMPEXMOD_FEED_STORE=cfg["FEED_STORE"],
    )
    for name in ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_MULTIPART_MB"):
        if cfg.get(name) is not None and str(cfg["FEED_STORE"]).startswith("s3://"):
            env[f"IMPEXMOD_{name}"] = str(cfg[name])
    if cfg.get("REDIS_URL"):
        env.update(IMPEXMOD_REDIS_URL=cfg["REDIS_URL"], IMPEXMOD_QUEUE_NAME=cfg["QUEUE_NAME"])
    env.update(extra)
    return env
