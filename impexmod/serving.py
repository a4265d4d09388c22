"""Serving the shop with gunicorn, the production WSGI server ``impexmod serve`` runs.

Why gunicorn: it is the WSGI server Flask's deployment docs put first, it is pure Python
(nothing to compile), its ``gthread`` workers keep idle keep-alive connections of polling
partners off the request threads, and it answers ``wsgi.file_wrapper`` with ``sendfile(2)``,
so a full feed download from the local store goes from the page cache to the socket without
being copied through Python (docs/performance.md, "Serving").

Each worker process builds its own app (no preloading: no database connection or Redis client
is shared across a fork). Without Redis there is no scheduler process, so each worker runs the
embedded scheduler: a slot is started once whoever sees it first, as with several schedulers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


def default_workers() -> int:
    """One worker process per core: a request mostly waits on the store or the database,
    which the threads cover."""
    return max(1, os.cpu_count() or 1)


def settings(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    threads: int = 8,
    timeout: int = 120,
    keepalive: int = 5,
    access_log: bool = False,
) -> dict[str, Any]:
    """gunicorn's settings for impexmod: gthread workers, one per core by default."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers or default_workers(),
        "worker_class": "gthread",
        "threads": threads,
        # Above the panel's longest wait (a small upload waits up to a minute for a dry run).
        "timeout": timeout,
        # Pollers that come back within it reuse their connection (no new TCP handshake).
        "keepalive": keepalive,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "control_socket_disable": True,
    }


class Server(BaseApplication):
    """gunicorn running the Flask app made by ``factory`` in each worker process."""

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options gunicorn knows (it refuses unknown ones)."""
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)
        self.cfg.set("post_worker_init", _post_worker_init)

    def load(self) -> Flask:
        """Build the app in the worker (called after the fork)."""
        return self.factory()


def _post_worker_init(worker) -> None:
    app = worker.wsgi  # what ``load`` built in this worker
    if isinstance(app, Flask) and not app.config.get("REDIS_URL"):
        from impexmod.dispatch.scheduler import start_embedded

        start_embedded(app)


def serve(factory: Callable[[], Flask], **options: Any) -> None:
    """Serve until stopped (SIGINT or SIGTERM: the workers finish their requests first)."""
    Server(factory, settings(**options)).run()
