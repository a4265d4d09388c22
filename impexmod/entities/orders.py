"""Orders with their addresses, lines and status history nested."""

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
    link,
    rows_in,
)
from impexmod.entities.customers import address_element
from impexmod.entities.flatvocab import ADDRESS_COLUMNS as FLAT_ADDRESS
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText, attributes
from impexmod.models import Address, Order, OrderDetail, OrderHistory, OrderState

HEAD = ("reference",)
TOTALS = (
    "payment",
    "currency_iso",
    "total_products",
    "total_shipping",
    "total_paid_tax_excl",
    "total_paid_tax_incl",
    "date_add",
    "date_upd",
)
LINE_FIELDS = (
    "product_name",
    "product_reference",
    "product_quantity",
    "unit_price_tax_excl",
    "unit_price_tax_incl",
)


@dataclass
class OrderRecord:
    row: Row
    delivery: Row | None = None
    invoice: Row | None = None
    lines: list[Row] = field(default_factory=list)
    history: list[Row] = field(default_factory=list)


STATE_ATTRS = attributes({"identifier": "name", "type": "orderState"})


def state_element(out: XmlText, tag: str, name: str) -> None:
    """An order state linked by its name, which is what another shop can match on."""
    out.field(tag, name, STATE_ATTRS)


class OrderDescriptor(Descriptor):
    name = "orders"
    element = "order"
    kind = "order"
    table = Order.__table__
    label = N_("Orders")
    tables = (Order.__table__,)
    changed_by = {OrderDetail.__table__: "id_order", OrderHistory.__table__: "id_order"}
    export_columns = (
        ("supplier_reference", "source", "reference", "customer", "customer_source")
        + ("current_state", "payment", "currency_iso", "total_products", "total_shipping")
        + ("total_paid_tax_excl", "total_paid_tax_incl", "date_add", "date_upd")
        + tuple(f"delivery_{name}" for name in FLAT_ADDRESS)
        + tuple(f"invoice_{name}" for name in FLAT_ADDRESS)
        + ("lines", "quantity")
    )
    flat_row = "impexmod.export.flatten:order_row"
    object_tables = {
        "order": (Order.__table__,),
        "order_detail": (OrderDetail.__table__,),
        "order_history": (OrderHistory.__table__,),
    }
    object_lists = {
        "order": {"address": "addresses", "order_detail": "lines", "order_history": "history"}
    }
    filter_fields = "impexmod.export.filter_fields:order_fields"
    shape = Shape(
        "order",
        Order.__table__,
        links={"id_customer": "customer", "current_state": "order_state"},
        nested=("address", "order_detail", "order_history"),
        dates=True,
        skip=frozenset({"id_address_delivery", "id_address_invoice"}),
    )
    nested_shapes = {
        "order_detail": Shape(
            "order_detail",
            OrderDetail.__table__,
            links={"product_id": "product", "product_attribute_id": "combination"},
            skip=frozenset({"id_order"}),
        ),
        "order_history": Shape(
            "order_history",
            OrderHistory.__table__,
            links={"id_order_state": "order_state"},
            dates=True,
            skip=frozenset({"id_order"}),
        ),
    }
    loader = "impexmod.importing.loaders.sales"
    parents = ("customers", "products")

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[OrderRecord]:
        """Orders by id with addresses, lines and history, and the keys they link to."""
        conn = ctx.conn
        rows = rows_in(
            conn,
            select(Order.__table__, OrderState.name.label("state_name"))
            .join(OrderState, OrderState.id == Order.current_state)
            .order_by(Order.id),
            Order.id,
            ids,
        )
        if not rows:
            return []
        ids = [r.id for r in rows]
        address_ids = {r.id_address_delivery for r in rows} | {r.id_address_invoice for r in rows}
        address_ids.discard(None)
        addresses = {
            a.id: a
            for a in rows_in(conn, select(Address.__table__), Address.id, sorted(address_ids))
        }
        lines = group_by(
            rows_in(
                conn,
                select(OrderDetail.__table__).order_by(OrderDetail.id),
                OrderDetail.id_order,
                ids,
            ),
            "id_order",
        )
        history = group_by(
            rows_in(
                conn,
                select(OrderHistory.id_order, OrderHistory.date_add, OrderState.name)
                .join(OrderState, OrderState.id == OrderHistory.id_order_state)
                .order_by(OrderHistory.date_add, OrderHistory.id),
                OrderHistory.id_order,
                ids,
            ),
            "id_order",
        )
        all_lines = [line for ls in lines.values() for line in ls]
        keys = ctx.keys
        keys.load("order", ids)
        keys.load("customer", [r.id_customer for r in rows])
        keys.load("address", addresses)
        keys.load("product", [line.product_id for line in all_lines])
        keys.load("combination", [line.product_attribute_id for line in all_lines])
        return [
            OrderRecord(
                row=r,
                delivery=addresses.get(r.id_address_delivery),
                invoice=addresses.get(r.id_address_invoice),
                lines=lines.get(r.id, []),
                history=history.get(r.id, []),
            )
            for r in rows
        ]

    def render(self, ctx: ExportContext, rec: OrderRecord, out: XmlText) -> None:
        """An ``<order>``: fields, then ``address``, ``order_detail`` and ``order_history``."""
        row, keys = rec.row, ctx.keys
        keyed(out, "order", keys.key("order", row.id))
        fields(out, row, HEAD)
        if row.id_customer:
            link(out, "id_customer", "customer", keys.key("customer", row.id_customer))
        state_element(out, "current_state", row.state_name)
        fields(out, row, TOTALS)
        # Addresses are copied, not linked: an order's reader needs where it ships to.
        if rec.delivery is not None:
            address_element(ctx, rec.delivery, out, role="delivery")
        if rec.invoice is not None:
            address_element(ctx, rec.invoice, out, role="invoice")
        for line in rec.lines:
            out.open("order_detail")
            # Lines keep no foreign key (they outlive the product): a deleted product is
            # still linked by the key it had, its id, with its name and reference alongside.
            if line.product_id:
                link(out, "product_id", "product", keys.key("product", line.product_id))
            if line.product_attribute_id:
                key = keys.key("combination", line.product_attribute_id)
                link(out, "product_attribute_id", "combination", key)
            fields(out, line, LINE_FIELDS)
            out.close()
        for entry in rec.history:
            out.open("order_history")
            state_element(out, "id_order_state", entry.name)
            fields(out, entry, ("date_add",))
            out.close()
        out.close()
