"""Combinations with their attribute groups and attributes (matched by key, then by name),
attribute links, images (by URL, on the product) and ``remove-missing-combinations``."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Table, delete, select, tuple_

from impexmod.importing.bulk import insert_values, select_in
from impexmod.importing.context import (
    Chunk,
    changes_of,
    defaults,
    insert_ids,
    load_by,
    update_rows,
)
from impexmod.importing.entry import Entry
from impexmod.importing.loaders.common import finish, lang_values, write_langs
from impexmod.models import (
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Combination,
    CombinationAttribute,
    CombinationImage,
    Image,
    SpecificPrice,
    StockAvailable,
)

TABLE = Combination.__table__


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Match combinations and find their products."""
    existing = {
        r.id: r for r in load_by(chunk.conn, TABLE, "id", [chunk.match(e) for e in entries])
    }
    chunk.cache["combinations"] = existing
    for entry in entries:
        if chunk.dead(entry):
            continue
        chunk.decide(entry)
        if entry.local_id is not None and entry.local_id not in existing:
            entry.local_id = None
            chunk.decide(entry)
        if entry.parent is not None:
            entry.flags["product"] = entry.parent
            if entry.parent.action not in ("create", "update"):
                entry.action = "skip"
            continue
        link = entry.links.get("id_product")
        product = chunk.target(link)
        if product is None and entry.local_id is not None:
            product = existing[entry.local_id].id_product
        if product is None and entry.action != "skip":
            label = link.label() if link is not None else "product (no <id_product>)"
            chunk.fail(entry, "id_product", f"unknown {label}")
        entry.flags["product"] = product


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Write combinations, then their attributes and images."""
    todo = [e for e in entries if e.action in ("create", "update") and not chunk.dead(e)]
    if not todo:
        _remove_missing(chunk)
        return
    conn = chunk.conn
    existing = chunk.cache["combinations"]
    attributes = _attributes(chunk, todo)
    base = defaults(TABLE)
    new, updates = [], []
    for entry in todo:
        product = entry.flags["product"]
        pid = product.local_id if isinstance(product, Entry) else product
        entry.flags["product_id"] = pid
        values = dict(entry.values)
        if entry.parent is not None and values.get("price") is not None:
            # Nested in its product, a combination gives its final price; we store the impact.
            values["price"] = values["price"] - entry.parent.flags.get("base_price", 0)
        values["id_product"] = pid
        row = existing.get(entry.local_id)
        if row is None:
            new.append((entry, {**base, **values}))
            continue
        diff = changes_of(row, values)
        entry.flags.setdefault("changes", {}).update(diff)
        if diff:
            updates.append(({"id": entry.local_id}, {k: v for k, (_, v) in diff.items()}))
    for (entry, _), id_ in zip(new, insert_ids(conn, TABLE, [r for _, r in new]), strict=True):
        chunk.created(entry, id_)
    update_rows(conn, TABLE, updates)
    for entry in todo:
        if entry.action == "update":
            chunk.matched(entry)
    _links(chunk, todo, attributes)
    _images(chunk, todo)
    for entry in todo:
        if entry.action == "create" or entry.flags.get("changes"):
            chunk.changed(("combination", entry.local_id), ("product", entry.flags["product_id"]))
        finish(chunk, entry)
    _remove_missing(chunk)


def _catalog(chunk: Chunk) -> dict:
    """Attribute groups and attributes by lower-case name (small tables, read once per chunk)."""
    conn = chunk.conn
    groups, attrs = {}, {}
    for r in conn.execute(select(AttributeGroupLang.id_attribute_group, AttributeGroupLang.name)):
        groups.setdefault(r.name.lower(), r.id_attribute_group)
    for r in conn.execute(
        select(Attribute.id, Attribute.id_attribute_group, AttributeLang.name).join(
            AttributeLang, AttributeLang.id_attribute == Attribute.id
        )
    ):
        attrs.setdefault((r.id_attribute_group, r.name.lower()), r.id)
    return {"groups": groups, "attributes": attrs}


def _names(chunk: Chunk, entry: Entry) -> list[str]:
    """The entry's names, lower-cased, in the order of ``lang_values``."""
    langs = entry.langs
    if next(iter(langs), None) != "name":
        return [v["name"].lower() for v in lang_values(chunk, entry).values() if v.get("name")]
    # The usual case, without building every translation: when ``name`` comes first, it alone
    # decides the order of the languages.
    shop = chunk.langs
    per_lang = langs["name"]
    names: dict[int, str] = {}
    if None in per_lang:
        names = dict.fromkeys(shop.values(), per_lang[None])
    for iso, value in per_lang.items():
        id_lang = shop.get(iso)
        if id_lang is not None:
            names[id_lang] = value
    return [n.lower() for n in names.values() if n]


