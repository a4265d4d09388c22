"""What the panel's catalog pages show beside the rows: names, stock, combinations, customers.

Each function takes the ids of one page of rows and answers with a fixed number of queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select

from impexmod.extensions import db
from impexmod.models import (
    Attribute,
    AttributeGroupLang,
    AttributeLang,
    Category,
    CategoryLang,
    Combination,
    CombinationAttribute,
    Customer,
    Language,
    Order,
    OrderDetail,
    OrderState,
    Product,
    ProductLang,
    StockAvailable,
)


@dataclass
class CombinationSummary:
    """One combination of a product, as listed under it."""

    id: int
    reference: str | None
    ean13: str | None
    price_impact: Decimal
    attributes: str
    quantity: int | None
    default_on: bool


@dataclass
class ProductSummary:
    """A product's name in the panel's language, its stock and its combination count."""

    name: str = ""
    quantity: int | None = None
    combination_count: int = 0
    combinations: list[CombinationSummary] = field(default_factory=list)


def panel_language() -> int | None:
    """The id of the language the panel shows names in: English, else the first one."""
    rows = db.session.execute(select(Language.id, Language.iso_code).order_by(Language.id)).all()
    for id_, iso in rows:
        if iso == "en":
            return id_
    return rows[0][0] if rows else None


def product_summaries(ids: list[int]) -> dict[int, ProductSummary]:
    """Name, product-level quantity and number of combinations of some products."""
    out = {i: ProductSummary() for i in ids}
    if not ids:
        return out
    lang = panel_language()
    for pid, name in db.session.execute(
        select(ProductLang.id_product, ProductLang.name).where(
            ProductLang.id_product.in_(ids), ProductLang.id_lang == lang
        )
    ):
        out[pid].name = name
    for pid, qty in db.session.execute(
        select(StockAvailable.id_product, StockAvailable.quantity).where(
            StockAvailable.id_product.in_(ids), StockAvailable.id_product_attribute == 0
        )
    ):
        out[pid].quantity = qty
    for pid, count in db.session.execute(
        select(Combination.id_product, func.count(Combination.id))
        .where(Combination.id_product.in_(ids))
        .group_by(Combination.id_product)
    ):
        out[pid].combination_count = count
    return out


def product_detail(product_id: int) -> ProductSummary:
    """A product's summary with each of its combinations, their attributes and stock."""
    summary = product_summaries([product_id])[product_id]
    combos = db.session.scalars(
        select(Combination).where(Combination.id_product == product_id).order_by(Combination.id)
    ).all()
    ids = [c.id for c in combos]
    if not ids:
        return summary
    stock = dict(
        db.session.execute(
            select(StockAvailable.id_product_attribute, StockAvailable.quantity).where(
                StockAvailable.id_product == product_id,
                StockAvailable.id_product_attribute.in_(ids),
            )
        ).all()
    )
    lang = panel_language()
    labels: dict[int, list[str]] = defaultdict(list)
    rows = db.session.execute(
        select(
            CombinationAttribute.id_product_attribute, AttributeGroupLang.name, AttributeLang.name
        )
        .join(Attribute, Attribute.id == CombinationAttribute.id_attribute)
        .join(
            AttributeLang,
            (AttributeLang.id_attribute == Attribute.id) & (AttributeLang.id_lang == lang),
        )
        .join(
            AttributeGroupLang,
            (AttributeGroupLang.id_attribute_group == Attribute.id_attribute_group)
            & (AttributeGroupLang.id_lang == lang),
        )
        .where(CombinationAttribute.id_product_attribute.in_(ids))
        .order_by(CombinationAttribute.id_product_attribute, Attribute.id_attribute_group)
    )
    for cid, group, value in rows:
        labels[cid].append(f"{group}: {value}")
    summary.combinations = [
        CombinationSummary(
            id=c.id,
            reference=c.reference,
            ean13=c.ean13,
            price_impact=c.price,
            attributes=", ".join(labels[c.id]),
            quantity=stock.get(c.id),
            default_on=bool(c.default_on),
        )
        for c in combos
    ]
    return summary


def _like(term: str) -> str:
    # "/" as the escape character: a backslash means different things to MySQL and others.
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def product_search(term: str) -> ColumnElement[bool]:
    """Products whose reference, EAN-13 or name (in any language) contains ``term``."""
    like = _like(term)
    named = select(ProductLang.id_product).where(ProductLang.name.ilike(like, escape="/"))
    return or_(
        Product.reference.ilike(like, escape="/"),
        Product.ean13.ilike(like, escape="/"),
        Product.id.in_(named),
    )


def category_search(term: str) -> ColumnElement[bool]:
    """Categories whose name (in any language) contains ``term``."""
    like = _like(term)
    named = select(CategoryLang.id_category).where(CategoryLang.name.ilike(like, escape="/"))
    return Category.id.in_(named)


def stock_condition(in_stock: bool) -> ColumnElement[bool]:
    """Products whose own stock row is above zero (or is not)."""
    condition = StockAvailable.quantity > 0 if in_stock else StockAvailable.quantity <= 0
    ids = select(StockAvailable.id_product).where(
        StockAvailable.id_product_attribute == 0, condition
    )
    return Product.id.in_(ids)


def category_names(ids: list[int]) -> dict[int, str]:
    """Category names in the panel's language."""
    if not ids:
        return {}
    lang = panel_language()
    return dict(
        db.session.execute(
            select(CategoryLang.id_category, CategoryLang.name).where(
                CategoryLang.id_category.in_(ids), CategoryLang.id_lang == lang
            )
        ).all()
    )


@dataclass
class OrderSummary:
    """Who placed an order and where it stands."""

    customer: str = ""
    state: str = ""
    color: str = ""
    lines: int = 0


def order_summaries(orders: list[Order]) -> dict[int, OrderSummary]:
    """Customer names, state names and line counts of some orders."""
    out = {o.id: OrderSummary() for o in orders}
    customers = {o.id_customer for o in orders if o.id_customer}
    names = {
        cid: f"{first} {last}"
        for cid, first, last in db.session.execute(
            select(Customer.id, Customer.firstname, Customer.lastname).where(
                Customer.id.in_(customers)
            )
        )
    }
    states = {s.id: s for s in db.session.scalars(select(OrderState))}
    lines = dict(
        db.session.execute(
            select(OrderDetail.id_order, func.count(OrderDetail.id))
            .where(OrderDetail.id_order.in_(list(out)))
            .group_by(OrderDetail.id_order)
        ).all()
    )
    for order in orders:
        summary = out[order.id]
        summary.customer = names.get(order.id_customer, "")
        state = states.get(order.current_state)
        summary.state, summary.color = (state.name, state.color) if state else ("", "")
        summary.lines = lines.get(order.id, 0)
    return out


def order_lines(order_id: int) -> list[OrderDetail]:
    """The lines of an order."""
    return db.session.scalars(
        select(OrderDetail).where(OrderDetail.id_order == order_id).order_by(OrderDetail.id)
    ).all()


def order_states() -> list[tuple[int, str]]:
    """Every order state, (id, name), for filters."""
    return db.session.execute(select(OrderState.id, OrderState.name).order_by(OrderState.id)).all()
