"""``amazon``: Amazon Seller Central flat files (reference: amazon-flat-file.md).

The Price & Quantity file by default, the Inventory Loader with ``file=inventory-loader``. Both
are tab-delimited text, one row per SKU: a product without combinations is one SKU, a product
with combinations one SKU per combination (these files have no parent rows and no images).
"""

from __future__ import annotations

import re
from decimal import Decimal

from impexmod.entities.products import ProductRecord
from impexmod.export.formats.base import InvalidOption
from impexmod.export.platforms import PlatformTemplate, register
from impexmod.export.platforms.base import PlatformWriter, check_choice, check_tax_rate, tax_factor
from impexmod.export.platforms.gtin import normalise, valid_gtin
from impexmod.export.platforms.values import amount, decimal, discount, utcnow
from impexmod.messages import msg

PRICE_QUANTITY = [
    "sku",
    "price",
    "minimum-seller-allowed-price",
    "maximum-seller-allowed-price",
    "quantity",
    "handling-time",
    "fulfillment-channel",
]
INVENTORY_LOADER = [
    "sku",
    "product-id",
    "product-id-type",
    "price",
    "minimum-seller-allowed-price",
    "maximum-seller-allowed-price",
    "item-condition",
    "quantity",
    "add-delete",
    "will-ship-internationally",
    "expedited-shipping",
    "standard-plus",
    "item-note",
    "fulfillment-center-id",
    "product-tax-code",
    "leadtime-to-ship",
    "merchant_shipping_group_name",
]
FILES = ("price-quantity", "inventory-loader")
# item-condition codes: 11 New, 10 Refurbished, 3 Used - Good (the catalog has one "used").
CONDITION_CODES = {"new": "11", "refurbished": "10", "used": "3"}
# product-id-type codes: 2 ISBN, 3 UPC, 4 EAN.
ID_TYPES = (("ean13", "4"), ("upc", "3"), ("isbn", "2"))
MAX_SKU = 40


class AmazonWriter(PlatformWriter):
    """Writes an Amazon flat file, streaming row by row."""

    name = "amazon"
    title = "Amazon flat file"
    ext = "txt"
    needs_language = False
    OPTIONS = {
        "file": "price-quantity (default: Price & Quantity) or inventory-loader",
        "fulfillment": "DEFAULT (merchant-fulfilled) or AMAZON_NA, AMAZON_EU, ... (FBA: no "
        "quantity); default: blank, the channel stays as it is",
        "handling_time": "days between order and dispatch (1 to 30); default: blank",
        "tax_rate": "percent added to the catalog's tax-excluded prices (e.g. 20 for 20% VAT)",
    }
    deletion_note = "close those listings in Seller Central"

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        options = super().check_options(entity, options)
        check_choice(options, "file", FILES)
        if "fulfillment" in options:
            value = options["fulfillment"].strip().upper()
            if not re.fullmatch(r"DEFAULT|AMAZON_[A-Z]{2,4}", value):
                raise InvalidOption(
                    "fulfillment", msg("DEFAULT or AMAZON_<region> such as AMAZON_EU")
                )
            options["fulfillment"] = value
        if "handling_time" in options:
            value = options["handling_time"].strip()
            if not value.isdigit() or not 1 <= int(value) <= 30:
                raise InvalidOption("handling_time", msg("a whole number of days from 1 to 30"))
            options["handling_time"] = str(int(value))
        check_tax_rate(options)
        return options

    def start(self) -> None:
        self.loader = self.options.get("file") == "inventory-loader"
        self.header = INVENTORY_LOADER if self.loader else PRICE_QUANTITY
        self.fulfillment = self.options.get("fulfillment", "")
        self.fba = self.fulfillment.startswith("AMAZON_")
        self.handling = self.options.get("handling_time", "")
        self.tax = tax_factor(self.options)
        self.out = self.csv_writer(delimiter="\t", lineterminator="\n")
        self.out.writerow(self.header)
        self.now = utcnow()

    def write_record(self, descriptor, ctx, rec: ProductRecord) -> None:
        if not rec.combinations:
            self._row(ctx, rec, None)
        for combo in rec.combinations:
            self._row(ctx, rec, combo)

    def _row(self, ctx, rec: ProductRecord, combo) -> None:
        p = rec.row
        c = combo.row if combo is not None else None
        own = c if c is not None else p
        what = self.label(ctx, p, c)
        sku = (own.reference or "").strip()
        if not sku:
            self.leave_out(ctx, what, "no SKU (reference)")
            return
        if len(sku) > MAX_SKU:
            self.leave_out(ctx, what, f"SKU longer than {MAX_SKU} characters")
            return
        impact = c.price if c is not None else Decimal(0)
        sale = discount(rec.specific_prices, p.price, impact, c.id if c else 0, self.now, False)
        price = (sale.price if sale else p.price + impact) * self.tax
        price_cell = amount(price, self.currency)
        if decimal(price_cell) <= 0:
            # A zero price rejects the row; blank keeps the price Amazon has.
            self.warn(ctx, f"{what}: no price, left blank in {self.name}", "no price")
            price_cell = ""
        quantity = combo.quantity if combo is not None else rec.quantity
        # An inactive product is not for sale: quantity 0 stops its offer.
        quantity = max(0, quantity or 0) if p.active else 0
        row = {
            "sku": sku,
            "price": price_cell,
            "quantity": "" if self.fba else str(quantity),
        }
        if self.loader:
            for column, type_code in ID_TYPES:
                code = normalise(getattr(own, column))
                if code and (column == "isbn" or valid_gtin(code)):
                    row["product-id"], row["product-id-type"] = code, type_code
                    break
            row.update(
                {
                    "item-condition": CONDITION_CODES.get((p.condition or "new").lower(), "11"),
                    "add-delete": "a",
                    "fulfillment-center-id": self.fulfillment,
                    "leadtime-to-ship": self.handling,
                }
            )
        else:
            row.update({"handling-time": self.handling, "fulfillment-channel": self.fulfillment})
        self.out.writerow([row.get(column, "") for column in self.header])


register(
    PlatformTemplate(
        name="amazon",
        title="Amazon flat file (Price & Quantity, or Inventory Loader)",
        entities=("products",),
        ext="txt",
        load=lambda: AmazonWriter,
    )
)
