"""What the bulk builders work from: the reference data as the database holds it, and the
next free ids. Loaded in id order, so that the same database and seed give the same rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from impexmod.extensions import db
from impexmod.factories import words
from impexmod.factories.values import slugify
from impexmod.factories.words import Word


@dataclass(frozen=True)
class Leaf:
    """A category products are filed in, with what its products are called."""

    id: int
    path: tuple[int, ...]  # the leaf and its ancestors below the root, for category_product
    code: str  # department code starting product references, e.g. "CLO"
    nouns: tuple[Word, ...]


@dataclass
class Context:
    """The reference data a batch of products points at, as found in the database."""

    langs: dict[str, int]
    leaves: list[Leaf]
    manufacturers: list[tuple[int, str]]
    suppliers: list[tuple[int, str, str]]  # id, name, reference prefix
    sizes: list[tuple[int, str]]
    colors: list[tuple[int, Word, str]]  # id, name, code
    tags: list[tuple[int, ...]]  # the ids of one tag in each language
    order_states: dict[str, int]
    positions: dict[int, int] = field(default_factory=dict)  # last position in each category


class Ids:
    """Explicit ids for bulk inserts, counting up from each table's current maximum."""

    def __init__(self, last: dict[str, int]):
        self._last = defaultdict(int, last)

    def __call__(self, table: str) -> int:
        """The next free id of ``table``."""
        self._last[table] += 1
        return self._last[table]


def _table(name: str) -> Table:
    return db.metadata.tables[name]


def languages(conn: Connection) -> dict[str, int]:
    """The shop's languages: iso code -> id."""
    t = _table("language")
    return dict(conn.execute(select(t.c.iso_code, t.c.id).order_by(t.c.id)).all())


def _names(conn: Connection, lang_table: str, key: str, langs: dict[str, int]) -> dict[int, Word]:
    """English and French names of a *_lang table's rows (English where French is missing)."""
    t = _table(lang_table)
    found: dict[int, dict[int, str]] = defaultdict(dict)
    for id_, id_lang, name in conn.execute(select(t.c[key], t.c.id_lang, t.c.name)):
        found[id_][id_lang] = name
    out = {}
    for id_, by_lang in found.items():
        en = by_lang.get(langs.get("en"), next(iter(by_lang.values())))
        out[id_] = Word(en, by_lang.get(langs.get("fr"), en))
    return out


def load_context(conn: Connection) -> Context:
    """The reference data as the database holds it, in id order (so seeds are reproducible)."""
    langs = languages(conn)
    return Context(
        langs=langs,
        leaves=_leaves(conn, langs),
        manufacturers=[tuple(r) for r in conn.execute(_ordered("manufacturer", "id", "name"))],
        suppliers=[
            (id_, name, words.SUPPLIER_PREFIXES.get(name) or slugify(name)[:3].upper() or "SUP")
            for id_, name in conn.execute(_ordered("supplier", "id", "name"))
        ],
        **_attributes(conn, langs),
        tags=_tags(conn, langs),
        order_states={n: i for i, n in conn.execute(_ordered("order_state", "id", "name"))},
        positions=dict(
            conn.execute(
                select(
                    _table("category_product").c.id_category,
                    func.max(_table("category_product").c.position),
                ).group_by(_table("category_product").c.id_category)
            ).all()
        ),
    )


def _ordered(name: str, *columns: str):
    t = _table(name)
    return select(*(t.c[c] for c in columns)).order_by(t.c.id)


def _leaves(conn: Connection, langs: dict[str, int]) -> list[Leaf]:
    """Categories without children, with their path up to (not including) the root."""
    names = _names(conn, "category_lang", "id_category", langs)
    parents = {
        id_: (None if root else parent)
        for id_, parent, root in conn.execute(
            _ordered("category", "id", "id_parent", "is_root_category")
        )
    }
    with_children = {p for p in parents.values() if p is not None}
    roots = {id_ for id_, parent in parents.items() if parent is None}
    leaves = [id_ for id_ in parents if id_ not in with_children and id_ not in roots]
    out = []
    for id_ in leaves or list(parents):
        path = [id_]
        while parents.get(path[-1]) not in (None, *roots) and len(path) < 32:
            path.append(parents[path[-1]])
        department = names.get(path[-1], Word("Product", "Product")).en
        name = names.get(id_, Word("", "")).en
        code = slugify(department).replace("-", "")[:3].upper() or "PRD"
        out.append(Leaf(id_, tuple(path), code, words.NOUNS.get(name, tuple(words.GENERIC_NOUNS))))
    return out


def _attributes(conn: Connection, langs: dict[str, int]) -> dict[str, list]:
    """Sizes (the first non-colour group) and colours (the first colour group)."""
    names = _names(conn, "attribute_lang", "id_attribute", langs)
    a, g = _table("attribute"), _table("attribute_group")
    rows = conn.execute(
        select(a.c.id, a.c.id_attribute_group, g.c.is_color_group)
        .join(g, g.c.id == a.c.id_attribute_group)
        .order_by(g.c.position, g.c.id, a.c.position, a.c.id)
    ).all()
    size_group = next((grp for _, grp, color in rows if not color), None)
    color_group = next((grp for _, grp, color in rows if color), None)
    return {
        "sizes": [(id_, names[id_].en) for id_, grp, _ in rows if grp == size_group],
        "colors": [
            (id_, names[id_], words.COLOR_CODES.get(names[id_].en) or names[id_].en[:3].upper())
            for id_, grp, _ in rows
            if grp == color_group
        ],
    }


def _tags(conn: Connection, langs: dict[str, int]) -> list[tuple[int, ...]]:
    """Tags grouped by meaning: the vocabulary's tags in each language, other tags alone."""
    by_name = {
        (id_lang, name): id_
        for id_, id_lang, name in conn.execute(_ordered("tag", "id", "id_lang", "name"))
    }
    out, used = [], set()
    for tag in words.TAGS:
        group = tuple(
            by_name[key]
            for iso, id_lang in langs.items()
            if (key := (id_lang, tag.in_lang(iso))) in by_name
        )
        if group:
            out.append(group)
            used.update(group)
    out.extend((id_,) for id_ in by_name.values() if id_ not in used)
    return out
