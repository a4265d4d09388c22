"""Customers with their addresses nested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import N_, Descriptor, ExportContext, fields, group_by, keyed, rows_in
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText, attributes
from impexmod.models import Address, Customer

FIELDS = ("email", "firstname", "lastname")
TAIL = ("active", "newsletter", "date_add", "date_upd")
ADDRESS_FIELDS = (
    "alias",
    "company",
    "firstname",
    "lastname",
    "address1",
    "address2",
    "postcode",
    "city",
    "country_iso",
    "phone",
    "date_add",
    "date_upd",
)


@dataclass
class CustomerRecord:
    row: Row
    addresses: list[Row] = field(default_factory=list)


LANGUAGE_ATTRS = attributes({"identifier": "iso_code", "type": "language"})


def address_element(ctx: ExportContext, row: Row, out: XmlText, **attrs: str) -> None:
    """A nested ``<address>``, keyed as an ``address`` (keys loaded by the caller)."""
    keyed(out, "address", ctx.keys.key("address", row.id), **attrs)
    fields(out, row, ADDRESS_FIELDS)
    out.close()


class CustomerDescriptor(Descriptor):
    name = "customers"
    element = "customer"
    kind = "customer"
    table = Customer.__table__
    label = N_("Customers")
    tables = (Customer.__table__, Address.__table__)
    changed_by = {Address.__table__: "id_customer"}
    export_columns = (
        ("supplier_reference", "source", "email", "firstname", "lastname", "lang")
        + ("active", "newsletter", "date_add", "date_upd")
        + ("company", "address1", "address2", "postcode", "city", "country_iso", "phone")
        + ("addresses",)
    )
    flat_row = "impexmod.export.flatten:customer_row"
    object_tables = {"customer": (Customer.__table__,), "address": (Address.__table__,)}
    object_lists = {"customer": {"address": "addresses"}}
    filter_fields = "impexmod.export.filter_fields:customer_fields"
    shape = Shape(
        "customer", Customer.__table__, links={"id_lang": "language"}, nested=("address",)
    )
    nested_shapes = {
        "address": Shape("address", Address.__table__, links={"id_customer": "customer"})
    }
    key_tables = {"address": Address.__table__}
    loader = "impexmod.importing.loaders.sales"
    disableable = True

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[CustomerRecord]:
        """Customers by id with their addresses (in id order) and the keys of both."""
        rows = rows_in(ctx.conn, select(Customer.__table__).order_by(Customer.id), Customer.id, ids)
        if not rows:
            return []
        ids = [r.id for r in rows]
        addresses = group_by(
            rows_in(
                ctx.conn, select(Address.__table__).order_by(Address.id), Address.id_customer, ids
            ),
            "id_customer",
        )
        ctx.keys.load("customer", ids)
        ctx.keys.load("address", [a.id for rows in addresses.values() for a in rows])
        return [CustomerRecord(row=r, addresses=addresses.get(r.id, [])) for r in rows]

    def render(self, ctx: ExportContext, rec: CustomerRecord, out: XmlText) -> None:
        """A ``<customer>``; its language is linked by iso code, as the native format allows."""
        row = rec.row
        keyed(out, "customer", ctx.keys.key("customer", row.id))
        fields(out, row, FIELDS)
        iso = ctx.languages.get(row.id_lang) if row.id_lang else None
        if iso:
            out.field("id_lang", iso, LANGUAGE_ATTRS)
        fields(out, row, TAIL)
        for address in rec.addresses:
            address_element(ctx, address, out)
        out.close()
