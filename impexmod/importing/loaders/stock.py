"""Stock: ``mode="set"`` or ``"delta"``, standalone (linked to a product or combination) or nested
in a product or a combination. Several lines for one target in a chunk apply in order."""

from __future__ import annotations

from impexmod.importing.bulk import select_in
from impexmod.importing.context import Chunk, defaults, insert_ids, load_by, update_rows
from impexmod.importing.entry import Entry, Ref
from impexmod.models import Combination, StockAvailable

TABLE = StockAvailable.__table__


def _standalone_links(entry: Entry) -> list:
    links = [entry.links.get("combination"), entry.links.get("product")]
    links = [link for link in links if link is not None]
    if not links and entry.ref is not None:
        # Module v1 stock lines carried the product's key on the <stock> element itself.
        ref = entry.ref
        links = [
            Ref("product", ref.reference, ref.source),
            Ref("combination", ref.reference, ref.source),
        ]
        entry.flags["own_key_is_target"] = True
    return links


def refs(entry: Entry) -> list[Ref]:
    """The refs a stock entry needs resolved."""
    if entry.parent is not None:
        return []
    return [link for link in _standalone_links(entry) if isinstance(link, Ref)]


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Find what each stock line counts: (product, combination or 0)."""
    combos = [chunk.target(e.links.get("combination")) for e in entries if e.parent is None]
    combos = [c for c in combos if c.__class__ is int]
    owners = dict(
        select_in(chunk.conn, Combination.__table__, ["id", "id_product"], {}, "id", combos)
    )
    for entry in entries:
        if chunk.dead(entry):
            continue
        if "quantity" not in entry.values or entry.values["quantity"] is None:
            chunk.fail(entry, "quantity", "a stock line needs a <quantity>")
            continue
        parent = entry.parent
        if parent is not None:
            entry.flags["target"] = ("entry", parent)
            entry.action = "update"
            continue
        target = None
        for link in _standalone_links(entry):
            found = chunk.target(link)
            if found is None:
                continue
            if link.kind == "combination":
                if isinstance(found, int):
                    if found not in owners:
                        owners.update(
                            {
                                r.id: r.id_product
                                for r in load_by(chunk.conn, Combination.__table__, "id", [found])
                            }
                        )
                    target = ("ids", owners.get(found), found)
                else:
                    target = ("entry", found)
            else:
                target = ("ids", found, 0) if isinstance(found, int) else ("entry", found)
            break
        if target is None or (target[0] == "ids" and target[1] is None):
            names = [link.label() for link in _standalone_links(entry)]
            chunk.fail(
                entry, "product", f"unknown {names[0] if names else 'product'}: no stock to set"
            )
            continue
        entry.flags["target"] = target
        entry.action = "update"


def _pair(target) -> tuple[int, int] | None:
    if target[0] == "ids":
        return target[1], target[2]
    owner = target[1]
    if owner.local_id is None or owner.action in ("skip", None):
        return None
    if owner.kind == "combination":
        return owner.flags.get("product_id"), owner.local_id
    return owner.local_id, 0


def _new_owner(entry: Entry) -> bool:
    target = entry.flags["target"]
    return target[0] == "entry" and target[1].action == "create"


Pair = tuple[int, int]  # (id_product, id_product_attribute): what a stock row counts


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Set or move quantities with one bulk update (and inserts for missing stock rows)."""
    lines = _lines(chunk, entries)
    if not lines:
        return
    rows = _stored(chunk.conn, lines)
    final, owners = _final_quantities(lines, rows)
    new = _update(chunk, final, owners, rows)
    _insert(chunk, new)
    _register_keys(chunk, lines)


def _lines(chunk: Chunk, entries: list[Entry]) -> list[tuple[Entry, Pair]]:
    """The entries to write, each with the product and combination it counts."""
    lines = []
    for entry in entries:
        if chunk.dead(entry) or entry.action != "update":
            continue
        pair = _pair(entry.flags["target"])
        if pair is None or pair[0] is None:
            chunk.count("stock", "skipped")
            continue
        lines.append((entry, pair))
    return lines


