"""How a native element maps to tables, for the importer: values, translated values, links,
nesting. Each entity spec declares the shape of its element (``shape``) and of the elements
nested in it that are no entity of their own (``nested_shapes``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Table

IGNORED = {"id", "date_add", "date_upd"}


@dataclass(frozen=True)
class Shape:
    """How one native element maps to tables: values, translated values, links, nesting."""

    kind: str
    table: Table | None
    lang: Table | None = None
    links: dict[str, str] = field(default_factory=dict)  # field -> target kind
    nested: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # non-column values (kept as text)
    dates: bool = False  # date_add is data here (when an order was placed), not bookkeeping
    skip: frozenset[str] = frozenset()  # columns a feed must not set: links or computed

    def columns(self):
        if self.table is None:
            return {}
        skip = (IGNORED - ({"date_add"} if self.dates else set())) | set(self.links)
        skip |= {"id_" + self.kind}
        return {c.name: c for c in self.table.columns if c.name not in skip}

    def lang_columns(self):
        if self.lang is None:
            return {}
        return {c.name: c for c in self.lang.columns if not c.primary_key}
