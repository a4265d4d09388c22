"""Catalog edits made from the panel, through the ORM session so that the change log records
them (the next incremental feed lists what they touched). The caller commits."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.models import Combination, StockAvailable


class InvalidEdit(ValueError):
    """An edit that cannot be made; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def has_combinations(product_id: int) -> bool:
    """Whether the product has combinations (its stock is then theirs, summed)."""
    found = db.session.execute(
        select(Combination.id).where(Combination.id_product == product_id).limit(1)
    ).first()
    return found is not None


def _stock_row(product_id: int, combination_id: int) -> StockAvailable:
    row = db.session.scalars(
        select(StockAvailable).where(
            StockAvailable.id_product == product_id,
            StockAvailable.id_product_attribute == combination_id,
        )
    ).one_or_none()
    if row is None:
        row = StockAvailable(id_product=product_id, id_product_attribute=combination_id, quantity=0)
        db.session.add(row)
    return row


def _check_quantity(quantity: int | None) -> int:
    if quantity is None:
        raise InvalidEdit("quantity", "a quantity is required")
    if not -(10**9) < int(quantity) < 10**9:
        raise InvalidEdit("quantity", "out of range")
    return int(quantity)


def set_product_quantity(product_id: int, quantity: int) -> StockAvailable:
    """Set the stock of a product without combinations."""
    if has_combinations(product_id):
        raise InvalidEdit(
            "quantity", "this product has combinations: set the quantity of each combination"
        )
    row = _stock_row(product_id, 0)
    row.quantity = _check_quantity(quantity)
    return row


def update_combination(
    combination_id: int, price_impact: Decimal | None, quantity: int | None
) -> Combination:
    """Change a combination's price impact and stock; its product's stock becomes their sum."""
    combination = db.session.get(Combination, combination_id)
    if combination is None:
        raise InvalidEdit("combination", f"no combination with id {combination_id}")
    if price_impact is not None:
        combination.price = price_impact
    if quantity is not None:
        _stock_row(combination.id_product, combination.id).quantity = _check_quantity(quantity)
        db.session.flush()
        total = db.session.execute(
            select(func.coalesce(func.sum(StockAvailable.quantity), 0)).where(
                StockAvailable.id_product == combination.id_product,
                StockAvailable.id_product_attribute != 0,
            )
        ).scalar_one()
        _stock_row(combination.id_product, 0).quantity = int(total)
    return combination
