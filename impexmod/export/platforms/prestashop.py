"""``prestashop``: PrestaShop back-office import CSV (reference: prestashop-import-csv.md).

PrestaShop imports products and combinations separately, mapping columns by position: a
products exporter writes the Products file, a combinations exporter the Combinations file,
each in the field order of the import controller (8.x), so no column needs remapping.
"""

from __future__ import annotations

from decimal import Decimal

from impexmod.entities.combinations import CombinationRecord
from impexmod.entities.products import ProductRecord
from impexmod.export.formats.base import InvalidOption
from impexmod.export.platforms import PlatformTemplate, register
from impexmod.export.platforms import lookups as lk
from impexmod.export.platforms.base import PlatformWriter, check_choice
from impexmod.export.platforms.values import day, discount, neutralise, number, utcnow
from impexmod.messages import msg

PRODUCT_FIELDS = [
    "ID",
    "Active (0/1)",
    "Name",
    "Categories (x,y,z...)",
    "Price tax excluded",
    "Tax rule ID",
    "Cost price",
    "On sale (0/1)",
    "Discount amount",
    "Discount percent",
    "Discount from (yyyy-mm-dd)",
    "Discount to (yyyy-mm-dd)",
    "Reference #",
    "Supplier reference #",
    "Supplier",
    "Brand",
    "EAN-13",
    "UPC",
    "MPN",
    "Ecotax",
    "Width",
    "Height",
    "Depth",
    "Weight",
    "Delivery time of in-stock products",
    "Delivery time of out-of-stock products with allowed orders",
    "Quantity",
    "Minimal quantity",
    "Low stock level",
    "Receive a low stock alert by email",
    "Visibility",
    "Additional shipping cost",
    "Unit for the price per unit",
    "Price per unit",
    "Summary",
    "Description",
    "Tags (x,y,z...)",
    "Meta title",
    "Meta keywords",
    "Meta description",
    "Rewritten URL",
    "Label when in stock",
    "Label when backorder allowed",
    "Available for order (0 = No, 1 = Yes)",
    "Product availability date",
    "Product creation date",
    "Show price (0 = No, 1 = Yes)",
    "Image URLs (x,y,z...)",
    "Image alt texts (x,y,z...)",
    "Delete existing images (0 = No, 1 = Yes)",
    "Feature (Name:Value:Position:Customized)",
    "Available online only (0 = No, 1 = Yes)",
    "Condition",
    "Customizable (0 = No, 1 = Yes)",
    "Uploadable files (0 = No, 1 = Yes)",
    "Text fields (0 = No, 1 = Yes)",
    "Action when out of stock",
    "Virtual product (0 = No, 1 = Yes)",
    "File URL",
    "Number of allowed downloads",
    "Expiration date",
    "Number of days",
    "ID / Name of the store",
    "Advanced Stock Management",
    "Depends on stock",
    "Warehouse",
    "Accessories (x,y,z...)",
]
COMBINATION_FIELDS = [
    "Product ID",
    "Product Reference",
    "Attribute (Name:Type:Position)*",
    "Value (Value:Position)*",
    "Supplier reference",
    "Reference",
    "EAN-13",
    "UPC",
    "MPN",
    "Cost price",
    "Impact on price",
    "Ecotax",
    "Quantity",
    "Minimal quantity",
    "Low stock level",
    "Receive a low stock alert by email",
    "Impact on weight",
    "Default (0 = No, 1 = Yes)",
    "Combination availability date",
    "Choose among product images by position (1,2,3...)",
    "Image URLs (x,y,z...)",
    "Image alt texts (x,y,z...)",
    "ID / Name of the store",
    "Advanced Stock Management",
    "Depends on stock",
    "Warehouse",
]
SEPARATORS = {";": ";", ",": ",", "tab": "\t", "|": "|"}


