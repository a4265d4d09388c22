"""Tags: a PrestaShop tag is one name in one language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import N_, Descriptor, ExportContext, keyed, rows_in
from impexmod.entities.flatvocab import KEY, FlatColumn, langs
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText
from impexmod.models import Tag


@dataclass
class TagRecord:
    row: Row


class TagDescriptor(Descriptor):
    name = "tags"
    element = "tag"
    kind = "tag"
    table = Tag.__table__
    label = N_("Tags")
    tables = (Tag.__table__,)
    flat_columns = KEY + (FlatColumn("lang", "option"),) + langs("name")
    flat_row = "impexmod.export.flatten:tag_row"
    filter_fields = "impexmod.export.filter_fields:tag_fields"
    shape = Shape("tag", None, extra=("name",))
    loader = "impexmod.importing.loaders.tags"

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[TagRecord]:
        """Tags by id, with their keys."""
        rows = rows_in(ctx.conn, select(Tag.__table__).order_by(Tag.id), Tag.id, ids)
        ctx.keys.load("tag", [r.id for r in rows])
        return [TagRecord(row=r) for r in rows]

    def render(self, ctx: ExportContext, rec: TagRecord, out: XmlText) -> None:
        """``<tag><name lang="en">red</name></tag>``."""
        keyed(out, "tag", ctx.keys.key("tag", rec.row.id))
        out.field("name", rec.row.name, ctx.lang_attrs(rec.row.id_lang))
        out.close()
