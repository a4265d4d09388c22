"""Incremental exports: exactly what changed since the previous successful run, deletions
included, and nothing lost when changes are committed during a run or a run fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from impexmod.catalog import identity
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import (
    Combination,
    Language,
    Product,
    ProductLang,
    Run,
    SpecificPrice,
    StockAvailable,
    Task,
    now,
)
from impexmod.runs.feedstore import get_store
from impexmod.schema import validate
from tests.support import parse_feed


def add_product(reference: str, combinations: int = 0, quantity: int = 5) -> Product:
    """A product with an English name, stock, and optional combinations with their stock."""
    product = Product(reference=reference, price=10)
    db.session.add(product)
    db.session.flush()
    db.session.add(
        ProductLang(
            id_product=product.id, id_lang=1, name=reference, link_rewrite=reference.lower()
        )
    )
    db.session.add(StockAvailable(id_product=product.id, quantity=quantity))
    for i in range(combinations):
        combo = Combination(id_product=product.id, reference=f"{reference}-{i}", price=i)
        db.session.add(combo)
        db.session.flush()
        db.session.add(
            StockAvailable(id_product=product.id, id_product_attribute=combo.id, quantity=quantity)
        )
    db.session.commit()
    return product


@pytest.fixture
def shop(app):
    """Two products, one with two combinations."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    return {"plain": add_product("PLAIN"), "combo": add_product("COMBO", combinations=2)}


def run_feed(task: Task):
    """Run the exporter and return the root of the feed it published."""
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    data = store.path(task.id, store.current(task.id).name).read_bytes()
    validate(data)
    return parse_feed(data)


def refs(root, tag: str) -> list[str]:
    """The `reference` of every `tag` element directly under the root."""
    return [e.findtext("reference") for e in root.findall(tag)]


def deletes(root) -> list[tuple[str, str, str]]:
    """Every <delete> as (type, supplier-reference, source)."""
    return [
        (d.get("type"), d.get("supplier-reference"), d.get("source"))
        for d in root.findall("delete")
    ]


def test_first_run_is_complete_and_a_second_without_change_is_empty(shop):
    task = exporters.create_exporter("inc", "products", strategy="incremental")
    first = run_feed(task)
    assert refs(first, "product") == ["PLAIN", "COMBO"]
    assert first.get("strategy") == "full"
    second = run_feed(task)
    assert len(second) == 0
    assert second.get("strategy") == "incremental"
    assert int(second.get("window-from")) == int(first.get("window-to"))
    assert int(second.get("window-to")) > int(second.get("window-from"))
    assert second.get("since")


def test_changes_created_and_changed_entities_only(shop):
    task = exporters.create_exporter("inc", "products", strategy="incremental")
    run_feed(task)
    shop["plain"].price = 99
    add_product("NEW")
    root = run_feed(task)
    assert sorted(refs(root, "product")) == ["NEW", "PLAIN"]
    assert root.find("product/price").text == "99.000000"
    # A translation alone changes the product too.
    db.session.get(ProductLang, (shop["combo"].id, 1)).name = "Renamed"
    db.session.commit()
    assert refs(run_feed(task), "product") == ["COMBO"]


def test_combination_stock_changes_product_combination_and_stock_feeds(shop):
    feeds = {
        name: exporters.create_exporter(name, name, strategy="incremental")
        for name in ("products", "combinations", "stock", "specific_prices")
    }
    for task in feeds.values():
        run_feed(task)
    combo = db.session.query(Combination).filter_by(reference="COMBO-1").one()
    stock = db.session.query(StockAvailable).filter_by(id_product_attribute=combo.id).one()
    stock.quantity = 42
    db.session.add(
        SpecificPrice(id_product=shop["plain"].id, reduction=0.1, reduction_type="percentage")
    )
    db.session.commit()

    assert sorted(refs(run_feed(feeds["products"]), "product")) == ["COMBO", "PLAIN"]
    assert refs(run_feed(feeds["combinations"]), "combination") == ["COMBO-1"]
    stock_feed = run_feed(feeds["stock"])
    assert [s.findtext("quantity") for s in stock_feed.findall("stock")] == ["42"]
    assert stock_feed.find("stock/combination").text == str(combo.id)
    prices = run_feed(feeds["specific_prices"])
    assert [p.findtext("reduction") for p in prices.findall("specificPrice")] == ["0.100000"]


