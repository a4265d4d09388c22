"""Shared fixtures: an app on a migrated database (SQLite by default, or the URL in
``IMPEXMOD_TEST_DATABASE_URL``: PostgreSQL and MariaDB in CI), a client and a CLI runner."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from impexmod import create_app
from impexmod.dispatch import jobs
from impexmod.extensions import db

TEST_DB = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")
# The suite's feed servers are on loopback, which downloads refuse by default: allowed here, in
# the environment, so that every app (and every worker or CLI process a test starts) has it.
# tests/integration/test_import_ssrf.py removes it to test the default.
os.environ.setdefault("IMPEXMOD_IMPORT_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
# One encryption key for every app of the suite, as every machine of a deployment shares one:
# apps made on the same database with other instance folders (app_like), and the workers and
# CLI processes tests start, read the secrets the test's app wrote. tests/integration/
# test_secrets.py removes it to test the key generated in the instance folder.
os.environ.setdefault("IMPEXMOD_ENCRYPTION_KEY", "dGVzdC1rZXktb2YtdGhlLXN1aXRlLW5vdC1zZWNyZXQ=")


# Programs some tests drive, with the Debian package that provides each. Without one, its tests
# are skipped and named at the end of the run; with IMPEXMOD_REQUIRE_PROGRAMS=1 (as .ci/run
# sets) they fail instead, so CI proves that nothing was skipped.
PROGRAMS = {
    "xsltproc": ("/usr/bin/xsltproc", "xsltproc"),
    "soffice": ("/usr/bin/soffice", "libreoffice-calc-nogui"),
    "chromium": ("/usr/bin/chromium", "chromium"),
    "sshd": ("/usr/sbin/sshd", "openssh-server"),
    "strace": ("/usr/bin/strace", "strace"),
}
_missing: dict[str, list[str]] = {}


def pytest_runtest_setup(item):
    """Skip (or, when programs are required, fail) a test whose ``needs`` program is missing."""
    for mark in item.iter_markers("needs"):
        name = mark.args[0]
        path, package = PROGRAMS[name]
        if Path(path).exists():
            continue
        reason = f"{path} is not installed (apt-get install {package})"
        if os.environ.get("IMPEXMOD_REQUIRE_PROGRAMS") == "1":
            pytest.fail(f"{reason}; IMPEXMOD_REQUIRE_PROGRAMS=1 requires it", pytrace=False)
        _missing.setdefault(package, []).append(item.nodeid)
        pytest.skip(reason)


def pytest_terminal_summary(terminalreporter):
    """Say which tests did not run for want of a program, and how to get it."""
    if not _missing:
        return
    terminalreporter.section("tests skipped for want of a program")
    for package, nodeids in sorted(_missing.items()):
        terminalreporter.line(f"{len(nodeids)} skipped: apt-get install {package}")
    terminalreporter.line("(.ci/run installs them and sets IMPEXMOD_REQUIRE_PROGRAMS=1)")


def _reset(engine) -> None:
    """Empty every table of a server database (keeping the schema and the migration mark)."""
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in tables:
                conn.execute(text(f"TRUNCATE TABLE `{table}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        conn.execute(text("INSERT INTO change_epoch (id, value) VALUES (1, 0)"))


def _drop_everything(engine) -> None:
    """Drop every table of a server database, so that a session migrates it from scratch.

    The server databases outlive a test session: a schema left by an older revision of a
    migration (or by a run cut off half-way) must not decide what this session tests.
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in inspect(conn).get_table_names():
                conn.execute(text(f"DROP TABLE `{table}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))


@pytest.fixture(scope="session")
def _template(tmp_path_factory):
    """Migrate once per session: a template SQLite file, or the server database itself."""
    folder = tmp_path_factory.mktemp("template")
    url = TEST_DB or f"sqlite:///{folder / 'template.sqlite3'}"
    app = create_app({"INSTANCE_PATH": str(folder), "DATABASE_URL": url, "SHOP_ID": "testshop"})
    with app.app_context():
        if TEST_DB:
            _drop_everything(db.engine)
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return folder / "template.sqlite3"


@pytest.fixture
def app(_template, tmp_path):
    """An application on a freshly migrated, empty database, with its own instance folder."""
    if TEST_DB:
        url = TEST_DB
    else:
        shutil.copy(_template, tmp_path / "impexmod.sqlite3")
        url = f"sqlite:///{tmp_path / 'impexmod.sqlite3'}"
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": url,
            "SHOP_ID": "testshop",
            "TESTING": True,
            "REDIS_URL": None,
        }
    )
    with app.app_context():
        if TEST_DB:
            _reset(db.engine)
        yield app
        _join_run_threads()
        db.session.remove()
        db.engine.dispose()


