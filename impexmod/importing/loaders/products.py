"""Products: the product row, translations, category links, tags and images (stock,
combinations and specific prices nested in a product have their own loaders)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, select, tuple_

from impexmod.importing.bulk import insert_values, insert_values_ids, select_in
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
from impexmod.importing.loaders.common import (
    finish,
    lang_items,
    tax_rate,
    without_tax,
    write_langs,
)
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
    langs = chunk.langs
    every = list(langs.values())
    wanted: dict[Entry, set[tuple[int, str]]] = {}
    for entry in todo:
        tags = set()
        for lang, name in entry.children.get("tag", ()):
            if lang is None:
                tags.update([(id_lang, name) for id_lang in every if id_lang])
            else:
                id_lang = langs.get(lang)
                if id_lang:
                    tags.add((id_lang, name))
        if tags or entry.flags.get("remove-missing-tags"):
            wanted[entry] = tags
    if not wanted:
        return
    conn = chunk.conn
    names = sorted({n for tags in wanted.values() for _, n in tags})
    # Tag names compare without case: MariaDB's collation would call "Red" and "red" one tag.
    ids = {(id_lang, name.lower()): id_ for id_, id_lang, name in _tag_rows(conn, names)}
    if names:
        for id_, id_lang, name in _tag_rows(conn, [n.lower() for n in names]):
            ids.setdefault((id_lang, name.lower()), id_)
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
    for id_product, id_tag in select_in(
        conn, table, ["id_product", "id_tag"], {}, "id_product", _old(wanted)
    ):
        have[id_product].add(id_tag)
    remove_all = "tags" in chunk.options.remove_missing
    rows, gone = [], []
    for entry, tags in wanted.items():
        pid = entry.local_id
        want = {ids[(lang, n.lower())] for lang, n in tags}
        old = have.get(pid, set())
        added = want - old
        rows.extend([(pid, t) for t in sorted(added)])
        removed = set()
        if remove_all or entry.flags.get("remove-missing-tags"):
            removed = old - want
            gone.extend((pid, t) for t in removed)
        if added or removed:
            entry.flags.setdefault("changes", {})["tags"] = (
                len(old),
                len(old | added) - len(removed),
            )
    insert_values(conn, table, ["id_product", "id_tag"], rows)
    if gone:
        conn.execute(delete(table).where(tuple_(table.c.id_product, table.c.id_tag).in_(gone)))


def _tag_rows(conn, names: list[str]) -> list[tuple]:
    """(id, id_lang, name) of the tags named so (exactly, as the database compares)."""
    return select_in(conn, Tag.__table__, ["id", "id_lang", "name"], {}, "name", sorted(set(names)))


class _Legends:
    """What ``write_langs`` reads of an entry, for an image's legends."""

    __slots__ = ("flags", "langs")

    def __init__(self, legend: dict):
        self.langs = {"legend": legend}
        self.flags: dict = {}


def _images(chunk: Chunk, todo: list[Entry]) -> None:
    remove = "images" in chunk.options.remove_missing
    wanted = {}
    for entry in todo:
        images = entry.children.get("image")
        if images or remove:
            wanted[entry] = images or ()
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
        rows = have.get(pid)
        # A product created here has no image yet, and its changes make no diff.
        changes = entry.flags.setdefault("changes", {}) if rows is not None else None
        if rows is None:
            rows = {}
            if entry.action != "create":
                changes = entry.flags.setdefault("changes", {})
        top = max((r.position for r in rows.values()), default=0)
        for image in images:
            url = image["url"]
            row = rows.get(url)
            position, cover = image["position"], image["cover"]
            if row is None:
                top = position if position is not None else top + 1
                new.append((image, (pid, url, top, bool(cover))))
                if changes is not None:
                    changes[f"image {url}"] = (None, "added")
                continue
            values = {}
            if position is not None:
                values["position"] = position
            if cover is not None:
                values["cover"] = cover
            diff = changes_of(row, values)
            if diff:
                updates.append(({"id": row.id}, {k: v for k, (_, v) in diff.items()}))
                changes[f"image {url}"] = ("changed", "changed")
            if image["legend"]:
                legends.append((_Legends(image["legend"]), row.id, False))
        if remove:
            urls = {i["url"] for i in images}
            for url, row in rows.items():
                if url not in urls:
                    gone.append(row.id)
                    changes[f"image {url}"] = ("present", None)
    columns = ["id_product", "url", "position", "cover"]
    ids = insert_values_ids(conn, table, columns, [r for _, r in new])
    # A new image's legends are new rows, nothing to compare: (id_image, id_lang, legend) as
    # ``write_langs`` would insert them.
    langs = chunk.langs
    every = list(langs.values())
    new_legends = []
    for (image, _), id_ in zip(new, ids, strict=True):
        image["id"] = id_
        legend = image["legend"]
        if legend:
            new_legends.extend(
                (id_, id_lang, value) for id_lang, value in lang_items(legend, langs, every)
            )
    update_rows(conn, table, updates)
    insert_values(conn, ImageLang.__table__, ["id_image", "id_lang", "legend"], new_legends)
    write_langs(chunk, ImageLang.__table__, "id_image", legends, required=(), slug=None)
    if gone:
        conn.execute(delete(table).where(table.c.id.in_(gone)))