def test_deletions_are_native_delete_elements_with_the_published_key(shop):
    products = exporters.create_exporter("p", "products", strategy="incremental")
    combos = exporters.create_exporter("c", "combinations", strategy="incremental")
    run_feed(products)
    run_feed(combos)
    plain_id, combo_product = shop["plain"].id, shop["combo"]
    combo_ids = sorted(c.id for c in db.session.query(Combination))
    identity.register(
        db.session.connection(), "supplier:Acme", "product", "ACME-77", combo_product.id
    )
    db.session.commit()
    db.session.delete(shop["plain"])
    db.session.delete(combo_product)
    db.session.commit()

    root = run_feed(products)
    assert refs(root, "product") == []
    assert sorted(deletes(root)) == sorted(
        [("product", "ACME-77", "supplier:Acme"), ("product", str(plain_id), "shop:testshop")]
    )
    assert sorted(deletes(run_feed(combos))) == [
        ("combination", str(i), "shop:testshop") for i in combo_ids
    ]
    assert len(run_feed(products)) == 0


def test_a_change_committed_during_a_run_is_in_the_next_run(shop, app, monkeypatch):
    task = exporters.create_exporter("inc", "products", strategy="incremental")
    run_feed(task)
    shop["plain"].price = 11
    db.session.commit()
    plain_id = shop["plain"].id

    from impexmod.entities.products import ProductDescriptor

    original = ProductDescriptor.load
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def load_then_commit_elsewhere(self, ctx, ids):
        records = original(self, ctx, ids)
        # Another process commits a change while this run is writing its feed.
        with Session(engine) as other:
            other.get(Product, plain_id).price = 12
            other.commit()
        return records

    monkeypatch.setattr(ProductDescriptor, "load", load_then_commit_elsewhere)
    during = run_feed(task)
    assert refs(during, "product") == ["PLAIN"]
    monkeypatch.setattr(ProductDescriptor, "load", original)
    engine.dispose()
    after = run_feed(task)
    assert refs(after, "product") == ["PLAIN"]
    assert after.find("product/price").text == "12.000000"


def test_a_failed_run_does_not_move_the_window(shop, monkeypatch):
    task = exporters.create_exporter("inc", "products", strategy="incremental")
    run_feed(task)
    shop["plain"].price = 50
    db.session.commit()
    from impexmod.entities.products import ProductDescriptor

    def broken(self, ctx, record, out):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(ProductDescriptor, "render", broken)
        failed = jobs.start_run(task, inline=True)
    assert failed.status == "failed" and "disk full" in failed.error
    assert refs(run_feed(task), "product") == ["PLAIN"]


def test_exporters_keep_their_own_windows(shop):
    one = exporters.create_exporter("one", "products", strategy="incremental")
    two = exporters.create_exporter("two", "products", strategy="incremental")
    run_feed(one)
    run_feed(two)
    shop["plain"].price = 20
    db.session.commit()
    assert refs(run_feed(one), "product") == ["PLAIN"]
    shop["combo"].price = 30
    db.session.commit()
    assert refs(run_feed(one), "product") == ["COMBO"]
    assert sorted(refs(run_feed(two), "product")) == ["COMBO", "PLAIN"]


def test_a_task_never_runs_twice_at_once_but_a_dead_holder_is_replaced(shop, app):
    task = exporters.create_exporter("inc", "products")
    holder = Run(task_id=task.id, status="running", heartbeat_at=now())
    db.session.add(holder)
    db.session.flush()
    db.session.execute(update(Task).where(Task.id == task.id).values(lock_run_id=holder.id))
    db.session.commit()
    with pytest.raises(jobs.TaskBusy):
        jobs.start_run(task, inline=True)
    assert db.session.query(Run).filter_by(task_id=task.id).count() == 1

    stale = timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 60)
    holder.heartbeat_at = now() - stale
    db.session.commit()
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"
    db.session.refresh(holder)
    assert holder.status == "failed" and "stopped answering" in holder.error
    db.session.refresh(task)
    assert task.lock_run_id is None