class PrestaShopWriter(PlatformWriter):
    """Writes PrestaShop's Products or Combinations import CSV, streaming row by row."""

    name = "prestashop"
    title = "PrestaShop import CSV"
    ext = "csv"
    OPTIONS = {
        **PlatformWriter.OPTIONS,
        "separator": "field separator: ; (default), ',', tab or |",
        "multi_separator": "separator inside multi-value cells: , (default), | or ;",
        "categories": "paths (default: names, Parent/Child) or ids (this shop's category ids)",
    }
    deletion_note = "delete those products in the PrestaShop back office"

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        options = super().check_options(entity, options)
        if "separator" in options:
            if options["separator"] not in SEPARATORS:
                raise InvalidOption(
                    "separator", msg("choose one of %(choices)s", choices=", ".join(SEPARATORS))
                )
        check_choice(options, "categories", ("paths", "ids"))
        multi = options.get("multi_separator", ",")
        if multi not in (",", "|", ";"):
            raise InvalidOption("multi_separator", msg("choose one of ',', | or ;"))
        if SEPARATORS[options.get("separator", ";")] == multi:
            raise InvalidOption("multi_separator", msg("must differ from the field separator"))
        return options

    def start(self) -> None:
        self.multi = self.options.get("multi_separator", ",")
        self.by_ids = self.options.get("categories") == "ids"
        self.out = self.csv_writer(delimiter=SEPARATORS[self.options.get("separator", ";")])
        self.combinations = self.setup.entity == "combinations"
        self.header = COMBINATION_FIELDS if self.combinations else PRODUCT_FIELDS
        self.out.writerow(self.header)
        self.now = utcnow()

    def load(self, descriptor, ctx, records: list) -> None:
        if self.combinations:
            ids = sorted({r.row.id_product for r in records})
            self.briefs = lk.product_briefs(ctx, ids)
        else:
            ids = [r.row.id for r in records]
            self.policies = lk.stock_policies(ctx, ids)
            self.brands = lk.manufacturers(ctx, [r.row.id_manufacturer for r in records])
            self.tree = lk.categories(ctx, self.lang_id, [c for r in records for c in r.categories])
        self.suppliers = lk.supplier_references(ctx, ids)

    def item(self, text: str | None) -> str:
        """One value of a multi-value cell: the multi-value separator cannot appear inside."""
        return (text or "").replace(self.multi, " ").strip()

    def _write(self, row: dict[str, str]) -> None:
        self.out.writerow([row.get(column, "") for column in self.header])

    def write_record(self, descriptor, ctx, record) -> None:
        if self.combinations:
            self._combination(ctx, record)
        else:
            self._product(ctx, record)

    def _product(self, ctx, rec: ProductRecord) -> None:
        p = rec.row
        lang = lk.lang_row(rec.langs, self.lang_id)
        if lang is None or not (lang.name or "").strip():
            self.leave_out(ctx, self.label(ctx, p), f"no name in {self.lang}")
            return
        sale = discount(rec.specific_prices, p.price, Decimal(0), 0, self.now, True)
        amount_off = percent = ""
        if sale is not None:
            if sale.kind == "percentage" and sale.fixed_price is None:
                percent = number(sale.reduction * 100)
            else:
                amount_off = number(p.price - sale.price)
        chosen = self.tree.deepest(rec.categories, p.id_category_default)
        categories = [
            str(c)
            if self.by_ids
            else "/".join(self.item(n).replace("/", " ") for n in self.tree.path(c))
            for c in chosen
        ]
        supplier = self.suppliers.get((p.id, 0))
        legends = [lk.lang_row(legend_rows, self.lang_id) for _image, legend_rows in rec.images]
        self._write(
            {
                "ID": str(p.id),
                "Active (0/1)": "1" if p.active else "0",
                "Name": neutralise(lang.name),
                "Categories (x,y,z...)": self.multi.join(c for c in categories if c),
                "Price tax excluded": number(p.price),
                "Tax rule ID": str(p.id_tax_rules_group),
                "Cost price": number(p.wholesale_price),
                "On sale (0/1)": "0",
                "Discount amount": amount_off,
                "Discount percent": percent,
                "Discount from (yyyy-mm-dd)": day(sale.start) if sale else "",
                "Discount to (yyyy-mm-dd)": day(sale.end) if sale else "",
                "Reference #": p.reference or "",
                "Supplier reference #": supplier[1] if supplier else "",
                "Supplier": neutralise(supplier[0]) if supplier else "",
                "Brand": neutralise(self.brands.get(p.id_manufacturer, "")),
                "EAN-13": p.ean13 or "",
                "UPC": p.upc or "",
                "MPN": p.mpn or "",
                "Ecotax": number(p.ecotax),
                "Width": number(p.width),
                "Height": number(p.height),
                "Depth": number(p.depth),
                "Weight": number(p.weight),
                "Quantity": str(rec.quantity) if rec.quantity is not None else "",
                "Visibility": p.visibility or "both",
                "Summary": lang.description_short or "",
                "Description": lang.description or "",
                "Tags (x,y,z...)": self.multi.join(
                    neutralise(self.item(t.name)) for t in rec.tags if t.id_lang == self.lang_id
                ),
                "Rewritten URL": lang.link_rewrite or "",
                "Product creation date": p.date_add.strftime("%Y-%m-%d %H:%M:%S")
                if p.date_add
                else "",
                "Image URLs (x,y,z...)": self.multi.join(image.url for image, _ in rec.images),
                "Image alt texts (x,y,z...)": self.multi.join(
                    neutralise(self.item(legend.legend if legend else "")) for legend in legends
                )
                if any(legend is not None and legend.legend for legend in legends)
                else "",
                "Delete existing images (0 = No, 1 = Yes)": "0",
                "Condition": p.condition or "new",
                "Action when out of stock": str(self.policies.get((p.id, 0), 2)),
            }
        )

    def _combination(self, ctx, rec: CombinationRecord) -> None:
        c = rec.row
        brief = self.briefs.get(c.id_product)
        opts = lk.options(ctx, rec, self.lang_id)
        if not opts:
            what = f"combination {c.reference or '(no reference)'} ({ctx.shop} {c.id})"
            self.leave_out(ctx, what, "no attribute: PrestaShop needs at least one")
            return
        clean = lambda text: self.item(text).replace(":", " ")  # noqa: E731 - ':' splits a triple
        positions = []
        if brief is not None:
            positions = [
                str(brief.image_urls.index(u) + 1) for u in rec.image_urls if u in brief.image_urls
            ]
        supplier = self.suppliers.get((c.id_product, c.id))
        self._write(
            {
                "Product ID": str(c.id_product),
                "Product Reference": (brief.reference or "") if brief else "",
                "Attribute (Name:Type:Position)*": self.multi.join(
                    f"{neutralise(clean(o.group))}:{o.group_type}:{o.group_position}" for o in opts
                ),
                "Value (Value:Position)*": self.multi.join(
                    f"{neutralise(clean(o.value))}:{o.value_position}" for o in opts
                ),
                "Supplier reference": supplier[1] if supplier else "",
                "Reference": c.reference or "",
                "EAN-13": c.ean13 or "",
                "UPC": c.upc or "",
                "MPN": c.mpn or "",
                "Cost price": number(c.wholesale_price),
                "Impact on price": number(c.price),
                "Ecotax": number(c.ecotax),
                "Quantity": str(rec.quantity) if rec.quantity is not None else "",
                "Impact on weight": number(c.weight),
                "Default (0 = No, 1 = Yes)": "1" if c.default_on else "0",
                "Choose among product images by position (1,2,3...)": self.multi.join(positions),
            }
        )


register(
    PlatformTemplate(
        name="prestashop",
        title="PrestaShop import CSV (products, combinations)",
        entities=("products", "combinations"),
        ext="csv",
        load=lambda: PrestaShopWriter,
    )
)
