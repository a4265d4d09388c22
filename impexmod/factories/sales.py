"""Bulk sales builder: customers with their addresses, and orders of freshly seeded products
with their lines and status history."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

import factory

from impexmod.factories import words
from impexmod.factories.catalog import Context, Ids, Rows, Sold
from impexmod.factories.maker import RowMaker
from impexmod.factories.rows import (
    AddressRow,
    CustomerRow,
    OrderDetailRow,
    OrderHistoryRow,
    OrderRow,
)
from impexmod.factories.values import ZERO, email_for, later, with_tax

FREE_SHIPPING_FROM = Decimal("60")
SHIPPING = Decimal("6.90")
FRENCH_SHARE = 0.6  # a French shop: most customers order in French


class SalesBuilder:
    """Builds customers, then orders of the products a batch has just seeded."""

    def __init__(self, ctx: Context, ids: Ids, seed: int):
        self.ctx, self.ids = ctx, ids
        # Its own generator: the catalog's shape can change without reshuffling the customers.
        self.rng = random.Random(f"sales-{seed}")
        self.order_row = RowMaker(OrderRow)
        self.order_detail_row = RowMaker(OrderDetailRow)
        self.order_history_row = RowMaker(OrderHistoryRow)
        self.buyers: list[tuple[dict, list[int]]] = []  # customers and their address ids
        self.paths = [p for p, _ in words.ORDER_PATHS if all(s in ctx.order_states for s in p)]
        self.path_weights = [w for p, w in words.ORDER_PATHS if p in self.paths]

    def customers(self, count: int) -> Rows:
        """``count`` customers with one or two addresses each; orders go to these."""
        out: Rows = defaultdict(list)
        langs = [iso for iso in ("fr", "en") if iso in self.ctx.langs] or list(self.ctx.langs)
        for _ in range(count):
            iso = langs[0] if self.rng.random() < FRENCH_SHARE else langs[-1]
            locale, country = ("fr_FR", "FR") if iso == "fr" else ("en_GB", "GB")
            with factory.Faker.override_default_locale(locale):
                cid = self.ids("customer")
                customer = CustomerRow.build(id=cid, id_lang=self.ctx.langs[iso])
                # The id, not factory-boy's process-wide sequence, keeps emails reproducible.
                customer["email"] = email_for(customer["firstname"], customer["lastname"], cid)
                addresses = [
                    AddressRow.build(
                        id=self.ids("address"),
                        id_customer=cid,
                        firstname=customer["firstname"],
                        lastname=customer["lastname"],
                        country_iso=country,
                        date_add=customer["date_add"],
                        date_upd=customer["date_add"],
                    )
                    for _ in range(self.rng.choice((1, 1, 1, 2)))
                ]
            out["customer"].append(customer)
            out["address"].extend(addresses)
            self.buyers.append((customer, [a["id"] for a in addresses]))
        return out

    def orders(self, count: int, sold: list[Sold]) -> Rows:
        """``count`` orders by the seeded customers, of products from ``sold``."""
        out: Rows = defaultdict(list)
        if not (self.buyers and sold and self.paths):
            return out
        for _ in range(count):
            self._order(out, sold)
        return out

    def _order(self, out: Rows, sold: list[Sold]) -> None:
        rng, states = self.rng, self.ctx.order_states
        customer, addresses = rng.choice(self.buyers)
        french = customer["id_lang"] == self.ctx.langs.get("fr")
        oid = self.ids("orders")
        lines = rng.sample(sold, k=min(len(sold), rng.choice((1, 1, 2, 2, 3, 4))))
        total = ZERO
        for line in lines:
            name, reference = (line.name.fr if french else line.name.en), line.product["reference"]
            price, cid = line.product["price"], 0
            if line.variants:
                row, size, color = rng.choice(line.variants)
                cid, reference, price = row["id"], row["reference"], price + row["price"]
                name += (
                    f" - Taille : {size}, Couleur : {color.fr}"
                    if french
                    else f" - Size : {size}, Color : {color.en}"
                )
            detail = self.order_detail_row(
                id=self.ids("order_detail"),
                id_order=oid,
                product_id=line.product["id"],
                product_attribute_id=cid,
                product_name=name,
                product_reference=reference,
                unit_price_tax_excl=price,
            )
            out["order_detail"].append(detail)
            total += price * detail["product_quantity"]
        shipping = ZERO if total >= FREE_SHIPPING_FROM else SHIPPING
        path = rng.choices(self.paths, self.path_weights)[0]
        placed = later(max(line.product["date_add"] for line in lines), 90)
        when = placed
        for state in path:
            out["order_history"].append(
                self.order_history_row(
                    id=self.ids("order_history"),
                    id_order=oid,
                    id_order_state=states[state],
                    date_add=when,
                )
            )
            last, when = when, later(when, 3)
        address = rng.choice(addresses)
        order = self.order_row(
            id=oid,
            id_customer=customer["id"],
            id_address_delivery=address,
            id_address_invoice=address,
            current_state=states[path[-1]],
            total_products=total,
            total_shipping=shipping,
            total_paid_tax_excl=total + shipping,
            total_paid_tax_incl=with_tax(total + shipping),
            date_add=placed,
            date_upd=last,
        )
        out["orders"].append(order)
