"""Two shops over real HTTP: B imports A's product feed, then keeps its stock equal to A's by
polling A's incremental stock feed, catching up on the deltas it missed, and falling back on
the full stock feed when the deltas it needs were removed by retention."""

from __future__ import annotations

import os
import random
import shutil
import threading

import pytest
from sqlalchemy import create_engine, select

from impexmod import create_app
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing.definition import create_importer
from impexmod.models import ImportSourceState, Run, StockAvailable
from impexmod.runs import tasks
from impexmod.runs.feedstore import get_store
from tests.support import live_server, parse_feed

TEST_DB = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")


def _shop(template, folder, shop_id: str, url: str | None = None):
    folder.mkdir()
    if url is None:
        shutil.copy(template, folder / "shop.sqlite3")
        url = f"sqlite:///{folder / 'shop.sqlite3'}"
    else:
        from tests.conftest import _reset

        engine = create_engine(url)
        _reset(engine)
        engine.dispose()
    return create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": url,
            "SHOP_ID": shop_id,
            "SECRET_KEY": f"secret-of-{shop_id}",
            "REDIS_URL": None,
            "GZIP_FEEDS": False,
        }
    )


@pytest.fixture(scope="session")
def sqlite_template(_template, tmp_path_factory):
    """A migrated SQLite file to copy (the session template is a server database in CI)."""
    if not TEST_DB:
        return _template
    folder = tmp_path_factory.mktemp("sqlite-template")
    url = f"sqlite:///{folder / 'template.sqlite3'}"
    app = create_app({"INSTANCE_PATH": str(folder), "DATABASE_URL": url, "SHOP_ID": "template"})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return folder / "template.sqlite3"


@pytest.fixture
def shops(sqlite_template, tmp_path):
    """Shop A (SQLite, seeded, served on loopback) and shop B (empty; the CI server database
    when one is configured)."""
    a = _shop(sqlite_template, tmp_path / "a", "shopa")
    b = _shop(sqlite_template, tmp_path / "b", "shopb", TEST_DB)
    with a.app_context():
        from impexmod.factories.seed import seed_catalog

        seed_catalog(db.engine, 40, seed=11)
    with live_server(a) as base:
        a.config["PUBLIC_URL"] = base
        yield a, b
    for app in (a, b):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _run(app, task_id: int) -> Run:
    with app.app_context():
        run = jobs.start_run(tasks.get_task(task_id), inline=True)
        assert run.status == "succeeded", (run.error, run.log)
        return run


def _stock_by_key(app) -> dict:
    """{(link type, key, source): quantity} from a full stock feed of the shop."""
    with app.app_context():
        task = exporters.create_exporter(f"check {random.random()}", "stock")
        jobs.start_run(task, inline=True)
        store = get_store()
        root = parse_feed(store.path(task.id, store.current(task.id).name).read_bytes())
        tasks.delete_task(task)
    out = {}
    for stock in root.findall("stock"):
        link = stock.find("product")
        if link is None:
            link = stock.find("combination")
        out[(link.tag, link.text, link.get("source"))] = int(stock.findtext("quantity"))
    return out


def _change_stock(app, rng: random.Random, count: int) -> None:
    with app.app_context():
        ids = db.session.execute(select(StockAvailable.id)).scalars().all()
        for _ in range(count):
            row = db.session.get(StockAvailable, rng.choice(ids))
            if rng.random() < 0.7:
                row.quantity = max(0, row.quantity + rng.randint(-5, 5))
            else:
                row.quantity = rng.randint(0, 50)
            db.session.commit()


def test_b_keeps_its_stock_equal_to_a_through_missed_runs_and_expired_deltas(shops):
    a, b = shops
    rng = random.Random(4)
    with a.app_context():
        products = exporters.create_exporter("products", "products").id
        stock = exporters.create_exporter("stock deltas", "stock", strategy="incremental").id
        full_stock = exporters.create_exporter("stock snapshot", "stock").id
        exporters.set_full_companion(tasks.get_task(stock), full_stock)
        urls = {t: tasks.feed_url(tasks.get_task(t)) for t in (products, stock)}
    _run(a, products)
    _run(a, stock)
    with b.app_context():
        product_importer = create_importer("A's catalog", urls[products]).id
        stock_importer = create_importer("A's stock", urls[stock], modes="update").id
    _run(b, product_importer)
    _run(b, stock_importer)
    assert _stock_by_key(b) == _stock_by_key(a)

    # A few hundred changes; A exports often, B polls at its own pace and misses runs.
    for round_ in range(12):
        exporter = None
        if round_ % 3 == 0:  # some changes are committed while an export runs
            exporter = threading.Thread(target=_run, args=(a, stock))
            exporter.start()
        _change_stock(a, rng, 25)
        if exporter:
            exporter.join()
        _run(a, stock)
        if round_ % 4 != 1:  # B misses some of A's runs, then catches up on all of them
            _run(b, stock_importer)
    _run(a, stock)
    _run(b, stock_importer)
    expected = _stock_by_key(a)
    assert _stock_by_key(b) == expected
    with b.app_context():
        state = db.session.get(ImportSourceState, stock_importer)
        assert state.speaks_cursor and state.cursor

    # B falls far behind and the deltas it needs are removed: it takes the full feed, then
    # continues with the deltas after it.
    _run(b, stock_importer)
    for _ in range(3):
        _change_stock(a, rng, 20)
        _run(a, stock)
    _run(a, full_stock)
    _change_stock(a, rng, 20)
    _run(a, stock)
    with a.app_context():
        from impexmod.dispatch.retention import purge_run_files

        purge_run_files(days=-1)  # every file but the current one goes
    run = _run(b, stock_importer)
    assert _stock_by_key(b) == _stock_by_key(a)
    with b.app_context():
        assert "up to change epoch" in db.session.get(Run, run.id).log
