"""Products: the product row, translations, category links, tags and images (stock,
combinations and specific prices nested in a product have their own loaders)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, select, tuple_

from impexmod.importing.context import (
    Chunk,
    changes_of,
    defaults,
    insert_ids,
    insert_rows,
    load_by,
    update_rows,
)
from impexmod.importing.entry import Entry
from impexmod.importing.loaders.categories import ensure_path
from impexmod.importing.loaders.common import finish, tax_rate, without_tax, write_langs
from impexmod.models import (
    CategoryProduct,
    Image,
    ImageLang,
    Manufacturer,
    Product,
    ProductLang,
    ProductTag,
    Tag,
)

TABLE = Product.__table__
PRICES = ("price", "wholesale_price")


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Match products and check what a new one needs."""
    existing = {
        r.id: r for r in load_by(chunk.conn, TABLE, "id", [chunk.match(e) for e in entries])
    }
    chunk.cache["products"] = existing
    for entry in entries:
        chunk.decide(entry)
        if entry.local_id is not None and entry.local_id not in existing:
            entry.local_id = None
            chunk.decide(entry)
        if entry.action == "create" and not entry.langs.get("name"):
            chunk.fail(entry, "name", "a new product needs a <name>")
        elif entry.flags.get("tax_include") and entry.action != "skip":
            row = existing.get(entry.local_id)
            group = entry.values.get("id_tax_rules_group", row.id_tax_rules_group if row else 1)
            rate = tax_rate(group)
            if rate is None:
                chunk.fail(
                    entry, "id_tax_rules_group", f"tax rules group {group} has no known rate"
                )
            else:
                for name in PRICES:
                    if entry.values.get(name) is not None:
                        entry.values[name] = without_tax(entry.values[name], rate)


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Write the products of a chunk and what hangs directly on them."""
    conn = chunk.conn
    todo = [e for e in entries if e.action in ("create", "update") and not chunk.dead(e)]
    existing = chunk.cache["products"]
    base = defaults(TABLE)
    new, updates = [], []
    for entry in todo:
        values = dict(entry.values)
        _links(chunk, entry, values)
        row = existing.get(entry.local_id)
        if row is None:
            new.append((entry, {**base, **values}))
            entry.flags["base_price"] = values.get("price", base["price"])
            continue
        entry.flags["base_price"] = values.get("price", row.price)
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
    write_langs(
        chunk,
        ProductLang.__table__,
        "id_product",
        [(e, e.local_id, e.action == "create") for e in todo if e.langs or e.action == "create"],
    )
    _categories(chunk, todo)
    _tags(chunk, todo)
    _images(chunk, todo)
    for entry in todo:
        if entry.action == "create" or entry.flags.get("changes"):
            chunk.changed(("product", entry.local_id))
        finish(chunk, entry)


def _old(entries) -> list[int]:
    """Ids of the entries that existed before this chunk (new ones have nothing to read)."""
    return [e.local_id for e in entries if e.action != "create"]


def _links(chunk: Chunk, entry: Entry, values: dict) -> None:
    paths = [ensure_path(chunk, names, entry.origin) for names in entry.nested("categorypath")]
    entry.flags["path_categories"] = paths
    link = entry.links.get("id_category_default")
    if "id_category_default" in entry.links:
        values["id_category_default"] = chunk.id_of(link)
        if link is not None and values["id_category_default"] is None:
            chunk.warn(entry, "id_category_default", f"unknown {link.label()}: not set")
            del values["id_category_default"]
    elif entry.action == "create":
        firsts = [c.local_id for c in entry.nested("category") if c.local_id] + paths
        if firsts:
            values["id_category_default"] = firsts[0]
    if "id_manufacturer" in entry.links:
        values["id_manufacturer"] = _manufacturer(chunk, entry, entry.links["id_manufacturer"])


def _manufacturer(chunk: Chunk, entry: Entry, link) -> int | None:
    if link is None:
        return None
    found = chunk.id_of(link)
    if found is not None:
        return found
    if link.field not in (None, "name"):
        chunk.warn(entry, "id_manufacturer", f"unknown {link.label()}: not set")
        return None
    # Manufacturers are not exported on their own: a brand a feed names but this shop lacks is
    # created, under the feed's name for it, and keyed so that the next feed finds it.
    name = link.value if link.field else f"{link.reference} ({link.source})"
    id_ = insert_ids(
        chunk.conn,
        Manufacturer.__table__,
        [{**defaults(Manufacturer.__table__), "name": name[:64]}],
    )[0]
    chunk.keys.found[link] = id_
    if not link.field:
        chunk.log.keys.append((link.source, "manufacturer", link.reference, id_))
        chunk.warn(entry, "id_manufacturer", f"unknown {link.label()}: created as {name[:64]!r}")
    return id_


def _categories(chunk: Chunk, todo: list[Entry]) -> None:
    wanted = {}
    for entry in todo:
        ids = [c.local_id for c in entry.nested("category") if c.local_id]
        ids += entry.flags.pop("path_categories", [])
        if ids or entry.flags.get("remove-missing-categories"):
            wanted[entry] = list(dict.fromkeys(ids))
    if not wanted:
        return
    conn = chunk.conn
    table = CategoryProduct.__table__
    have = defaultdict(set)
    for r in load_by(conn, table, "id_product", _old(wanted)):
        have[r.id_product].add(r.id_category)
    cats = sorted({c for ids in wanted.values() for c in ids})
    top = (
        dict(
            conn.execute(
                select(CategoryProduct.id_category, func.max(CategoryProduct.position))
                .where(CategoryProduct.id_category.in_(cats))
                .group_by(CategoryProduct.id_category)
            ).all()
        )
        if cats
        else {}
    )
    rows, gone = [], []
    remove_all = "categories" in chunk.options.remove_missing
    for entry, ids in wanted.items():
        pid = entry.local_id
        changes = entry.flags.setdefault("changes", {})
        added = [c for c in ids if c not in have[pid]]
        for category in added:
            top[category] = top.get(category, -1) + 1
            rows.append({"id_category": category, "id_product": pid, "position": top[category]})
        removed = []
        if entry.flags.get("remove-missing-categories") or remove_all:
            removed = sorted(have[pid] - set(ids))
            gone.extend((category, pid) for category in removed)
        if added or removed:
            changes["categories"] = (
                sorted(have[pid]),
                sorted((have[pid] | set(added)) - set(removed)),
            )
    insert_rows(conn, table, rows)
    if gone:
        conn.execute(delete(table).where(tuple_(table.c.id_category, table.c.id_product).in_(gone)))


def _tags(chunk: Chunk, todo: list[Entry]) -> None:
    wanted: dict[Entry, set[tuple[int, str]]] = {}
    for entry in todo:
        tags = set()
        for lang, name in entry.nested("tag"):
            langs = chunk.langs.values() if lang is None else [chunk.langs.get(lang)]
            tags.update((id_lang, name) for id_lang in langs if id_lang)
        if tags or entry.flags.get("remove-missing-tags"):
            wanted[entry] = tags
    if not wanted:
        return
    conn = chunk.conn
    names = sorted({n for tags in wanted.values() for _, n in tags})
    # Tag names compare without case: MariaDB's collation would call "Red" and "red" one tag.
    ids = {(r.id_lang, r.name.lower()): r.id for r in load_by(conn, Tag.__table__, "name", names)}
    if names:
        for r in load_by(conn, Tag.__table__, "name", [n.lower() for n in names]):
            ids.setdefault((r.id_lang, r.name.lower()), r.id)
    missing = sorted(
        {(lang, n) for tags in wanted.values() for lang, n in tags if (lang, n.lower()) not in ids}
    )
    seen_missing = {}
    for id_lang, name in missing:
        seen_missing.setdefault((id_lang, name.lower()), name)
    created = insert_ids(
        conn, Tag.__table__, [{"id_lang": lang, "name": n} for (lang, _), n in seen_missing.items()]
    )
    for ((lang, low), _), id_ in zip(seen_missing.items(), created, strict=True):
        ids[(lang, low)] = id_
        chunk.changed(("tag", id_))
    if created:
        chunk.count("tag", "created", len(created))
    table = ProductTag.__table__
    have = defaultdict(set)
    for r in load_by(conn, table, "id_product", _old(wanted)):
        have[r.id_product].add(r.id_tag)
    rows, gone = [], []
    for entry, tags in wanted.items():
        pid = entry.local_id
        want = {ids[(lang, n.lower())] for lang, n in tags}
        added = want - have[pid]
        rows.extend({"id_product": pid, "id_tag": t} for t in sorted(added))
        removed = set()
        if entry.flags.get("remove-missing-tags") or "tags" in chunk.options.remove_missing:
            removed = have[pid] - want
            gone.extend((pid, t) for t in removed)
        if added or removed:
            entry.flags.setdefault("changes", {})["tags"] = (
                len(have[pid]),
                len(have[pid] | added) - len(removed),
            )
    insert_rows(conn, table, rows)
    if gone:
        conn.execute(delete(table).where(tuple_(table.c.id_product, table.c.id_tag).in_(gone)))


def _images(chunk: Chunk, todo: list[Entry]) -> None:
    remove = "images" in chunk.options.remove_missing
    wanted = {e: e.nested("image") for e in todo if e.nested("image") or remove}
    if not wanted:
        return
    conn = chunk.conn
    table = Image.__table__
    have = defaultdict(dict)
    for r in load_by(conn, table, "id_product", _old(wanted)):
        have[r.id_product].setdefault(r.url, r)
    new, updates, gone, legends = [], [], [], []
    for entry, images in wanted.items():
        pid = entry.local_id
        changes = entry.flags.setdefault("changes", {})
        top = max((r.position for r in have[pid].values()), default=0)
        for image in images:
            row = have[pid].get(image["url"])
            values = {k: image[k] for k in ("position", "cover") if image[k] is not None}
            if row is None:
                top = values.get("position", top + 1)
                new.append(
                    (
                        entry,
                        image,
                        {
                            "id_product": pid,
                            "url": image["url"],
                            "position": top,
                            "cover": bool(values.get("cover")),
                        },
                    )
                )
                changes[f"image {image['url']}"] = (None, "added")
                continue
            diff = changes_of(row, values)
            if diff:
                updates.append(({"id": row.id}, {k: v for k, (_, v) in diff.items()}))
                changes[f"image {image['url']}"] = ("changed", "changed")
            if image["legend"]:
                legends.append(
                    (
                        Entry("image", None, entry.origin, langs={"legend": image["legend"]}),
                        row.id,
                        False,
                    )
                )
        if remove:
            urls = {i["url"] for i in images}
            for url, row in have[pid].items():
                if url not in urls:
                    gone.append(row.id)
                    changes[f"image {url}"] = ("present", None)
    for (entry, image, _), id_ in zip(
        new, insert_ids(conn, table, [r for _, _, r in new]), strict=True
    ):
        legends.append(
            (Entry("image", None, entry.origin, langs={"legend": image["legend"]}), id_, True)
        )
        image["id"] = id_
    update_rows(conn, table, updates)
    write_langs(chunk, ImageLang.__table__, "id_image", legends, required=(), slug=None)
    if gone:
        conn.execute(delete(table).where(table.c.id.in_(gone)))
