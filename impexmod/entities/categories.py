"""Categories: a flat list in id order, each linked to its parent by key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import (
    N_,
    Descriptor,
    ExportContext,
    fields,
    group_by,
    keyed,
    lang_fields,
    link,
    rows_in,
)
from impexmod.entities.flatvocab import KEY, FlatColumn, langs, values
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText
from impexmod.models import Category, CategoryLang

LANG_FIELDS = ("name", "description", "link_rewrite")
FIELDS = ("active", "position", "level_depth", "is_root_category")


@dataclass
class CategoryRecord:
    row: Row
    langs: list[Row] = field(default_factory=list)


class CategoryDescriptor(Descriptor):
    name = "categories"
    element = "category"
    kind = "category"
    table = Category.__table__
    label = N_("Categories")
    tables = (Category.__table__, CategoryLang.__table__)
    changed_by = {CategoryLang.__table__: "id_category"}
    flat_columns = (
        KEY
        + (FlatColumn("parent", "link", "category"),)
        + langs(*LANG_FIELDS)
        + values("active", "position", "is_root_category")
    )
    flat_row = "impexmod.export.flatten:plain_row"
    filter_fields = "impexmod.export.filter_fields:category_fields"
    shape = Shape(
        "category",
        Category.__table__,
        CategoryLang.__table__,
        {"id_parent": "category"},
        ("category",),
    )
    loader = "impexmod.importing.loaders.categories"
    disableable = True

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[CategoryRecord]:
        """Categories by id with their translations, and the keys of their parents."""
        rows = rows_in(ctx.conn, select(Category.__table__).order_by(Category.id), Category.id, ids)
        if not rows:
            return []
        ids = [r.id for r in rows]
        langs = group_by(
            rows_in(ctx.conn, select(CategoryLang.__table__), CategoryLang.id_category, ids),
            "id_category",
        )
        # One load per kind: a second load would replace the first one's keys.
        ctx.keys.load("category", ids + [r.id_parent for r in rows if r.id_parent])
        return [CategoryRecord(row=r, langs=langs.get(r.id, [])) for r in rows]

    def render(self, ctx: ExportContext, rec: CategoryRecord, out: XmlText) -> None:
        """A ``<category>``; the root category has no ``id_parent``."""
        row = rec.row
        keyed(out, "category", ctx.keys.key("category", row.id))
        lang_fields(out, ctx, rec.langs, LANG_FIELDS)
        fields(out, row, FIELDS)
        if row.id_parent:
            link(out, "id_parent", "category", ctx.keys.key("category", row.id_parent))
        fields(out, row, ("date_add", "date_upd"))
        out.close()
