"""Helpers the loaders share: translations, slugs, tax."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from sqlalchemy import Table

from impexmod.importing.context import Chunk, changes_of, insert_rows, load_by, update_rows
from impexmod.importing.defaults import setting
from impexmod.importing.entry import Entry


def slugify(text: str) -> str:
    """A PrestaShop ``link_rewrite`` from a name."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:128] or "item"


def lang_values(chunk: Chunk, entry: Entry) -> dict[int, dict]:
    """id_lang -> {field: value}; a value without ``lang`` applies to every language."""
    langs = chunk.langs
    out: dict[int, dict] = {}
    for name, per_lang in entry.langs.items():
        if None in per_lang:
            value = per_lang[None]
            for id_lang in langs.values():
                values = out.get(id_lang)
                if values is None:
                    out[id_lang] = {name: value}
                else:
                    values[name] = value
        for iso, value in per_lang.items():
            id_lang = langs.get(iso)  # None (every language) is no key of it
            if id_lang is not None:
                values = out.get(id_lang)
                if values is None:
                    out[id_lang] = {name: value}
                else:
                    values[name] = value
    return out


def lang_items(per_lang: dict, langs: dict[str, int], every: list[int]) -> list[tuple[int, Any]]:
    """(id_lang, value) of one translated field, as ``lang_values`` gives them: a value without
    ``lang`` for every language, then each language's own (which wins)."""
    if None not in per_lang:
        out = []
        for iso, value in per_lang.items():
            id_lang = langs.get(iso)
            if id_lang is not None:
                out.append((id_lang, value))
        if len(out) > 1 and len({i for i, _ in out}) < len(out):
            return list(dict(out).items())  # two codes of one language: the last one wins
        return out
    found = dict.fromkeys(every, per_lang[None])
    for iso, value in per_lang.items():
        id_lang = langs.get(iso)
        if id_lang is not None:
            found[id_lang] = value
    return list(found.items())


def write_langs(
    chunk: Chunk,
    table: Table,
    fk: str,
    items: list[tuple[Entry, int, bool]],
    required: tuple[str, ...] = ("name",),
    slug: str | None = "link_rewrite",
) -> None:
    """Create or update the translations of entities; fill required fields from another
    language for new ones (as PrestaShop copies its default language)."""
    conn = chunk.conn
    # Entities created in this chunk have no translations yet: nothing to read for them.
    old_ids = [i for _, i, new in items if not new]
    existing = {(r._mapping[fk], r.id_lang): r for r in load_by(conn, table, fk, old_ids)}
    iso_of = {v: k for k, v in chunk.langs.items()}
    id_langs = list(chunk.langs.values())
    fill = bool(required or slug)
    # Rows of one INSERT must share their keys: every column, in the table's order.
    columns = [c.name for c in table.columns]
    blank = dict.fromkeys(columns)
    known = set(columns)
    inserts, updates = [], []
    for entry, local_id, new in items:
        wanted = lang_values(chunk, entry)
        if fill and (new or any((local_id, i) not in existing for i in id_langs)):
            first = next(iter(wanted.values()), {})
            for id_lang in id_langs:
                if (local_id, id_lang) in existing:
                    continue
                values = wanted.get(id_lang)
                if values is None:
                    values = wanted[id_lang] = {}
                for name in required:
                    if not values.get(name):
                        values[name] = first.get(name) or _any(wanted, name) or ""
                if slug and not values.get(slug):
                    values[slug] = slugify(values.get("name") or "")
        changes = entry.flags.setdefault("changes", {})
        for id_lang, values in wanted.items():
            row = existing.get((local_id, id_lang))
            if row is None:
                insert = blank.copy()
                insert[fk] = local_id
                insert["id_lang"] = id_lang
                insert.update(values if values.keys() <= known else _only(values, known))
                inserts.append(insert)
                if not new:
                    for name, value in values.items():
                        changes[f"{name}[{iso_of.get(id_lang)}]"] = (None, value)
                continue
            diff = changes_of(row, values)
            if diff:
                updates.append(
                    ({fk: local_id, "id_lang": id_lang}, {k: v for k, (_, v) in diff.items()})
                )
                for name, pair in diff.items():
                    changes[f"{name}[{iso_of.get(id_lang)}]"] = pair
    insert_rows(conn, table, inserts)
    update_rows(conn, table, updates)


def _only(values: dict, known: set[str]) -> dict:
    return {k: v for k, v in values.items() if k in known}


def _any(wanted: dict, name: str):
    for values in wanted.values():
        if values.get(name):
            return values[name]
    return None


def tax_rate(group: int | None) -> Decimal | None:
    """The rate of a tax rules group, in percent (None when unknown)."""
    rates = setting("IMPORT_TAX_RATES")
    value = rates.get(group, rates.get(str(group))) if group is not None else None
    return Decimal(str(value)) if value is not None else None


def without_tax(price: Decimal, rate: Decimal) -> Decimal:
    """A tax-included price, tax excluded (6 decimals, as stored)."""
    return (price * 100 / (100 + rate)).quantize(Decimal("0.000001"))


def finish(chunk: Chunk, entry: Entry) -> None:
    """Count an applied entry as created, updated or unchanged, and keep its diff."""
    changes = entry.flags.pop("changes", {})
    if entry.action == "create":
        chunk.count(entry.kind, "created")
        if chunk.keep_diffs:
            chunk.diff(entry, "create", {k: (None, v) for k, v in entry.values.items()})
    elif changes:
        chunk.count(entry.kind, "updated")
        chunk.diff(entry, "update", changes)
        entry.action = "updated"
    else:
        chunk.count(entry.kind, "unchanged")
        entry.action = "unchanged"
    if entry.local_id:
        chunk.seen(entry.kind, entry.local_id)
