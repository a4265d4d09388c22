"""Without Redis there is no scheduler process: `impexmod run` and `impexmod demo` run the
scheduler inside the web process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Run, Task, now
from impexmod.runs.tokens import feed_url
from tests.support import process_env


def free_port() -> int:
    """A TCP port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(app) -> dict[str, str]:
    """The environment of a process on the same shop as ``app``, without Redis."""
    return process_env(app, IMPEXMOD_SCHEDULER_INTERVAL="1")


@contextmanager
def serving(app, *args: str) -> Iterator[str]:
    """An `impexmod <args> --port P` process answering HTTP; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [sys.executable, "-m", "impexmod.cli", *args, "--port", str(port)],
        env=env(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                try:
                    requests.get(base + "/", timeout=2).close()
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{args} did not answer on {base}")
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(30)


def make_due(task_id: int) -> None:
    """Give the task a schedule whose slot was missed a while ago."""
    db.session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(schedule="daily@04:00", timezone="UTC", next_run_at=now() - timedelta(hours=2))
    )
    db.session.commit()


def scheduled_runs(task_id: int, timeout: float = 30) -> list[Run]:
    """Wait for the task's scheduled run to end; return its scheduled runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        runs = db.session.query(Run).filter_by(task_id=task_id, trigger="schedule").all()
        if runs and all(r.status in ("succeeded", "failed") for r in runs):
            return runs
        time.sleep(0.3)
    pytest.fail(f"no scheduled run of task {task_id} ended within {timeout} s")


def test_impexmod_run_starts_the_scheduler_without_redis(app):
    task = exporters.create_exporter("stock", "stock")
    make_due(task.id)
    with serving(app, "run") as base:
        [run] = scheduled_runs(task.id)
        assert run.status == "succeeded", run.error
        path = feed_url(task).removeprefix(app.config["PUBLIC_URL"])
        response = requests.get(base + path, timeout=10)
        assert response.status_code == 200 and response.content.startswith(b"<?xml")


def test_impexmod_demo_starts_the_scheduler_without_redis(app):
    with serving(app, "demo", "--products", "3") as _:
        db.session.rollback()
        demo = db.session.query(Task).order_by(Task.id).first()
        assert demo is not None
        make_due(demo.id)
        [run] = scheduled_runs(demo.id)
        assert run.status == "succeeded", run.error