def _join_run_threads() -> None:
    """Wait for the runs started in threads (no Redis) to end and give their connections back.

    A run's thread may still be closing its session when the test has seen the run end; an
    engine disposed of before that leaves the connection to the garbage collector, which
    closes it in some later test and fails it on ResourceWarning.
    """
    for thread in threading.enumerate():
        if thread.name.startswith(jobs.RUN_THREAD):
            thread.join(timeout=60)


@pytest.fixture
def app_like(app, tmp_path):
    """Make other apps on the test database (other web processes), each with its own settings.

    Their engines are disposed of after the test: a pool left to the garbage collector closes
    its server connections at some later test, which fails on ResourceWarning.
    """
    made = []

    def make(**config):
        other = create_app(
            {
                "INSTANCE_PATH": str(tmp_path / f"instance-{len(made)}"),
                "DATABASE_URL": app.config["DATABASE_URL"],
                "SHOP_ID": "testshop",
                "TESTING": True,
                "REDIS_URL": None,
                **config,
            }
        )
        made.append(other)
        return other

    yield make
    _join_run_threads()
    for other in made:
        with other.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner bound to the app."""
    return app.test_cli_runner()


# The feed store tests and the HTTP serving tests run on both stores, always (so CI needs no
# extra leg); IMPEXMOD_TEST_FEED_STORES=local (or s3) narrows a local run to one of them.
FEED_STORES = os.environ.get("IMPEXMOD_TEST_FEED_STORES", "local,s3").split(",")


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's server mode on a free loopback port: a real S3-protocol HTTP server standing in
    for S3 and MinIO (boto3 speaks to it as to them: multipart uploads, ranges, listings)."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.delivery_servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Its request log would drown the test output (it is Werkzeug's, as the live server's).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def use_s3_store(app, endpoint: str, bucket: str | None = None) -> str:
    """Point ``app``'s feed store at a bucket of the loopback S3 server (a new one by default)."""
    from impexmod.runs.feedstore import get_store

    bucket = bucket or f"feeds-{os.urandom(6).hex()}"
    app.config.update(
        FEED_STORE=f"s3://{bucket}/shop",
        S3_ENDPOINT_URL=endpoint,
        S3_ACCESS_KEY_ID="testing",
        S3_SECRET_ACCESS_KEY="testing",
        S3_MULTIPART_MB=5,
    )
    with app.app_context():
        store = get_store()
        if bucket not in {b["Name"] for b in store.s3.list_buckets()["Buckets"]}:
            store.s3.create_bucket(Bucket=bucket)
    return bucket


def close_s3_stores(app) -> None:
    """Close the boto3 clients an app made (their sockets would warn when collected)."""
    for store in app.extensions.pop("impexmod_s3_store", {}).values():
        store.s3.close()


@pytest.fixture(params=FEED_STORES)
def feed_store(request, app):
    """The test's app on the local feed store, then on an S3 bucket (moto on loopback)."""
    if request.param == "s3":
        use_s3_store(app, request.getfixturevalue("s3_endpoint"))
    yield request.param
    close_s3_stores(app)
