"""`impexmod serve`: the shop under gunicorn, as in production, on a loopback port.

A real `impexmod serve` process (two gthread workers) serves the panel's login page and a
feed: 200 with the stored bytes, 304 to a poller whose copy is current (also through its gzip
twin), ranges and HEAD. With strace installed (.ci/run installs it), the full download is
proven to go out by ``sendfile(2)``: the worker's sendfile calls are counted while it is sent.
"""

from __future__ import annotations

import gzip
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from impexmod.dispatch import jobs
from impexmod.export import definition
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.runs.feedstore import get_store
from impexmod.runs.tokens import make_token
from tests.support import process_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(app):
    """A feed generated once, and `impexmod serve` running on the app's database."""
    seed_catalog(db.engine, 300, seed=3)
    db.session.commit()
    task = definition.create_exporter("Served", "products", "xml", schedule="none")
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    port = _free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "impexmod.cli", "serve", "--port", str(port), "--workers", "2",
         "--threads", "4"],
        env=process_env(app),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/admin/login/", timeout=5)
            break
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.seek(0)
                pytest.fail(f"impexmod serve did not start:\n{log.read().decode()[-4000:]}")
            time.sleep(0.2)
    yield base, task, server
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


def test_serve_answers_the_panel_and_the_feed_with_304s_ranges_and_gzip(app, served):
    base, task, _server = served
    url = f"{base}/feeds/{make_token(task)}/products.xml"
    store = get_store()
    current = store.current(task.id)
    with store.open(task.id, current.name) as fh:
        stored = fh.read()

    login = requests.get(f"{base}/admin/login/", timeout=10)
    assert login.status_code == 200 and 'id="email"' in login.text
    full = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert full.status_code == 200 and full.content == stored
    assert full.headers["ETag"] == f'"{current.etag}"'
    again = requests.get(
        url, headers={"If-None-Match": full.headers["ETag"], "Accept-Encoding": "identity"}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == full.headers["ETag"]
    assert again.headers["Cache-Control"] == "no-cache"
    # The gzip twin, then a 304 on its own ETag; a stale copy gets the file again.
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.raw.read()) == stored
    tag = zipped.headers["ETag"]
    assert tag == f'"{current.etag}-gz"'
    assert (
        requests.get(
            url, headers={"Accept-Encoding": "gzip", "If-None-Match": tag}, timeout=10
        ).status_code
        == 304
    )
    stale = requests.get(url, headers={"If-None-Match": '"old"', "Accept-Encoding": "identity"})
    assert stale.status_code == 200 and stale.content == stored
    # A plain copy's tag does not stand for the gzip twin, nor the reverse.
    gz_with_plain_tag = requests.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": full.headers["ETag"]}
    )
    assert gz_with_plain_tag.status_code == 200
    part = requests.get(url, headers={"Range": "bytes=10-19", "Accept-Encoding": "identity"})
    assert part.status_code == 206 and part.content == stored[10:20]
    head = requests.head(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(stored)
    assert requests.get(f"{base}/feeds/{make_token(task)}x/products.xml").status_code == 404


@pytest.mark.needs("strace")
def test_a_full_download_goes_out_by_sendfile(app, served):
    base, task, server = served
    url = f"{base}/feeds/{make_token(task)}/products.xml"
    workers = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(workers) == 2
    tracers = [
        subprocess.Popen(
            ["strace", "-f", "-e", "trace=sendfile", "-p", pid],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in workers
    ]
    time.sleep(1)  # attached
    size = get_store().current(task.id).size
    for _ in range(4):  # on either worker
        body = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10).content
        assert len(body) == size
    time.sleep(0.5)
    traced = ""
    for tracer in tracers:
        tracer.send_signal(signal.SIGINT)
        traced += tracer.communicate(timeout=30)[1]
    sent = [line for line in traced.splitlines() if "sendfile(" in line and "= " in line]
    assert sent, traced[-2000:]
    assert sum(int(line.rsplit("= ", 1)[1].split()[0]) for line in sent) >= 4 * size