def _attributes(chunk: Chunk, combos: list[Entry]) -> dict[Entry, list[int]]:
    """Find or create the attribute groups and attributes combinations name."""
    groups = [g for c in combos for g in c.nested("attributeGroup")]
    if not groups:
        return {}
    known = _catalog(chunk)
    _find_or_create(
        chunk,
        known,
        ("attribute_group", AttributeGroup.__table__, AttributeGroupLang.__table__),
        "id_attribute_group",
        groups,
    )
    _find_or_create(
        chunk,
        known,
        ("attribute", Attribute.__table__, AttributeLang.__table__),
        "id_attribute",
        [a for g in groups for a in g.nested("attribute")],
    )
    return {
        c: sorted(
            {
                a.local_id
                for g in c.nested("attributeGroup")
                for a in g.nested("attribute")
                if a.local_id
            }
        )
        for c in combos
    }


def _find_or_create(
    chunk: Chunk, known: dict, what: tuple[str, Table, Table], fk: str, items: list[Entry]
) -> None:
    """Match the groups (or the attributes) of a chunk by key or name; create the others."""
    kind, table, lang = what
    new, twins = [], []
    planned: dict = {}
    index = "groups" if kind == "attribute_group" else "attributes"
    for entry in items:
        if entry.ref:
            # The same group or attribute again (the usual case: every combination names
            # its product's few): the first mark decides, no names needed.
            first = planned.get(("ref", entry.ref))
            if first is not None:
                twins.append((entry, first))
                continue
        scope = () if kind == "attribute_group" else (entry.parent.local_id,)
        names = _names(chunk, entry)
        marks = ([("ref", entry.ref)] if entry.ref else []) + [("name", *scope, n) for n in names]
        first = next((planned[m] for m in marks if m in planned), None)
        if first is not None:  # the same group or attribute again in this chunk
            twins.append((entry, first))
            continue
        id_ = chunk.match(entry)
        if id_ is None:
            for name in names:
                id_ = known[index].get(name if not scope else (scope[0], name))
                if id_:
                    break
        entry.local_id = id_
        for mark in marks:
            planned[mark] = entry
        if id_ is None:
            if not names:
                chunk.fail(entry, "name", f"a new {kind.replace('_', ' ')} needs a <name>")
            values = {**defaults(table), **entry.values}
            if kind == "attribute":
                values["id_attribute_group"] = entry.parent.local_id
            if kind == "attribute_group":
                values.setdefault("group_type", "select")
            new.append((entry, values))
        else:
            chunk.matched(entry)
    for (entry, _), id_ in zip(
        new, insert_ids(chunk.conn, table, [v for _, v in new]), strict=True
    ):
        chunk.created(entry, id_)
        chunk.count(kind, "created")
    for entry, first in twins:
        entry.local_id = first.local_id
        chunk.matched(entry)
    required = ("name", "public_name") if kind == "attribute_group" else ("name",)
    for entry in [e for e, _ in new]:
        if kind == "attribute_group" and "public_name" not in entry.langs and "name" in entry.langs:
            entry.langs["public_name"] = dict(entry.langs["name"])
    write_langs(
        chunk, lang, fk, [(e, e.local_id, True) for e, _ in new], required=required, slug=None
    )


