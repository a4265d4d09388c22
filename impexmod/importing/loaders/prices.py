"""Specific prices, standalone (``id_product`` link) or nested in their product."""

from __future__ import annotations

from impexmod.importing.context import Chunk, changes_of, defaults, insert_ids, load_by, update_rows
from impexmod.importing.entry import Entry
from impexmod.importing.loaders.common import finish
from impexmod.models import SpecificPrice

TABLE = SpecificPrice.__table__


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Match specific prices and find their products and combinations."""
    existing = {
        r.id: r for r in load_by(chunk.conn, TABLE, "id", [chunk.match(e) for e in entries])
    }
    chunk.cache["specific_prices"] = existing
    for entry in entries:
        if chunk.dead(entry):
            continue
        chunk.decide(entry)
        if entry.local_id is not None and entry.local_id not in existing:
            entry.local_id = None
            chunk.decide(entry)
        if entry.parent is not None:
            product = entry.parent
            if product.action not in ("create", "update"):
                entry.action = "skip"
        else:
            link = entry.links.get("id_product")
            product = chunk.target(link)
            if product is None and entry.local_id is not None:
                product = existing[entry.local_id].id_product
            if product is None and entry.action != "skip":
                chunk.fail(entry, "id_product", f"unknown {link.label() if link else 'product'}")
                continue
        entry.flags["product"] = product
        link = entry.links.get("id_product_attribute")
        if link is not None and chunk.target(link) is None and entry.action != "skip":
            chunk.fail(entry, "id_product_attribute", f"unknown {link.label()}")


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Insert or update specific prices in bulk."""
    todo = [e for e in entries if e.action in ("create", "update") and not chunk.dead(e)]
    existing = chunk.cache.get("specific_prices", {})
    base = defaults(TABLE)
    new, updates = [], []
    for entry in todo:
        product = entry.flags["product"]
        values = dict(entry.values)
        values["id_product"] = product.local_id if isinstance(product, Entry) else product
        if "id_product_attribute" in entry.links:
            values["id_product_attribute"] = chunk.id_of(entry.links["id_product_attribute"]) or 0
        row = existing.get(entry.local_id)
        if row is None:
            new.append((entry, {**base, **values}))
            continue
        diff = changes_of(row, values)
        entry.flags.setdefault("changes", {}).update(diff)
        if diff:
            updates.append(({"id": entry.local_id}, {k: v for k, (_, v) in diff.items()}))
    for (entry, _), id_ in zip(
        new, insert_ids(chunk.conn, TABLE, [r for _, r in new]), strict=True
    ):
        chunk.created(entry, id_)
    update_rows(chunk.conn, TABLE, updates)
    for entry in todo:
        if entry.action == "update":
            chunk.matched(entry)
        product = entry.flags["product"]
        pid = product.local_id if isinstance(product, Entry) else product
        if entry.action == "create" or entry.flags.get("changes"):
            chunk.changed(("specific_price", entry.local_id), ("product", pid))
        finish(chunk, entry)
