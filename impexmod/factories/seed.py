"""A deterministic demo catalog, bulk-inserted batch by batch (``impexmod seed``).

Rows come from the factories in :mod:`impexmod.factories` and go in through Core
``insert(table)`` with explicit ids, in one transaction: a failed seed leaves nothing behind.
Bulk inserts bypass the ORM events of :mod:`impexmod.catalog.changes` on purpose: a seeded
catalog is the starting point, not a change, so no ``entity_change`` rows are written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import factory
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from impexmod.extensions import db
from impexmod.factories import reference
from impexmod.factories.catalog import CatalogBuilder
from impexmod.factories.context import Ids, languages, load_context
from impexmod.factories.sales import SalesBuilder

BATCH_PRODUCTS = 2000  # products generated and inserted at a time: memory stays flat
INSERT_ROWS = 5000  # rows per executemany call

# Insert order: parents before the rows that point at them.
TABLES = [
    "language",
    "category",
    "category_lang",
    "manufacturer",
    "supplier",
    "attribute_group",
    "attribute_group_lang",
    "attribute",
    "attribute_lang",
    "tag",
    "order_state",
    "customer",
    "address",
    "product",
    "product_lang",
    "category_product",
    "product_tag",
    "image",
    "image_lang",
    "product_attribute",
    "product_attribute_combination",
    "product_attribute_image",
    "stock_available",
    "specific_price",
    "product_supplier",
    "identity",
    "orders",
    "order_detail",
    "order_history",
]


class SeedRefused(Exception):
    """The catalog already has products and appending was not asked for."""


@dataclass
class SeedReport:
    """What a seed wrote: rows per table, and how long it took."""

    products: int
    seed: int
    counts: dict[str, int]
    seconds: float


def customer_count(products: int) -> int:
    """Customers seeded along with ``products`` products."""
    return min(2000, max(10, products // 50))


def order_count(products: int) -> int:
    """Orders seeded along with ``products`` products."""
    return max(20, products // 20) if products else 0


def seed_catalog(
    engine: Engine,
    products: int,
    seed: int = 0,
    *,
    append: bool = False,
    batch_size: int = BATCH_PRODUCTS,
    progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Seed ``products`` products (and what goes with them); same arguments, same rows."""
    start = time.perf_counter()
    counts: Counter[str] = Counter()
    factory.random.reseed_random(seed)
    with engine.begin() as conn:
        if not append and conn.execute(select(_table("product").c.id).limit(1)).first():
            raise SeedRefused(
                "the catalog already has products: seed an empty database, or pass --append"
            )
        ids = Ids(_max_ids(conn))
        _insert_reference(conn, ids, counts)
        ctx = load_context(conn)
        catalog, sales = CatalogBuilder(ctx, ids, seed), SalesBuilder(ctx, ids, seed)
        _insert(conn, sales.customers(customer_count(products)), counts)
        total_orders, done = order_count(products), 0
        while done < products:
            size = min(batch_size, products - done)
            rows, sold = catalog.products(size)
            _insert(conn, rows, counts)
            # Orders are spread over the batches so that each sells products of its own batch.
            orders = total_orders * (done + size) // products - total_orders * done // products
            _insert(conn, sales.orders(orders, sold), counts)
            done += size
            if progress:
                progress(done, products)
        if conn.dialect.name == "postgresql":
            advance_sequences(conn, [t for t in counts if "id" in _table(t).c])
    return SeedReport(products, seed, dict(counts), time.perf_counter() - start)


def _table(name: str) -> Table:
    return db.metadata.tables[name]


def _max_ids(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(select(func.max(_table(name).c.id))).scalar() or 0
        for name in TABLES
        if "id" in _table(name).c
    }


def _insert(conn: Connection, rows: dict[str, list[dict]], counts: Counter) -> None:
    for name in TABLES:
        batch = rows.get(name)
        if not batch:
            continue
        for start in range(0, len(batch), INSERT_ROWS):
            conn.execute(insert(_table(name)), batch[start : start + INSERT_ROWS])
        counts[name] += len(batch)


def _is_empty(conn: Connection, name: str) -> bool:
    return conn.execute(select(_table(name).c.id).limit(1)).first() is None


def _insert_reference(conn: Connection, ids: Ids, counts: Counter) -> None:
    """Create the reference data whose table is empty; reuse what is there (with --append)."""
    present = conn.execute(select(_table("language").c.iso_code, _table("language").c.id)).all()
    _insert(
        conn,
        reference.language_rows([iso for iso, _ in present], [id_ for _, id_ in present], ids),
        counts,
    )
    langs = languages(conn)
    builders = {
        "category": lambda: reference.category_rows(ids, langs),
        "manufacturer": lambda: reference.manufacturer_rows(ids),
        "supplier": lambda: reference.supplier_rows(ids),
        "attribute_group": lambda: reference.attribute_rows(ids, langs),
        "tag": lambda: reference.tag_rows(ids, langs),
    }
    for name, build in builders.items():
        if _is_empty(conn, name):
            _insert(conn, build(), counts)
    states = conn.execute(select(_table("order_state").c.name)).scalars().all()
    _insert(conn, reference.order_state_rows(states, ids), counts)


def advance_sequences(conn: Connection, tables: list[str]) -> None:
    """Move PostgreSQL's id sequences past the explicit ids, so ORM inserts do not collide."""
    for name in tables:
        quoted = conn.dialect.identifier_preparer.quote(name)
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:name, 'id'), "
                f"(SELECT MAX(id) FROM {quoted}))"
            ),
            {"name": quoted},
        )
