"""``shopify``: the Shopify product CSV, current header dialect (reference: shopify-product-csv.md).

One row per variant, all rows of a product sharing its URL handle; product-level cells on the
first row only; each extra image an extra row with only the handle and the image cells.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from impexmod.entities.products import ProductRecord
from impexmod.export.platforms import PlatformTemplate, register
from impexmod.export.platforms import lookups as lk
from impexmod.export.platforms.base import PlatformWriter
from impexmod.export.platforms.values import (
    amount,
    discount,
    neutralise,
    number,
    slug,
    utcnow,
)
from impexmod.models import ProductLang

HEADER = [
    "Title",
    "URL handle",
    "Description",
    "Vendor",
    "Product category",
    "Type",
    "Tags",
    "Published on online store",
    "Status",
    "SKU",
    "Barcode",
    "Option1 name",
    "Option1 value",
    "Option1 Linked To",
    "Option2 name",
    "Option2 value",
    "Option2 Linked To",
    "Option3 name",
    "Option3 value",
    "Option3 Linked To",
    "Price",
    "Compare-at price",
    "Cost per item",
    "Charge tax",
    "Tax code",
    "Unit price total measure",
    "Unit price total measure unit",
    "Unit price base measure",
    "Unit price base measure unit",
    "Inventory tracker",
    "Inventory quantity",
    "Continue selling when out of stock",
    "Weight value (grams)",
    "Weight unit for display",
    "Requires shipping",
    "Fulfillment service",
    "Product image URL",
    "Image position",
    "Image alt text",
    "Variant image URL",
    "Gift card",
    "SEO title",
    "SEO description",
    "Color (product.metafields.shopify.color-pattern)",
    "Google Shopping / Google product category",
    "Google Shopping / Gender",
    "Google Shopping / Age group",
    "Google Shopping / Manufacturer part number (MPN)",
    "Google Shopping / Ad group name",
    "Google Shopping / Ads labels",
    "Google Shopping / Condition",
    "Google Shopping / Custom product",
    "Google Shopping / Custom label 0",
    "Google Shopping / Custom label 1",
    "Google Shopping / Custom label 2",
    "Google Shopping / Custom label 3",
    "Google Shopping / Custom label 4",
]
MAX_OPTIONS = 3
MAX_VARIANTS = 2048
# Shared URL rewrites held to keep handles unique; past it every handle gets its product id.
MAX_SHARED = 10_000
GRAMS_PER_KG = Decimal(1000)  # the catalog's weights are in kg, as in a default PrestaShop


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


class ShopifyWriter(PlatformWriter):
    """Writes the Shopify product CSV, streaming row by row."""

    name = "shopify"
    title = "Shopify product CSV"
    ext = "csv"
    deletion_note = "archive or delete those products in the Shopify admin"

    def start(self) -> None:
        self.out = self.csv_writer()
        self.out.writerow(HEADER)
        self.handles: dict[int, str] = {}
        self.policies: dict = {}
        self.now = utcnow()

    def load(self, descriptor, ctx, records: list[ProductRecord]) -> None:
        ids = [r.row.id for r in records]
        self.policies = lk.stock_policies(ctx, ids)
        self.brands = lk.manufacturers(ctx, [r.row.id_manufacturer for r in records])
        self.tree = lk.categories(ctx, self.lang_id, [r.row.id_category_default for r in records])
        rewrites = {}
        for rec in records:
            row = lk.lang_row(rec.langs, self.lang_id)
            rewrites[rec.row.id] = row.link_rewrite if row and row.link_rewrite else ""
        shared = self._shared_rewrites(ctx)
        self.handles = {}
        for rec in records:
            rewrite = rewrites[rec.row.id]
            handle = slug(rewrite)
            if not handle or shared is None or rewrite in shared:
                # Not unique, or no Latin letter to keep: the id makes it unique.
                name = lk.lang_row(rec.langs, self.lang_id)
                base = handle or slug(name.name if name else "") or "product"
                handle = f"{base}-{rec.row.id}"
            self.handles[rec.row.id] = handle

    def _shared_rewrites(self, ctx) -> set[str] | None:
        """The URL rewrites several products share in the feed language (their handles get the
        product id), or None if they are too many to hold: then every handle gets its id.

        A handle names one product in the store, so it must be unique; one query per feed
        finds the shared rewrites (there is no index to ask for each chunk's).
        """
        key = f"platform.shopify.shared.{self.lang_id}"
        if key not in ctx.cache:
            rows = ctx.conn.execute(
                select(ProductLang.link_rewrite)
                .where(ProductLang.id_lang == self.lang_id)
                .group_by(ProductLang.link_rewrite)
                .having(func.count() > 1)
                .limit(MAX_SHARED + 1)
            ).scalars()
            shared = set(rows)
            ctx.cache[key] = shared if len(shared) <= MAX_SHARED else None
        return ctx.cache[key]

    def write_record(self, descriptor, ctx, rec: ProductRecord) -> None:
        product = rec.row
        lang = lk.lang_row(rec.langs, self.lang_id)
        if lang is None or not (lang.name or "").strip():
            self.leave_out(ctx, self.label(ctx, product), f"no title in {self.lang}")
            return
        variants = self._variants(ctx, rec)
        if variants is None:
            return
        names, rows = variants
        handle = self.handles[product.id]
        images = rec.images
        first = {
            "Title": neutralise(lang.name),
            "Description": lang.description or "",
            "Vendor": neutralise(self.brands.get(product.id_manufacturer, "")),
            "Type": neutralise(
                self.tree.names.get(product.id_category_default, "")
                if product.id_category_default
                else ""
            ),
            "Tags": ", ".join(
                neutralise(t.name.replace(",", " ")) for t in rec.tags if t.id_lang == self.lang_id
            ),
            "Published on online store": _bool(product.active and product.visibility != "none"),
            "Status": "active" if product.active else "draft",
            "Gift card": "FALSE",
            "Google Shopping / Manufacturer part number (MPN)": product.mpn or "",
            "Google Shopping / Condition": product.condition or "new",
        }
        for i, name in enumerate(names, start=1):
            first[f"Option{i} name"] = neutralise(name)
        if images:
            image, legends = images[0]
            legend = lk.lang_row(legends, self.lang_id)
            first.update(
                {
                    "Product image URL": image.url,
                    "Image position": "1",
                    "Image alt text": neutralise(legend.legend if legend else ""),
                }
            )
        for index, cells in enumerate(rows):
            row = {**(first if index == 0 else {}), **cells, "URL handle": handle}
            self.out.writerow([row.get(column, "") for column in HEADER])
        for position, (image, legends) in enumerate(images[1:], start=2):
            legend = lk.lang_row(legends, self.lang_id)
            row = {
                "URL handle": handle,
                "Product image URL": image.url,
                "Image position": str(position),
                "Image alt text": neutralise(legend.legend if legend else ""),
            }
            self.out.writerow([row.get(column, "") for column in HEADER])

    def _variants(self, ctx, rec: ProductRecord):
        """(option names, variant cells per row), or None if the product is left out."""
        product = rec.row
        if not rec.combinations:
            return ["Title"], [
                {"Option1 value": "Default Title", **self._variant_cells(rec, None, ())}
            ]
        per_combo = [(c, lk.options(ctx, c, self.lang_id)) for c in rec.combinations]
        groups: dict[int, tuple[int, str]] = {}
        for _combo, opts in per_combo:
            for o in opts:
                groups.setdefault(o.group_id, (o.group_position, o.group))
        order = sorted(groups, key=lambda g: (groups[g][0], g))
        if len(order) > MAX_OPTIONS:
            names = ", ".join(groups[g][1] for g in order)
            self.leave_out(
                ctx,
                self.label(ctx, product),
                f"{len(order)} options ({names}): Shopify takes at most {MAX_OPTIONS}",
            )
            return None
        # Variants without attributes still need an option to tell them apart: their SKU.
        names = [groups[g][1] or f"Option {i}" for i, g in enumerate(order, 1)] or ["Variant"]
        rows, seen = [], set()
        for combo, opts in per_combo:
            by_group = {o.group_id: o.value for o in opts}
            if order:
                values = tuple(by_group.get(g, "") for g in order)
            else:
                values = (combo.row.reference or f"#{combo.row.id}",)
            what = self.label(ctx, product, combo.row)
            if not all(values):
                missing = names[[bool(v) for v in values].index(False)]
                self.leave_out(ctx, what, f"no value for option {missing}")
                continue
            if values in seen:
                self.leave_out(ctx, what, "same option values as another variant")
                continue
            if len(rows) == MAX_VARIANTS:
                self.leave_out(ctx, what, f"more than {MAX_VARIANTS} variants")
                continue
            seen.add(values)
            cells = {f"Option{i} value": neutralise(v) for i, v in enumerate(values, 1)}
            rows.append({**cells, **self._variant_cells(rec, combo, opts)})
        if not rows:
            self.leave_out(ctx, self.label(ctx, product), "none of its variants can be listed")
            return None
        return names, rows

    def _variant_cells(self, rec: ProductRecord, combo, opts) -> dict[str, str]:
        product = rec.row
        crow = combo.row if combo is not None else None
        impact = crow.price if crow is not None else Decimal(0)
        regular = product.price + impact
        sale = discount(
            rec.specific_prices, product.price, impact, crow.id if crow else 0, self.now, False
        )
        quantity = combo.quantity if combo is not None else rec.quantity
        weight = product.weight + (crow.weight if crow is not None else 0)
        cost = crow.wholesale_price if crow is not None and crow.wholesale_price else None
        item = crow if crow is not None else product
        return {
            "SKU": item.reference or "",
            "Barcode": item.ean13 or item.upc or "",
            "Price": amount(sale.price if sale else regular, self.currency),
            "Compare-at price": amount(regular, self.currency) if sale else "",
            "Cost per item": amount(
                cost if cost is not None else product.wholesale_price, self.currency
            ),
            "Charge tax": _bool(bool(product.id_tax_rules_group)),
            "Inventory tracker": "shopify" if quantity is not None else "",
            "Inventory quantity": str(quantity) if quantity is not None else "",
            "Continue selling when out of stock": (
                "CONTINUE"
                if lk.allows_orders(self.policies, product.id, crow.id if crow else 0)
                else "DENY"
            ),
            "Weight value (grams)": number(weight * GRAMS_PER_KG, blank_zero=True),
            "Weight unit for display": "kg",
            "Requires shipping": "TRUE",
            "Fulfillment service": "manual",
            "Variant image URL": combo.image_urls[0]
            if combo is not None and combo.image_urls
            else "",
        }


register(
    PlatformTemplate(
        name="shopify",
        title="Shopify product CSV",
        entities=("products",),
        ext="csv",
        load=lambda: ShopifyWriter,
    )
)
