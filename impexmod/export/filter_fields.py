"""The fields an exporter's filters may name, entity by entity, and the SQL condition of each.

A field is a column of the entity's own table, or one of a few computed fields (a product's
categories, suppliers, stock, names in any language...). Products' fields also apply to the
entities that hang on a product (combinations, stock, specific prices) as ``product.<field>``,
the common ones (category, supplier, active...) without the prefix. Every condition is plain
SQLAlchemy Core (EXISTS, scalar subqueries, a recursive CTE for sub-categories), so it runs on
SQLite, PostgreSQL and MariaDB alike and is applied on the reader's id query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table, exists, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from impexmod.entities import derived
from impexmod.entities.base import resolve_ref
from impexmod.export.filter_values import KIND_OPS, InvalidFilter, column_kind, compare, negated
from impexmod.messages import msg
from impexmod.models import (
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    Customer,
    Identity,
    Manufacturer,
    Order,
    OrderState,
    Product,
    ProductLang,
    ProductSupplier,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Supplier,
    Tag,
)

__all__ = ["Field", "InvalidFilter", "fields_of", "product_fields", "category_tree"]

Condition = Callable[[str, Any], ColumnElement]  # (operator, parsed value) -> SQL condition


@dataclass(frozen=True)
class Field:
    """One field a filter may name: its kind (which values and operators) and its SQL."""

    kind: str
    condition: Condition
    # True when the field is the product's (``product.price`` on a combination): a change of
    # the product alone may then move the entity in or out of the selection.
    via_product: bool = False

    @property
    def ops(self) -> tuple[str, ...]:
        """The operators this field accepts."""
        return KIND_OPS[self.kind]


def column_field(column) -> Field:
    """A field over one column (or a computed expression given as a column)."""
    kind = column_kind(column)
    nullable = bool(getattr(column, "nullable", False))
    return Field(kind, lambda op, value: compare(column, kind, nullable, op, value))


def _columns(table: Table) -> dict[str, Field]:
    return {column.name: column_field(column) for column in table.columns}


def _exists_field(kind: str, build: Callable[[str, Any], ColumnElement]) -> Field:
    """A field true when a related row matches; negative operators mean no row matches."""
    return Field(kind, lambda op, value: negated(op, build, value))


def _lang_fields(lang: Table, key: str, owner: Table) -> dict[str, Field]:
    """Translated fields: true when the text of some language matches (none, for != and not in)."""
    out = {}
    for column in lang.columns:
        if column.name in (key, "id_lang"):
            continue
        inner = column_field(column)
        out[column.name] = _exists_field(
            "text",
            lambda op, value, inner=inner: exists().where(
                lang.c[key] == owner.c.id, inner.condition(op, value)
            ),
        )
    return out


# ------------------------------------------------------------------------------ named entities


def _names(id_col, name_col, values: Sequence[str]) -> ColumnElement:
    """Rows named (case-insensitively) or, if ``id_col`` is given, numbered by ``values``."""
    conds = []
    for value in values:
        value = value.strip()
        conds.append(func.lower(name_col) == func.lower(value))
        if id_col is not None and value.isdigit():
            conds.append(id_col == int(value))
    return or_(*conds) if conds else false()


def _as_list(op: str, value) -> list[str]:
    return list(value) if op in ("in", "not in") else [value]


def category_tree(values: Sequence[str]):
    """A recursive CTE of the categories named by ``values`` and all their sub-categories.

    A category is named by its id, its name in any language or a supplier's reference for it.
    UNION (not UNION ALL) stops on a cycle in a damaged tree instead of looping.
    """
    # Aliases: the exported entity may be the categories themselves, and a subquery must not
    # be correlated with the outer query's rows.
    root, child = Category.__table__.alias(), Category.__table__.alias()
    lang = CategoryLang.__table__.alias()
    refs = [v.strip() for v in values]
    named = [
        root.c.id.in_(select(lang.c.id_category).where(_names(None, lang.c.name, refs))),
        root.c.id.in_(
            select(Identity.local_id).where(
                Identity.entity_type == "category", Identity.reference.in_(refs)
            )
        ),
    ]
    numbers = [int(v) for v in refs if v.isdigit()]
    if numbers:
        named.append(root.c.id.in_(numbers))
    tree = select(root.c.id).where(or_(*named)).cte(recursive=True)
    return tree.union(select(child.c.id).where(child.c.id_parent == tree.c.id))


def _in_categories(product_id) -> Callable[[str, Any], ColumnElement]:
    def build(op: str, value) -> ColumnElement:
        tree = category_tree(_as_list(op, value))
        link = CategoryProduct.__table__
        return exists().where(
            link.c.id_product == product_id, link.c.id_category.in_(select(tree.c.id))
        )

    return build


# ---------------------------------------------------------------------------------- catalogue


def _product_fields() -> dict[str, Field]:
    product = Product.__table__
    stock = StockAvailable.__table__.alias()  # the stock feed filters on product.quantity too
    link_supplier, supplier = ProductSupplier.__table__, Supplier.__table__
    brand, tag, link_tag = Manufacturer.__table__, Tag.__table__, ProductTag.__table__
    quantity = func.coalesce(
        select(stock.c.quantity)
        .where(stock.c.id_product == product.c.id, stock.c.id_product_attribute == 0)
        .scalar_subquery(),
        0,
    )
    fields = _columns(product) | _lang_fields(ProductLang.__table__, "id_product", product)
    fields |= {
        "category": _exists_field("named", _in_categories(product.c.id)),
        "supplier": _exists_field(
            "named",
            lambda op, value: exists().where(
                link_supplier.c.id_product == product.c.id,
                link_supplier.c.id_supplier.in_(
                    select(supplier.c.id).where(
                        _names(supplier.c.id, supplier.c.name, _as_list(op, value))
                    )
                ),
            ),
        ),
        "manufacturer": _exists_field(
            "named",
            lambda op, value: exists().where(
                brand.c.id == product.c.id_manufacturer,
                _names(brand.c.id, brand.c.name, _as_list(op, value)),
            ),
        ),
        "tag": _exists_field(
            "named",
            lambda op, value: exists().where(
                link_tag.c.id_product == product.c.id,
                link_tag.c.id_tag == tag.c.id,
                _names(tag.c.id, tag.c.name, _as_list(op, value)),
            ),
        ),
        "status": _status(product.c.active),
        "quantity": Field("int", lambda op, value: compare(quantity, "int", False, op, value)),
    }
    return fields


def _status(active) -> Field:
    def build(_op: str, value: str) -> ColumnElement:
        if value == "all":
            return true()
        return active == (value == "active")

    return Field("status", build)


# Product fields that entities hanging on a product take without the ``product.`` prefix.
SHORTCUTS = ("category", "supplier", "manufacturer", "tag", "active", "status", "name")


def _through_product(table: Table) -> dict[str, Field]:
    """``product.<field>`` for every product field, and the shortcuts, on ``table``."""
    product = Product.__table__

    def via(inner: Field) -> Field:
        return Field(
            inner.kind,
            lambda op, value: exists().where(
                product.c.id == table.c.id_product, inner.condition(op, value)
            ),
            via_product=True,
        )

    out = {f"product.{name}": via(field) for name, field in product_fields().items()}
    for name in SHORTCUTS + ("reference",):
        if name not in table.c:  # an entity's own column wins over its product's
            out.setdefault(name, out[f"product.{name}"])
    return out


@cache
def product_fields() -> dict[str, Field]:
    """The fields of a product."""
    return _product_fields()


def combination_fields() -> dict[str, Field]:
    combo, stock = Combination.__table__, StockAvailable.__table__.alias()
    quantity = func.coalesce(
        select(stock.c.quantity)
        .where(stock.c.id_product == combo.c.id_product, stock.c.id_product_attribute == combo.c.id)
        .scalar_subquery(),
        0,
    )
    return (
        _columns(combo)
        | {"quantity": Field("int", lambda op, v: compare(quantity, "int", False, op, v))}
        | _through_product(combo)
    )


def category_fields() -> dict[str, Field]:
    cat = Category.__table__

    def subtree(op: str, value) -> ColumnElement:
        return cat.c.id.in_(select(category_tree(_as_list(op, value)).c.id))

    return (
        _columns(cat)
        | _lang_fields(CategoryLang.__table__, "id_category", cat)
        | {"category": _exists_field("named", subtree), "status": _status(cat.c.active)}
    )


def order_fields() -> dict[str, Field]:
    order, state = Order.__table__, OrderState.__table__
    return _columns(order) | {
        # PrestaShop's "total paid" is the amount with taxes.
        "total_paid": column_field(order.c.total_paid_tax_incl),
        "state": _exists_field(
            "named",
            lambda op, value: exists().where(
                state.c.id == order.c.current_state,
                _names(state.c.id, state.c.name, _as_list(op, value)),
            ),
        ),
    }


def tag_fields() -> dict[str, Field]:
    return _columns(Tag.__table__)


def specific_price_fields() -> dict[str, Field]:
    return _columns(SpecificPrice.__table__) | _through_product(SpecificPrice.__table__)


def stock_fields() -> dict[str, Field]:
    return _columns(StockAvailable.__table__) | _through_product(StockAvailable.__table__)


def customer_fields() -> dict[str, Field]:
    return _columns(Customer.__table__) | {"status": _status(Customer.__table__.c.active)}


@cache
def fields_of(entity: str) -> dict[str, Field]:
    """Every field a filter may name on ``entity`` (an exporter's entity name): the builder its
    spec names (``filter_fields``)."""
    if entity not in derived.FILTER_FIELDS:
        raise InvalidFilter(msg("no filters are known for entity %(entity)s", entity=repr(entity)))
    return resolve_ref(derived.FILTER_FIELDS[entity])()
