"""Bulk catalog builder: products with everything that hangs off them, as plain rows grouped by
table, one batch at a time so that memory does not grow with the catalog."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from impexmod.catalog.identity import supplier_source
from impexmod.factories import words
from impexmod.factories.context import Context, Ids
from impexmod.factories.maker import RowMaker
from impexmod.factories.rows import (
    CombinationRow,
    IdentityRow,
    ImageRow,
    ProductRow,
    ProductSupplierRow,
    SpecificPriceRow,
    StockRow,
    lang_rows,
    product_lang_rows,
    product_name,
)
from impexmod.factories.values import base36, ean13_for, scramble, slugify
from impexmod.factories.words import Word

Rows = dict[str, list[dict]]

# Shares of the catalog, as the demo promises them (docs/demo-data.md).
COMBINATION_SHARE = 0.20
SPECIFIC_PRICE_SHARE = 0.10
SUPPLIER_SHARE = 0.30
EAN13_SHARE = 0.92
MANUFACTURER_SHARE = 0.85
# Combination ids are offset in the EAN scramble so they never share a code with a product.
COMBINATION_EAN_OFFSET = 500_000_000


@dataclass
class Sold:
    """What an order line needs to know of a product seeded in the current batch."""

    product: dict
    name: Word
    variants: list[tuple[dict, str, Word]] = field(default_factory=list)  # row, size, color


class CatalogBuilder:
    """Builds batches of products; ``seed``, the ids it starts from and factory-boy's generator
    (seeded by the caller with ``factory.random.reseed_random``) fix every value."""

    def __init__(self, ctx: Context, ids: Ids, seed: int):
        self.ctx, self.ids = ctx, ids
        # The hot factories, compiled: same rows as build(), a tenth of the time (maker.py).
        self.product_row = RowMaker(ProductRow)
        self.combination_row = RowMaker(CombinationRow)
        self.image_row = RowMaker(ImageRow)
        self.stock_row = RowMaker(StockRow)
        self.specific_price_row = RowMaker(SpecificPriceRow)
        self.product_supplier_row = RowMaker(ProductSupplierRow)
        self.identity_row = RowMaker(IdentityRow)
        self.rng = random.Random(seed)
        self.key = self.rng.randrange(10**9)  # makes EANs and supplier references seed-specific
        self.pairs = [(s, c) for s in ctx.sizes for c in ctx.colors]

    def products(self, count: int) -> tuple[Rows, list[Sold]]:
        """``count`` new products with their translations, links, stock, images and variants."""
        out: Rows = defaultdict(list)
        sold = []
        for _ in range(count):
            sold.append(self._product(out))
        return out, sold

    def _product(self, out: Rows) -> Sold:
        rng, ctx, ids = self.rng, self.ctx, self.ids
        pid = ids("product")
        leaf = rng.choice(ctx.leaves)
        brand = rng.choice(ctx.manufacturers) if rng.random() < MANUFACTURER_SHARE else None
        product = self.product_row(
            id=pid,
            reference=f"{leaf.code}-{pid:06d}",
            ean13=ean13_for(pid, self.key) if rng.random() < EAN13_SHARE else None,
            id_manufacturer=brand[0] if brand else None,
            id_category_default=leaf.id,
        )
        out["product"].append(product)
        name = product_name(
            rng.choice(leaf.nouns), rng.choice(words.QUALIFIERS), rng.choice(words.SERIES)
        )
        material = rng.choice(words.MATERIALS)
        out["product_lang"].extend(
            product_lang_rows(pid, name, brand[1] if brand else "our workshop", material, ctx.langs)
        )
        for id_category in leaf.path:
            position = ctx.positions.get(id_category, -1) + 1
            ctx.positions[id_category] = position
            out["category_product"].append(
                {"id_category": id_category, "id_product": pid, "position": position}
            )
        for tag in rng.sample(ctx.tags, k=min(len(ctx.tags), rng.choice((0, 1, 1, 2, 2, 3)))):
            out["product_tag"].extend({"id_product": pid, "id_tag": id_tag} for id_tag in tag)
        images = [
            self.image_row(id=ids("image"), id_product=pid, position=position)
            for position in range(1, rng.choice((1, 1, 2, 2, 3)) + 1)
        ]
        out["image"].extend(images)
        for image in images:
            out["image_lang"].extend(lang_rows("id_image", image["id"], name, ctx.langs, "legend"))
        variants = []
        if self.pairs and rng.random() < COMBINATION_SHARE:
            variants = self._combinations(out, product, images)
        quantities = [self._stock(out, pid, row["id"]) for row, _, _ in variants]
        # As in PrestaShop, a product with variants has the sum of their stock.
        self._stock(out, pid, 0, sum(quantities) if variants else None)
        if rng.random() < SPECIFIC_PRICE_SHARE:
            on = rng.choice(variants)[0]["id"] if variants and rng.random() < 0.2 else 0
            out["specific_price"].append(
                self.specific_price_row(
                    id=ids("specific_price"),
                    id_product=pid,
                    id_product_attribute=on,
                    base_price=product["price"],
                )
            )
        if ctx.suppliers and rng.random() < SUPPLIER_SHARE:
            self._supplier(out, product, variants)
        return Sold(product, name, variants)

    def _combinations(self, out: Rows, product: dict, images: list[dict]) -> list:
        pairs = sorted(self.rng.sample(self.pairs, k=min(len(self.pairs), self.rng.randint(2, 6))))
        variants = []
        for index, ((size_id, size), (color_id, color, code)) in enumerate(pairs):
            cid = self.ids("product_attribute")
            ean = ean13_for(cid + COMBINATION_EAN_OFFSET, self.key) if product["ean13"] else None
            row = self.combination_row(
                id=cid,
                id_product=product["id"],
                reference=f"{product['reference']}-{slugify(size).upper()}-{code}",
                ean13=ean,
                default_on=index == 0,
                date_upd=product["date_upd"],
            )
            out["product_attribute"].append(row)
            out["product_attribute_combination"].extend(
                {"id_attribute": a, "id_product_attribute": cid} for a in (size_id, color_id)
            )
            out["product_attribute_image"].append(
                {"id_product_attribute": cid, "id_image": self.rng.choice(images)["id"]}
            )
            variants.append((row, size, color))
        return variants

    def _stock(self, out: Rows, pid: int, cid: int, quantity: int | None = None) -> int:
        row = self.stock_row(
            id=self.ids("stock_available"), id_product=pid, id_product_attribute=cid
        )
        if quantity is not None:
            row["quantity"] = quantity
        out["stock_available"].append(row)
        return row["quantity"]

    def _supplier(self, out: Rows, product: dict, variants: list) -> None:
        id_supplier, name, prefix = self.rng.choice(self.ctx.suppliers)
        reference = f"{prefix}-{base36(scramble(product['id'], self.key), 6)}"
        # A variant's supplier reference is the product's plus the variant's suffix ("M-BLK").
        cut = len(product["reference"]) + 1
        keyed = [(product, 0, reference, "product")] + [
            (row, row["id"], f"{reference}-{row['reference'][cut:]}", "combination")
            for row, _size, _color in variants
        ]
        for row, cid, ref, kind in keyed:
            out["product_supplier"].append(
                self.product_supplier_row(
                    id=self.ids("product_supplier"),
                    id_product=product["id"],
                    id_product_attribute=cid,
                    id_supplier=id_supplier,
                    product_supplier_reference=ref,
                    product_supplier_price_te=product["wholesale_price"],
                )
            )
            out["identity"].append(
                self.identity_row(
                    id=self.ids("identity"),
                    source=supplier_source(name),
                    entity_type=kind,
                    reference=ref,
                    local_id=row["id"],
                    date_add=product["date_add"],
                )
            )