def _stored(conn, lines: list[tuple[Entry, Pair]]) -> dict[Pair, tuple]:
    """The stock rows there are already, by what they count."""
    rows: dict[Pair, tuple] = {}
    # A product or combination created in this chunk has no stock row yet: nothing to read.
    products = sorted({p for entry, (p, _) in lines if not _new_owner(entry)})
    names = ["id", "id_product", "id_product_attribute", "quantity", "out_of_stock"]
    for row in select_in(conn, TABLE, names, {}, "id_product", products):
        rows[(row[1], row[2])] = row
    return rows


def _final_quantities(lines, rows) -> tuple[dict[Pair, int], dict[Pair, Entry]]:
    """The quantity each row ends with (deltas added up, in order), and the entry that owns it
    (the first one; it carries the last ``out_of_stock`` given)."""
    final: dict[Pair, int] = {}
    owners: dict[Pair, Entry] = {}
    for entry, pair in lines:
        start = final.get(pair)
        if start is None:
            start = rows[pair][3] if pair in rows else 0
        quantity = int(entry.values["quantity"])
        final[pair] = start + quantity if entry.flags.get("stock_mode") == "delta" else quantity
        owner = owners.setdefault(pair, entry)
        if entry.values.get("out_of_stock") is not None:
            owner.flags["out_of_stock"] = entry.values["out_of_stock"]
    return final, owners


def _update(chunk: Chunk, final, owners, rows) -> list[tuple[Pair, Entry, dict]]:
    """Update the stored rows that change; the rows to create (pair, owner, values)."""
    updates, new = [], []
    upserts = chunk.log.upserts
    seen = chunk.log.seen["stock"]
    diffs = chunk.keep_diffs
    updated = unchanged = 0
    base = defaults(TABLE)
    for pair, quantity in final.items():
        entry = owners[pair]
        row = rows.get(pair)
        if row is None:
            values = {"id_product": pair[0], "id_product_attribute": pair[1], "quantity": quantity}
            new.append((pair, entry, {**base, **values}))
            continue
        stock_id = row[0]
        entry.local_id = stock_id
        seen.add(stock_id)
        values = {}
        if row[3] != quantity:
            values["quantity"] = quantity
        out = entry.flags.get("out_of_stock")
        if out is not None and row[4] != out:
            values["out_of_stock"] = out
        if not values:
            unchanged += 1
            continue
        updates.append(({"id": stock_id}, values))
        updated += 1
        upserts.add(("stock", stock_id))
        upserts.add(("product", pair[0]))
        if pair[1]:
            upserts.add(("combination", pair[1]))
        if diffs:
            old = {"quantity": row[3], "out_of_stock": row[4]}
            chunk.diff(entry, "update", {k: (old[k], v) for k, v in values.items()})
    if updated:
        chunk.count("stock", "updated", updated)
    if unchanged:
        chunk.count("stock", "unchanged", unchanged)
    update_rows(chunk.conn, TABLE, updates)
    return new


def _insert(chunk: Chunk, new: list[tuple[Pair, Entry, dict]]) -> None:
    """Create the missing stock rows."""
    ids = insert_ids(chunk.conn, TABLE, [r for _, _, r in new])
    for (pair, entry, row), id_ in zip(new, ids, strict=True):
        entry.local_id = id_
        chunk.count("stock", "created")
        if chunk.keep_diffs:
            chunk.diff(entry, "create", {"quantity": (None, row["quantity"])})
        chunk.changed(("stock", id_), ("product", pair[0]), ("combination", pair[1]))
        chunk.seen("stock", id_)


def _register_keys(chunk: Chunk, lines: list[tuple[Entry, Pair]]) -> None:
    """Register the keys of stock entries that name a stock row of their own."""
    for entry, _ in lines:
        if entry.ref is not None and entry.local_id and not entry.flags.get("own_key_is_target"):
            if entry.ref not in chunk.keys.found:
                chunk.log.keys.append(
                    (entry.ref.source, "stock", entry.ref.reference, entry.local_id)
                )
