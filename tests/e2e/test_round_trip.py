"""Round trip: every entity exported from a seeded shop, imported into an empty shop and exported
again gives the same feeds, modulo ids (element order) and timestamps."""

from __future__ import annotations

import os

from lxml import etree

from impexmod import entities
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing import import_file
from impexmod.runs.feedstore import get_store
from impexmod.schema import validate
from tests.e2e.test_stock_sync import _shop, sqlite_template  # noqa: F401 (a fixture)

TEST_DB = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")
# Parents first; an entity added later goes last.
IMPORT_ORDER = (
    "categories",
    "products",
    "combinations",
    "specific_prices",
    "stock",
    "tags",
    "customers",
    "orders",
)
GENERATED = ("generated-at", "source", "window-from", "window-to", "since")


def _export_all(app) -> dict[str, bytes]:
    out = {}
    with app.app_context():
        for name in entities.ENTITY_NAMES:
            task = exporters.create_exporter(f"all {name}", name)
            run = jobs.start_run(task, inline=True)
            assert run.status == "succeeded", run.error
            store = get_store()
            out[name] = store.path(task.id, store.current(task.id).name).read_bytes()
            validate(out[name])
    return out


def _normalised(data: bytes) -> list[str]:
    """The entity elements as text, sorted (ids decide the order), without timestamps."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    for el in list(root.iter("date_add", "date_upd")):
        # When an order was placed, or changed state, is data; other dates are bookkeeping.
        if el.tag == "date_upd" or el.getparent().tag not in ("order", "order_history"):
            el.getparent().remove(el)
    for product in root.iter("product"):
        # Tags are listed by name, in the database's collation: SQLite and MariaDB differ.
        tags = product.findall("tag")
        for tag in tags:
            product.remove(tag)
        for tag in sorted(tags, key=lambda t: (t.get("lang"), t.text)):
            product.append(tag)
    return sorted(etree.tostring(child, encoding="unicode") for child in root)


def test_export_import_export_gives_the_same_feeds(sqlite_template, tmp_path):  # noqa: F811
    a = _shop(sqlite_template, tmp_path / "a", "shopa")
    b = _shop(sqlite_template, tmp_path / "b", "shopb", TEST_DB)
    with a.app_context():
        from impexmod.factories.seed import seed_catalog

        seed_catalog(db.engine, 60, seed=5)
    first = _export_all(a)
    order = sorted(first, key=lambda n: IMPORT_ORDER.index(n) if n in IMPORT_ORDER else 99)
    with b.app_context():
        for name in order:
            path = tmp_path / f"{name}.xml"
            path.write_bytes(first[name])
            report = import_file(path)
            assert report.ok, (name, [str(e) for e in report.errors[:5]])
    second = _export_all(b)
    for name in first:
        assert root_attrs(first[name]) == root_attrs(second[name])
        expected, got = _normalised(first[name]), _normalised(second[name])
        assert len(expected) == len(got), name
        for want, have in zip(expected, got, strict=True):
            assert want == have, name
    for app in (a, b):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def root_attrs(data: bytes) -> dict:
    """The root attributes that do not depend on when or where the feed was made."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    return {k: v for k, v in root.attrib.items() if k not in GENERATED}
