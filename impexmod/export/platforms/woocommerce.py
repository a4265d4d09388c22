"""``woocommerce``: WooCommerce core product CSV (reference: woocommerce-product-csv.md).

A product without combinations is one ``simple`` row; a product with combinations is one
``variable`` parent row (all attribute values, no price) followed by one ``variation`` row per
combination pointing at the parent's SKU. Columns follow the core exporter's default order, then
one group of attribute columns per attribute group of the shop.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from impexmod.entities.products import ProductRecord
from impexmod.export.platforms import PlatformTemplate, register
from impexmod.export.platforms import lookups as lk
from impexmod.export.platforms.base import PlatformWriter
from impexmod.export.platforms.values import amount, day, discount, number, utcnow
from impexmod.models import AttributeGroup

FIXED = [
    "ID",
    "Type",
    "SKU",
    "GTIN, UPC, EAN, or ISBN",
    "Name",
    "Published",
    "Is featured?",
    "Visibility in catalog",
    "Short description",
    "Description",
    "Date sale price starts",
    "Date sale price ends",
    "Tax status",
    "Tax class",
    "In stock?",
    "Stock",
    "Low stock amount",
    "Backorders allowed?",
    "Sold individually?",
    "Weight (kg)",
    "Length (cm)",
    "Width (cm)",
    "Height (cm)",
    "Allow customer reviews?",
    "Purchase note",
    "Sale price",
    "Regular price",
    "Categories",
    "Tags",
    "Shipping class",
    "Images",
    "Download limit",
    "Download expiry days",
    "Parent",
    "Grouped products",
    "Upsells",
    "Cross-sells",
    "External URL",
    "Button text",
    "Position",
]
ATTRIBUTE_COLUMNS = ("name", "value(s)", "visible", "global", "default")
VISIBILITY = {"both": "visible", "catalog": "catalog", "search": "search", "none": "hidden"}
# WooCommerce's own exporter prefixes these with ' and its importer strips the prefix again.
ACTIVE_CONTENT = ("=", "+", "-", "@")


def attribute_header(count: int) -> list[str]:
    """The attribute columns for ``count`` attribute slots."""
    return [f"Attribute {n} {c}" for n in range(1, count + 1) for c in ATTRIBUTE_COLUMNS]


def cell(value: str) -> str:
    """A cell as WooCommerce's exporter writes it: line breaks as ``\\n``, formulas quoted."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "'" + value if value.startswith(ACTIVE_CONTENT) else value


def values_cell(values) -> str:
    """A multi-value cell: values joined by ``, ``, a comma inside a value written ``\\,``."""
    return ", ".join(v.replace(",", "\\,") for v in values if v)


