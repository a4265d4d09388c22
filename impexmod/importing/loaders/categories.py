"""Categories: keyed entries (nested = sub-categories, ``id_parent`` links) and category paths."""

from __future__ import annotations

from sqlalchemy import select

from impexmod.importing.context import Chunk, changes_of, defaults, insert_ids, load_by, update_rows
from impexmod.importing.entry import Entry
from impexmod.importing.loaders.common import finish, slugify, write_langs
from impexmod.models import Category, CategoryLang

TABLE = Category.__table__
LANG = CategoryLang.__table__


def is_link_only(entry: Entry) -> bool:
    """A bare ``<category supplier-reference=".."/>`` names a category; it carries no data."""
    return not entry.values and not entry.langs and not entry.links and not entry.children


def root_category(chunk: Chunk) -> int | None:
    """The shop's root category ("Home")."""
    if "root" not in chunk.cache:
        chunk.cache["root"] = chunk.conn.execute(
            select(Category.id)
            .where(Category.id_parent.is_(None), Category.is_root_category.is_(True))
            .order_by(Category.id)
            .limit(1)
        ).scalar()
    return chunk.cache["root"]


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Match categories; a link-only one that matches nothing is dropped with a warning."""
    for entry in entries:
        if chunk.dead(entry):
            continue
        chunk.decide(entry)
        if is_link_only(entry):
            if entry.local_id is None:
                chunk.pending.pop(entry.ref, None)
                chunk.warn(entry, "category", f"unknown {entry.ref.label()}: link skipped")
            entry.action = "link"
            continue
        if entry.action == "create" and entry.local_id is None:
            parentless = entry.parent is None or entry.parent.kind != "category"
            if (
                parentless
                and "id_parent" not in entry.links
                and entry.values.get("is_root_category")
            ):
                # A feed's root category is this shop's root, not a second one.
                root = root_category(chunk)
                if root is not None:
                    entry.local_id = root
                    entry.action = "update" if chunk.options.update else "skip"
                    chunk.pending.pop(entry.ref, None)
                    chunk.matched(entry)
                    continue
            if not entry.langs.get("name"):
                chunk.fail(entry, "name", "a new category needs a <name>")


def _parent(chunk: Chunk, entry: Entry):
    if entry.parent is not None and entry.parent.kind == "category":
        return entry.parent
    if "id_parent" in entry.links:
        link = entry.links["id_parent"]
        target = chunk.target(link)
        if target is None and link is not None:
            chunk.warn(entry, "id_parent", f"unknown parent {link.label()}: placed under the root")
            entry.links["id_parent"] = None
            return root_category(chunk)
        return target
    return None if entry.values.get("is_root_category") else ...


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Write categories parents first, in waves."""
    todo = [e for e in entries if e.action in ("create", "update") and not chunk.dead(e)]
    parents = {e: _parent(chunk, e) for e in todo}
    while todo:
        wave = [
            e
            for e in todo
            if not isinstance(parents[e], Entry)
            or parents[e].local_id is not None
            or parents[e].action not in ("create", "update")
        ]
        if not wave:  # a cycle: attach what is left to the root
            wave = todo
        _write(chunk, wave, parents)
        todo = [e for e in todo if e not in set(wave)]


def _write(chunk: Chunk, wave: list[Entry], parents: dict) -> None:
    conn = chunk.conn
    parent_ids = {}
    for entry in wave:
        parent = parents[entry]
        if parent is ...:
            parent = None if entry.local_id else root_category(chunk)
        parent_ids[entry] = parent.local_id if isinstance(parent, Entry) else parent
    depth = {r.id: r.level_depth for r in load_by(conn, TABLE, "id", parent_ids.values())}
    existing = {r.id: r for r in load_by(conn, TABLE, "id", [e.local_id for e in wave])}
    base = defaults(TABLE)
    new, updates = [], []
    for entry in wave:
        values = dict(entry.values)
        parent_id = parent_ids[entry]
        if parents[entry] is not ... or entry.local_id is None:
            values["id_parent"] = parent_id
        if "level_depth" not in values and "id_parent" in values:
            values["level_depth"] = depth.get(parent_id, -1) + 1 if parent_id else 0
        if entry.local_id is None or entry.local_id not in existing:
            entry.local_id = None
            entry.action = "create"
            new.append((entry, {**base, **values}))
            continue
        diff = changes_of(existing[entry.local_id], values)
        entry.flags.setdefault("changes", {}).update(diff)
        if diff:
            updates.append(({"id": entry.local_id}, {k: v for k, (_, v) in diff.items()}))
    for entry, id_ in zip(new, insert_ids(conn, TABLE, [row for _, row in new]), strict=True):
        chunk.created(entry[0], id_)
    update_rows(conn, TABLE, updates)
    write_langs(chunk, LANG, "id_category", [(e, e.local_id, e.action == "create") for e in wave])
    for entry in wave:
        if entry.action == "create" or entry.flags.get("changes"):
            chunk.changed(("category", entry.local_id))
        finish(chunk, entry)


def ensure_path(chunk: Chunk, names: list[str], origin) -> int:
    """The category at the end of a path of names under the root, created where missing."""
    cache = chunk.cache.setdefault("paths", {})
    parent = root_category(chunk)
    depth = None
    for name in names:
        key = (parent, name.lower())
        if key not in cache:
            found = chunk.conn.execute(
                select(Category.id)
                .join(CategoryLang, CategoryLang.id_category == Category.id)
                .where(
                    Category.id_parent.is_(None)
                    if parent is None
                    else Category.id_parent == parent,
                    CategoryLang.name == name,
                )
                .order_by(Category.id)
                .limit(1)
            ).scalar()
            if found is None:
                if depth is None:
                    depth = (
                        chunk.conn.execute(
                            select(Category.level_depth).where(Category.id == parent)
                        ).scalar()
                        if parent
                        else -1
                    )
                row = {**defaults(TABLE), "id_parent": parent, "level_depth": (depth or 0) + 1}
                found = insert_ids(chunk.conn, TABLE, [row])[0]
                entry = Entry("category", None, origin, langs={"name": {None: name[:128]}})
                write_langs(chunk, LANG, "id_category", [(entry, found, True)])
                chunk.changed(("category", found))
                chunk.count("category", "created")
            cache[key] = found
        parent = cache[key]
        depth = None
    return parent


__all__ = ["plan", "apply", "ensure_path", "is_link_only", "root_category", "slugify"]