def _links(chunk: Chunk, combos: list[Entry], attributes: dict[Entry, list[int]]) -> None:
    wanted = {c: ids for c, ids in attributes.items() if ids}
    if not wanted:
        return
    table = CombinationAttribute.__table__
    have = defaultdict(set)
    # A combination created in this chunk has no links yet: nothing to read for it.
    old = [c.local_id for c in wanted if c.action != "create"]
    for id_attribute, cid in select_in(
        chunk.conn, table, ["id_attribute", "id_product_attribute"], {}, "id_product_attribute", old
    ):
        have[cid].add(id_attribute)
    rows, gone = [], []
    for combo, ids in wanted.items():
        cid, want = combo.local_id, set(ids)
        if want != have[cid]:
            rows.extend([(a, cid) for a in sorted(want - have[cid])])
            gone.extend((a, cid) for a in have[cid] - want)
            if combo.action != "create":
                combo.flags.setdefault("changes", {})["attributes"] = (
                    sorted(have[cid]),
                    sorted(want),
                )
    if gone:
        chunk.conn.execute(
            delete(table).where(
                tuple_(table.c.id_attribute, table.c.id_product_attribute).in_(gone)
            )
        )
    insert_values(chunk.conn, table, ["id_attribute", "id_product_attribute"], rows)


def _images(chunk: Chunk, combos: list[Entry]) -> None:
    wanted = {}
    for combo in combos:
        nested = combo.children.get("image")
        if nested:
            wanted[combo] = [i["url"] for i in nested]
    if not wanted:
        return
    conn = chunk.conn
    images = {}
    products = sorted({c.flags["product_id"] for c in wanted} - {None})
    for id_, id_product, url in select_in(
        conn, Image.__table__, ["id", "id_product", "url"], {}, "id_product", products
    ):
        images.setdefault((id_product, url), id_)
    missing = sorted(
        {(c.flags["product_id"], u) for c, urls in wanted.items() for u in urls} - set(images)
    )
    rows = [{"id_product": p, "url": u, "position": 0, "cover": False} for p, u in missing]
    for key, id_ in zip(missing, insert_ids(conn, Image.__table__, rows), strict=True):
        images[key] = id_
    table = CombinationImage.__table__
    have = defaultdict(set)
    old = [c.local_id for c in wanted if c.action != "create"]
    for cid, id_image in select_in(
        conn, table, ["id_product_attribute", "id_image"], {}, "id_product_attribute", old
    ):
        have[cid].add(id_image)
    new = []
    for combo, urls in wanted.items():
        want = {images[(combo.flags["product_id"], u)] for u in urls}
        added = want - have[combo.local_id]
        new.extend([(combo.local_id, i) for i in sorted(added)])
        if added and combo.action != "create":
            combo.flags.setdefault("changes", {})["images"] = (len(have[combo.local_id]), len(want))
    insert_values(conn, table, ["id_product_attribute", "id_image"], new)


def _remove_missing(chunk: Chunk) -> None:
    """Delete the combinations of flagged products that their element no longer lists."""
    remove_all = "combinations" in chunk.options.remove_missing
    products = [
        p
        for p in chunk.cache.get("product_entries", ())
        if p.local_id
        and p.action not in ("skip", None)
        and not chunk.dead(p)
        and (p.flags.get("remove-missing-combinations") or remove_all)
    ]
    if not products:
        return
    conn = chunk.conn
    keep = {c.local_id for p in products for c in p.nested("combination") if c.local_id}
    doomed = [
        r
        for r in load_by(conn, TABLE, "id_product", [p.local_id for p in products])
        if r.id not in keep
    ]
    delete_combinations(chunk, [(r.id, r.id_product) for r in doomed])


def delete_combinations(chunk: Chunk, pairs: list[tuple[int, int]]) -> None:
    """Delete combinations with their stock rows and specific prices, recording it all."""
    if not pairs:
        return
    conn = chunk.conn
    ids = [c for c, _ in pairs]
    stock = load_by(conn, StockAvailable.__table__, "id_product_attribute", ids)
    prices = load_by(conn, SpecificPrice.__table__, "id_product_attribute", ids)
    for r in stock:
        chunk.log.deletes.add(("stock", r.id))
    for r in prices:
        chunk.log.deletes.add(("specific_price", r.id))
    for cid, pid in pairs:
        chunk.log.deletes.add(("combination", cid))
        chunk.changed(("product", pid))
    chunk.count("combination", "deleted", len(pairs))
    for table, column in (
        (StockAvailable.__table__, "id_product_attribute"),
        (SpecificPrice.__table__, "id_product_attribute"),
        (TABLE, "id"),
    ):
        for start in range(0, len(ids), 900):
            conn.execute(delete(table).where(table.c[column].in_(ids[start : start + 900])))