class WooCommerceWriter(PlatformWriter):
    """Writes the WooCommerce product CSV, streaming row by row."""

    name = "woocommerce"
    title = "WooCommerce product CSV"
    ext = "csv"
    deletion_note = "trash those products in WooCommerce"

    def start(self) -> None:
        from impexmod.extensions import db

        # One attribute slot per attribute group of the shop: the header is fixed before the
        # first product, and no product can use more groups than the shop has.
        self.slots = db.session.scalar(select(func.count()).select_from(AttributeGroup)) or 0
        self.header = FIXED + attribute_header(self.slots)
        self.out = self.csv_writer()
        self.out.writerow(self.header)
        self.now = utcnow()

    def load(self, descriptor, ctx, records: list[ProductRecord]) -> None:
        self.policies = lk.stock_policies(ctx, [r.row.id for r in records])
        needed = [c for r in records for c in r.categories]
        self.tree = lk.categories(ctx, self.lang_id, needed)

    def _write(self, row: dict[str, str]) -> None:
        self.out.writerow([cell(row.get(column, "")) for column in self.header])

    def write_record(self, descriptor, ctx, rec: ProductRecord) -> None:
        product = rec.row
        lang = lk.lang_row(rec.langs, self.lang_id)
        if lang is None or not (lang.name or "").strip():
            self.leave_out(ctx, self.label(ctx, product), f"no name in {self.lang}")
            return
        base = self._product_cells(rec, lang)
        if not rec.combinations:
            self._write(
                {**base, "Type": "simple", **self._identity(product), **self._offer(rec, None)}
            )
            return
        if not product.reference:
            self.leave_out(
                ctx, self.label(ctx, product), "no SKU: its variations need their parent's SKU"
            )
            return
        per_combo = [(c, lk.options(ctx, c, self.lang_id)) for c in rec.combinations]
        groups: dict[int, tuple[int, str]] = {}
        values: dict[int, list[str]] = {}
        for _combo, opts in per_combo:
            for o in opts:
                groups.setdefault(o.group_id, (o.group_position, o.group))
                if o.value not in values.setdefault(o.group_id, []):
                    values[o.group_id].append(o.value)
        order = sorted(groups, key=lambda g: (groups[g][0], g))
        if len(order) > self.slots:
            self.leave_out(
                ctx, self.label(ctx, product), "uses an attribute group created during the run"
            )
            return
        default_opts = next((opts for c, opts in per_combo if c.row.default_on), [])
        chosen = {o.group_id: o.value for o in default_opts}
        parent = {**base, "Type": "variable", **self._identity(product)}
        for n, group_id in enumerate(order, start=1):
            parent.update(
                {
                    f"Attribute {n} name": groups[group_id][1],
                    f"Attribute {n} value(s)": values_cell(values[group_id]),
                    f"Attribute {n} visible": "1",
                    f"Attribute {n} global": "1",
                    f"Attribute {n} default": chosen.get(group_id, ""),
                }
            )
        self._write(parent)
        for combo, opts in per_combo:
            by_group = {o.group_id: o.value for o in opts}
            row = {
                "Type": "variation",
                **self._identity(combo.row),
                "Name": f"{lang.name} - {', '.join(o.value for o in opts)}" if opts else lang.name,
                "Published": "1",
                "Tax status": base["Tax status"],
                "Tax class": "parent",
                "Weight (kg)": number(product.weight + combo.row.weight, blank_zero=True),
                "Parent": product.reference,
                "Images": combo.image_urls[0] if combo.image_urls else "",
                **self._offer(rec, combo),
            }
            for n, group_id in enumerate(order, start=1):
                row[f"Attribute {n} name"] = groups[group_id][1]
                row[f"Attribute {n} value(s)"] = by_group.get(group_id, "").replace(",", "\\,")
                row[f"Attribute {n} visible"] = "1"
                row[f"Attribute {n} global"] = "1"
            self._write(row)

    def _product_cells(self, rec: ProductRecord, lang) -> dict[str, str]:
        """The cells a product's row and its variations' parent row share."""
        product = rec.row
        return {
            "Name": lang.name,
            "Published": "1" if product.active else "-1",
            "Is featured?": "0",
            "Visibility in catalog": VISIBILITY.get(product.visibility, "visible"),
            "Short description": lang.description_short or "",
            "Description": lang.description or "",
            "Tax status": "taxable" if product.id_tax_rules_group else "none",
            "Sold individually?": "0",
            "Weight (kg)": number(product.weight, blank_zero=True),
            "Length (cm)": number(product.depth, blank_zero=True),
            "Width (cm)": number(product.width, blank_zero=True),
            "Height (cm)": number(product.height, blank_zero=True),
            "Allow customer reviews?": "1",
            "Categories": values_cell(
                " > ".join(self.tree.path(c))
                for c in self.tree.deepest(rec.categories, product.id_category_default)
            ),
            "Tags": values_cell(t.name for t in rec.tags if t.id_lang == self.lang_id),
            "Images": values_cell(image.url for image, _legends in rec.images),
        }

    @staticmethod
    def _identity(row) -> dict[str, str]:
        return {
            "SKU": row.reference or "",
            "GTIN, UPC, EAN, or ISBN": row.ean13 or row.upc or row.isbn or "",
        }

    def _offer(self, rec: ProductRecord, combo) -> dict[str, str]:
        """Price, sale and stock cells of a simple product or a variation."""
        product = rec.row
        impact = combo.row.price if combo is not None else Decimal(0)
        combination_id = combo.row.id if combo is not None else 0
        sale = discount(rec.specific_prices, product.price, impact, combination_id, self.now, True)
        quantity = combo.quantity if combo is not None else rec.quantity
        backorders = lk.allows_orders(self.policies, product.id, combination_id)
        if quantity is None:
            in_stock = ""
        elif quantity > 0:
            in_stock = "1"
        else:
            in_stock = "backorder" if backorders else "0"
        return {
            "Regular price": amount(product.price + impact, self.currency),
            "Sale price": amount(sale.price, self.currency) if sale else "",
            "Date sale price starts": day(sale.start) if sale else "",
            "Date sale price ends": day(sale.end) if sale else "",
            "In stock?": in_stock,
            "Stock": str(quantity) if quantity is not None else "",
            "Backorders allowed?": "1" if backorders else "0",
        }


register(
    PlatformTemplate(
        name="woocommerce",
        title="WooCommerce product CSV",
        entities=("products",),
        ext="csv",
        load=lambda: WooCommerceWriter,
    )
)
