"""Running on many machines (issue 13 item 5), on loopback: two web nodes under gunicorn and two
`impexmod worker` processes, each with its own instance folder, sharing one database (the
suite's: a SQLite file on this one machine, PostgreSQL or MariaDB on their CI legs), one Redis
(a queue of the test's own) and one feed store bucket on moto's server mode, which stands in
for S3/MinIO. Only what every machine must share is shared: the secret key, the encryption key,
the feed store and its S3 settings, the database, Redis and the public URL."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from impexmod.delivery.signing import SIGNATURE_HEADER, verify
from tests.delivery_servers import free_port
from tests.integration.test_admin_auth import TOKEN
from tests.integration.test_delivery_webhook import http_server
from tests.support import parse_feed

REDIS_URL = os.environ.get("IMPEXMOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EMAIL, PASSWORD = "merchant@shop.test", "correct horse battery"
HOOK_SECRET = "hook-secret-of-the-cluster"
SUPPLIER_FEED = b"""<advancedimporter>
<product supplier-reference="M-1"><reference>MULTI-1</reference><name>From node A</name><price>9.5</price></product>
<product supplier-reference="M-2"><reference>MULTI-2</reference><name>Also from A</name><price>12</price></product>
</advancedimporter>"""  # noqa: E501

pytestmark = pytest.mark.redis


class Cluster:
    """The processes of the deployment, their logs, and the environment each one sees."""

    def __init__(self, folder: Path, shared: dict[str, str]):
        self.folder = folder
        self.shared = shared
        self.procs: dict[str, subprocess.Popen] = {}
        self.bases: dict[str, str] = {}

    def env(self, node: str) -> dict[str, str]:
        """A machine's environment: the shared settings, and an instance folder of its own."""
        environ = dict(os.environ)
        environ.update(self.shared, IMPEXMOD_INSTANCE_PATH=str(self.folder / node / "instance"))
        environ["PYTHONUNBUFFERED"] = "1"  # each line in its log at once, for a failure's report
        return environ

    def start(self, node: str, argv: list[str]) -> subprocess.Popen:
        """Start a long-running process of ``node``, its output in ``<node>.log``."""
        (self.folder / node).mkdir(exist_ok=True)
        log = open(self.folder / f"{node}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(argv, env=self.env(node), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[node] = proc
        return proc

    def web(self, node: str, port: int | None = None) -> str:
        """A web node: gunicorn, as in production (README, "Run it in production")."""
        port = port or free_port()
        # Two nodes on one machine: gunicorn's control socket (one default path per user)
        # would be shared, so it is off; the test stops each node by its pid.
        self.start(
            node,
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4"]
            + ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--no-control-socket"]
            + ["impexmod:create_app()"],
        )
        self.bases[node] = f"http://127.0.0.1:{port}"
        return self.bases[node]

    def cli(self, node: str, *args: str) -> str:
        """One `impexmod` command on ``node``; its stdout (the test fails with its stderr)."""
        (self.folder / node).mkdir(exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "impexmod.cli", *args],
            env=self.env(node),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"impexmod {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_ready(self, seconds: float = 60) -> None:
        """Return once every web node answers (and no process died meanwhile)."""
        deadline = time.monotonic() + seconds
        pending = dict(self.bases)
        while pending:
            self.check_alive()
            for node, base in list(pending.items()):
                try:
                    requests.get(base + "/admin/login/", timeout=10)
                    del pending[node]
                except requests.RequestException:
                    pass
            assert time.monotonic() < deadline, f"not serving after {seconds} s: {list(pending)}"
            time.sleep(0.2)

    def check_alive(self) -> None:
        for node, proc in self.procs.items():
            assert proc.poll() is None, f"{node} exited with {proc.returncode}"

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @contextmanager
    def reporting(self) -> Iterator[None]:
        """Print every process's log if the block fails (pytest shows it with the failure)."""
        try:
            yield
        except BaseException:
            print(self.logs())
            raise

    def logs(self) -> str:
        return "\n".join(
            f"----- {path.stem} -----\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )


@pytest.fixture
def database(_template, tmp_path) -> Iterator[str]:
    """The suite's database, emptied and migrated (``_template`` migrated it once)."""
    server_db = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")
    if server_db:
        from tests.conftest import _reset

        engine = create_engine(server_db)
        _reset(engine)
        engine.dispose()
        yield server_db
    else:
        # One SQLite file that every process of this machine opens.
        shutil.copy(_template, tmp_path / "shared.sqlite3")
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"


@pytest.fixture
def cluster(database, s3_endpoint, tmp_path) -> Iterator[Cluster]:
    """Two gunicorn web nodes (a, b) and two workers, on one database, Redis and bucket."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    bucket = f"cluster-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    queue = f"impexmod-multi-{uuid.uuid4().hex[:8]}"
    web_a = free_port()
    shared = {
        "IMPEXMOD_DATABASE_URL": database,
        "IMPEXMOD_REDIS_URL": REDIS_URL,
        "IMPEXMOD_QUEUE_NAME": queue,
        "IMPEXMOD_SHOP_ID": "multishop",
        "IMPEXMOD_SECRET_KEY": secrets.token_hex(32),
        "IMPEXMOD_ENCRYPTION_KEY": os.environ["IMPEXMOD_ENCRYPTION_KEY"],
        "IMPEXMOD_FEED_STORE": f"s3://{bucket}/shop",
        "IMPEXMOD_S3_ENDPOINT_URL": s3_endpoint,
        "IMPEXMOD_S3_ACCESS_KEY_ID": "testing",
        "IMPEXMOD_S3_SECRET_ACCESS_KEY": "testing",
        # Partners and download links are given node a's address (a proxy's, in production).
        "IMPEXMOD_PUBLIC_URL": f"http://127.0.0.1:{web_a}",
    }
    nodes = Cluster(tmp_path / "cluster", shared)
    nodes.folder.mkdir()
    nodes.s3, nodes.bucket = s3, bucket
    failed = True
    try:
        nodes.cli("a", "users", "create", "--email", EMAIL, "--password", PASSWORD)
        nodes.web("b")
        nodes.web("a", web_a)  # on the port PUBLIC_URL names
        nodes.start("worker-1", [sys.executable, "-m", "impexmod.cli", "worker"])
        nodes.start("worker-2", [sys.executable, "-m", "impexmod.cli", "worker"])
        nodes.wait_ready()
        yield nodes
        failed = False
    finally:
        nodes.stop()
        if failed:
            print(nodes.logs())
        redis.Redis.from_url(REDIS_URL).delete(f"rq:queue:{queue}")
        s3.close()


def signed_in(base: str) -> requests.Session:
    """A browser session signed in to the panel of one node."""
    session = requests.Session()
    page = session.get(base + "/admin/login/", timeout=10)
    token = TOKEN.search(page.text).group(1)
    login = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    response = session.post(base + "/admin/login/", data=login, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[-2000:]
    return session


def csrf(session: requests.Session, url: str) -> str:
    found = TOKEN.search(session.get(url, timeout=10).text)
    assert found, f"no CSRF token on {url}"
    return found.group(1)


def wait_for(predicate, cluster: Cluster, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        cluster.check_alive()
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def engine(database):
    """The test's own connection to the shared database, to look at what the nodes did."""
    engine = create_engine(database)
    yield engine
    engine.dispose()


def test_two_web_nodes_and_two_workers_share_feeds_uploads_and_deliveries(cluster, engine):
    a, b = cluster.bases["a"], cluster.bases["b"]

    def rows(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    with cluster.reporting():
        # Signed in on node a, the same session works on node b: one secret key signs both.
        panel = signed_in(a)
        assert panel.get(b + "/admin/", allow_redirects=False, timeout=10).status_code == 200

        # A panel upload on node a is kept in the bucket and imported by a worker.
        form = {"csrf_token": csrf(panel, a + "/admin/import/"), "entity": "", "format": "",
                "modes": ["create"], "source": "", "mapping": ""}  # fmt: skip
        files = {"file": ("supplier.xml", SUPPLIER_FEED, "application/xml")}
        response = panel.post(
            a + "/admin/import/", data=form, files=files, allow_redirects=False, timeout=60
        )
        assert response.status_code == 302, response.text[-3000:]
        upload = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
        [(key,)] = [(o["Key"],) for o in cluster.s3.list_objects_v2(
            Bucket=cluster.bucket, Prefix="shop/uploads/").get("Contents", [])]  # fmt: skip
        assert key.endswith(".xml")
        token = csrf(panel, f"{a}/admin/import/{upload}/")
        ran = panel.post(
            f"{a}/admin/import/{upload}/run/", data={"csrf_token": token}, allow_redirects=False
        )
        assert ran.status_code == 302
        wait_for(
            lambda: (
                rows("SELECT id FROM product WHERE reference IN ('MULTI-1', 'MULTI-2')")
                and len(rows("SELECT id FROM product WHERE reference LIKE 'MULTI-%'")) == 2
            ),
            cluster,
            "the upload's import",
        )
        imports = rows("SELECT status, job_id, worker FROM run WHERE task_id = :t", t=upload)
        assert [r.status for r in imports] == ["succeeded", "succeeded"]  # dry run, import
        assert all(r.job_id and r.worker for r in imports)  # both through the queue

        # An exporter made on node b, with a webhook destination, run from node a's panel.
        with http_server() as hook:
            panel_b = signed_in(b)
            exporter = {
                "csrf_token": csrf(panel_b, b + "/admin/tasks/new/"),
                "name": "Products everywhere", "entity": "products", "format": "xml",
                "strategy": "full", "schedule": "none", "timezone": "",
                "dest-0-kind": "webhook", "dest-0-label": "ERP", "dest-0-enabled": "1",
                "dest-0-url": hook.url, "dest-0-secret": HOOK_SECRET,
            }  # fmt: skip
            saved = panel_b.post(
                b + "/admin/tasks/new/", data=exporter, allow_redirects=False, timeout=30
            )
            assert saved.status_code == 302, saved.text[-3000:]
            [(task_id,)] = rows("SELECT id FROM task WHERE name = 'Products everywhere'")
            listed = json.loads(cluster.cli("b", "exporter", "list", "--json"))
            [feed_url] = [t["feed_url"] for t in listed if t["id"] == task_id]
            path = feed_url.removeprefix(a)
            assert path.startswith("/feeds/")
            for base in (a, b):
                assert requests.get(base + path, timeout=10).status_code == 404

            token = csrf(panel, f"{a}/admin/tasks/")
            started = panel.post(
                f"{a}/admin/tasks/{task_id}/run/",
                data={"csrf_token": token},
                allow_redirects=False,
                timeout=30,
            )
            assert started.status_code == 302
            [run] = wait_for(
                lambda: [
                    r
                    for r in rows("SELECT * FROM run WHERE task_id = :t", t=task_id)
                    if r.status in ("succeeded", "failed")
                ],
                cluster,
                "the export run",
            )
            assert run.status == "succeeded", run.error
            assert run.job_id and run.worker

            # Its feed, served by both web nodes from the bucket: same bytes, same ETag.
            current = json.loads(
                cluster.s3.get_object(Bucket=cluster.bucket, Key=f"shop/{task_id}/current.json")[
                    "Body"
                ].read()
            )
            stored = cluster.s3.get_object(
                Bucket=cluster.bucket, Key=f"shop/{task_id}/{current['name']}"
            )["Body"].read()
            plain = {"Accept-Encoding": "identity"}
            served = {base: requests.get(base + path, headers=plain, timeout=30) for base in (a, b)}
            for response in served.values():
                assert response.status_code == 200
                assert response.content == stored
            assert served[a].headers["ETag"] == served[b].headers["ETag"]
            assert served[a].headers["Last-Modified"] == served[b].headers["Last-Modified"]
            references = {e.findtext("reference") for e in parse_feed(stored).iter("product")}
            assert {"MULTI-1", "MULTI-2"} <= references
            # A partner that polls either node with the ETag it holds gets 304 from both.
            etag = served[a].headers["ETag"]
            for base in (a, b):
                asked = {**plain, "If-None-Match": etag}
                again = requests.get(base + path, headers=asked, timeout=10)
                assert again.status_code == 304 and again.content == b""
                head = requests.head(base + path, headers=plain, timeout=10)
                assert head.status_code == 200 and head.headers["ETag"] == etag
                assert int(head.headers["Content-Length"]) == len(stored)
            # The gzip twin too, the same from both nodes.
            zipped = [requests.get(base + path, timeout=30) for base in (a, b)]
            assert [z.headers.get("Content-Encoding") for z in zipped] == ["gzip", "gzip"]
            assert zipped[0].headers["ETag"] == zipped[1].headers["ETag"] != etag
            assert zipped[0].content == zipped[1].content == stored  # decoded by requests

            # Delivered from the worker: a signed webhook whose download link both nodes serve.
            wait_for(lambda: hook.calls, cluster, "the webhook delivery")
            body, headers = hook.calls[0]
            assert verify(HOOK_SECRET, body, headers[SIGNATURE_HEADER])
            link = json.loads(body)["download_url"]
            assert link.startswith(a)
            for base in (a, b):
                got = requests.get(base + link.removeprefix(a), timeout=30)
                assert got.status_code == 200 and got.content == stored
        [delivery] = rows("SELECT outcome, bytes FROM delivery WHERE run_id = :r", r=run.id)
        assert delivery.outcome == "ok" and delivery.bytes == len(stored)
