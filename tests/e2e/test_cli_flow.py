"""The export core end to end, as an operator runs it: separate `impexmod` processes for the
schema, the seed, the exporters and the web server, and feeds fetched over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import create_engine, func, select

from impexmod import entities
from impexmod.schema import validate
from tests.support import parse_feed

SEEDED = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shop(_template, tmp_path):
    """A fresh instance (its own SQLite database, or the CI server database) and its env.

    ``_template`` has migrated the server database, so that it can be emptied here.
    """
    port = _free_port()
    env = dict(os.environ)
    env.pop("IMPEXMOD_REDIS_URL", None)
    env.update(
        IMPEXMOD_INSTANCE_PATH=str(tmp_path / "instance"),
        IMPEXMOD_PUBLIC_URL=f"http://127.0.0.1:{port}",
        IMPEXMOD_SHOP_ID="clishop",
    )
    server_db = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")
    if server_db:
        from tests.conftest import _reset

        engine = create_engine(server_db)
        _reset(engine)
        engine.dispose()
        env["IMPEXMOD_DATABASE_URL"] = server_db
    return {"env": env, "port": port, "base": f"http://127.0.0.1:{port}"}


def impexmod(shop, *args: str) -> str:
    """Run one `impexmod` command; fail the test with its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "impexmod.cli", *args],
        env=shop["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"impexmod {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def web(shop):
    """`impexmod run` serving the shop until the block ends."""
    with subprocess.Popen(
        [sys.executable, "-m", "impexmod.cli", "run", "--port", str(shop["port"])],
        env=shop["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        try:
            for _ in range(100):
                try:
                    requests.get(shop["base"] + "/feeds/x/y", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            yield shop["base"]
        finally:
            server.terminate()
            server.wait(10)


def _expected_counts(shop) -> dict[str, int]:
    from impexmod import create_app

    app = create_app(
        {
            "INSTANCE_PATH": shop["env"]["IMPEXMOD_INSTANCE_PATH"],
            **(
                {"DATABASE_URL": shop["env"]["IMPEXMOD_DATABASE_URL"]}
                if "IMPEXMOD_DATABASE_URL" in shop["env"]
                else {}
            ),
        }
    )
    with app.app_context():
        from impexmod.extensions import db

        counts = {
            name: db.session.scalar(select(func.count()).select_from(d.table))
            for name, d in entities.REGISTRY.items()
        }
        # Give the session's connection back before closing the pool, or it outlives it open.
        db.session.remove()
        db.engine.dispose()
    return counts


def test_every_entity_exported_and_served(shop):
    impexmod(shop, "db", "upgrade")
    impexmod(shop, "seed", "--products", str(SEEDED))
    expected = _expected_counts(shop)
    assert expected["products"] == SEEDED
    assert all(expected[name] > 0 for name in expected), expected

    added = {}
    for name in entities.ENTITY_NAMES:
        out = impexmod(
            shop,
            "exporter",
            "add",
            "--name",
            f"all {name}",
            "--entity",
            name,
            "--format",
            "xml",
            "--json",
        )
        added[name] = json.loads(out)
        assert {"id", "name", "feed_url"} <= set(added[name])
    listed = json.loads(impexmod(shop, "exporter", "list", "--json"))
    assert [t["id"] for t in listed] == [added[n]["id"] for n in entities.ENTITY_NAMES]

    with web(shop):
        for name, task in added.items():
            assert requests.get(task["feed_url"], timeout=10).status_code == 404, name
        for task in added.values():
            impexmod(shop, "exporter", "run", str(task["id"]), "--wait")
        for name, task in added.items():
            response = requests.get(task["feed_url"], timeout=30)
            assert response.status_code == 200, name
            validate(response.content)
            root = parse_feed(response.content)
            element = entities.REGISTRY[name].element
            assert len(root.findall(element)) == expected[name], name
            assert len(root) == expected[name], name

        # Rotating a token kills the old URL at once.
        products = added["products"]
        new_url = impexmod(shop, "exporter", "rotate-token", str(products["id"])).strip()
        assert new_url != products["feed_url"]
        assert requests.get(products["feed_url"], timeout=10).status_code == 404
        assert requests.get(new_url, timeout=10).status_code == 200


def test_exporter_cli_refuses_bad_input_clearly(shop):
    impexmod(shop, "db", "upgrade")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "impexmod.cli",
            "exporter",
            "add",
            "--name",
            "x",
            "--entity",
            "planets",
        ],
        env=shop["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "planets" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "impexmod.cli", "exporter", "run", "999"],
        env=shop["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no task with id 999" in done.stderr and "Traceback" not in done.stderr
