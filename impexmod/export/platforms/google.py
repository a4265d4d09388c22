"""``google-shopping`` (RSS 2.0 with the ``g:`` namespace) and ``google-shopping-tsv``
(tab-delimited text): Google Merchant Center product data (reference: google-merchant-feed.md).

One item per variant: a product with combinations gives one item per combination, all sharing
``item_group_id``. An item missing what Google requires is left out with a warning naming it;
an invalid GTIN alone is dropped from an item that stays.
"""

from __future__ import annotations

import string
from contextlib import ExitStack
from decimal import Decimal
from urllib.parse import urlsplit

from lxml import etree

from impexmod.entities.products import ProductRecord
from impexmod.export.formats.base import InvalidOption
from impexmod.export.platforms import PlatformTemplate, register
from impexmod.export.platforms import lookups as lk
from impexmod.export.platforms.base import PlatformWriter, check_tax_rate, tax_factor
from impexmod.export.platforms.gtin import gtin_problem, isbn13, normalise
from impexmod.export.platforms.values import (
    amount,
    decimal,
    discount,
    iso_minute,
    neutralise,
    number,
    plain_text,
    truncate,
    utcnow,
)
from impexmod.messages import msg

G = "http://base.google.com/ns/1.0"
ATTRIBUTES = [
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "additional_image_link",
    "availability",
    "price",
    "sale_price",
    "sale_price_effective_date",
    "brand",
    "gtin",
    "mpn",
    "identifier_exists",
    "condition",
    "item_group_id",
    "color",
    "size",
    "product_type",
    "shipping_weight",
]
CONDITIONS = ("new", "refurbished", "used")
# Attribute group names (any case) that Google's ``size`` stands for; a color group is ``color``.
SIZE_GROUPS = frozenset(("size", "taille", "größe", "grösse", "talla", "taglia", "maat", "tamanho"))
DEFAULT_LINK = "{shop}/{id}-{rewrite}.html"
LINK_FIELDS = ("shop", "id", "rewrite", "lang", "reference")
MAX_ADDITIONAL_IMAGES = 10
MAX_ID = 50


def check_link(pattern: str) -> str:
    """A product link pattern, or InvalidOption naming what is wrong with it."""
    try:
        fields = [f for _lit, f, _spec, _conv in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        raise InvalidOption(
            "link", msg("%(pattern)s: %(error)s", pattern=repr(pattern), error=str(exc))
        ) from None
    unknown = [f for f in fields if f not in LINK_FIELDS]
    if unknown:
        raise InvalidOption(
            "link",
            msg(
                "unknown placeholder %(placeholder)s; use %(fields)s",
                placeholder="{" + unknown[0] + "}",
                fields=", ".join(LINK_FIELDS),
            ),
        )
    if not pattern.startswith(("{shop}", "http://", "https://")):
        raise InvalidOption("link", msg("a link starts with {shop}, http:// or https://"))
    return pattern


class GoogleItems(PlatformWriter):
    """Builds the items of a Google feed; the two subclasses write them as XML or text."""

    title = "Google Merchant Center feed"
    OPTIONS = {
        **PlatformWriter.OPTIONS,
        "brand": "brand of the products without a manufacturer (e.g. your shop's name)",
        "link": f"product page URL pattern with {{{'}, {'.join(LINK_FIELDS)}}} "
        f"(default {DEFAULT_LINK})",
        "tax_rate": "percent added to the catalog's tax-excluded prices (e.g. 20 for 20% VAT)",
    }
    deletion_note = (
        "Google removes the items missing from a full feed: give this exporter the full strategy"
    )

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        options = super().check_options(entity, options)
        if "link" in options:
            options["link"] = check_link(options["link"].strip())
        if "brand" in options:
            options["brand"] = options["brand"].strip()
            if len(options["brand"]) > 70:
                raise InvalidOption("brand", msg("at most %(count)s characters", count=70))
        check_tax_rate(options)
        return options

    def start(self) -> None:
        self.now = utcnow()
        self.link_pattern = self.options.get("link") or DEFAULT_LINK
        self.default_brand = self.options.get("brand") or ""
        self.tax = tax_factor(self.options)
        self.begin()

    def begin(self) -> None:
        """Write what comes before the first item."""

    def begin_run(self, ctx) -> None:
        if self.setup.incremental:
            ctx.warnings.append(
                f"{self.name}: this run lists only what changed, but Google takes each file as "
                "the whole catalog and removes the items missing from it: use the full strategy"
            )
        host = urlsplit(self.shop_url).hostname or ""
        if host in ("", "127.0.0.1", "localhost", "::1"):
            ctx.warnings.append(
                f"{self.name}: product links point at {self.shop_url or '(nothing)'}: "
                "set IMPEXMOD_SHOP_URL to the storefront's address"
            )

    def load(self, descriptor, ctx, records: list[ProductRecord]) -> None:
        self.brands = lk.manufacturers(ctx, [r.row.id_manufacturer for r in records])
        self.tree = lk.categories(ctx, self.lang_id, [r.row.id_category_default for r in records])

    def write_record(self, descriptor, ctx, rec: ProductRecord) -> None:
        for item in self.items(ctx, rec):
            self.write_item(item)

    def write_item(self, item: list[tuple[str, str | list[str]]]) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------------------- the items

    def items(self, ctx, rec: ProductRecord):
        """The items of one product: (attribute, value or values) pairs in ATTRIBUTES order."""
        p = rec.row
        what = self.label(ctx, p)
        if not p.active:
            self.left_out["inactive"] += 1  # a choice of the merchant, not missing data
            return
        lang = lk.lang_row(rec.langs, self.lang_id)
        if lang is None or not (lang.name or "").strip():
            self.leave_out(ctx, what, f"no title in {self.lang}")
            return
        description = plain_text(lang.description) or plain_text(lang.description_short)
        if not description:
            self.leave_out(ctx, what, f"no description in {self.lang}")
            return
        condition = (p.condition or "new").lower()
        if condition not in CONDITIONS:
            self.leave_out(ctx, what, f"condition {p.condition!r} is not new, refurbished or used")
            return
        brand = self.brands.get(p.id_manufacturer) or self.default_brand
        if not brand and condition == "new":
            self.leave_out(ctx, what, "no brand (give it a manufacturer, or set the option brand=)")
            return
        images = [image.url for image, _ in sorted(rec.images, key=lambda i: not i[0].cover)]
        if not images and not any(c.image_urls for c in rec.combinations):
            self.leave_out(ctx, what, "no image")
            return
        common = {
            "description": truncate(description, 5000),
            "brand": truncate(brand, 70),
            "condition": condition,
            "product_type": " > ".join(self.tree.path(p.id_category_default, with_root=True)),
        }
        if not rec.combinations:
            item = self._item(ctx, rec, lang, None, [], images, common, what)
            if item:
                yield item
            return
        group = p.reference if p.reference and len(p.reference) <= MAX_ID else str(p.id)
        for combo in rec.combinations:
            opts = lk.options(ctx, combo, self.lang_id)
            label = self.label(ctx, p, combo.row)
            item = self._item(
                ctx, rec, lang, combo, opts, images, {**common, "item_group_id": group}, label
            )
            if item:
                yield item

    def _item(self, ctx, rec, lang, combo, opts, images, common, what):
        p = rec.row
        c = combo.row if combo is not None else None
        image = (combo.image_urls[0] if combo is not None and combo.image_urls else None) or (
            images[0] if images else None
        )
        if not image:
            self.leave_out(ctx, what, "no image")
            return None
        impact = c.price if c is not None else Decimal(0)
        price = (p.price + impact) * self.tax
        if decimal(amount(price, self.currency)) <= 0:
            self.leave_out(ctx, what, "no price")
            return None
        own = c if c is not None else p
        ident = own.reference if own.reference and len(own.reference) <= MAX_ID else None
        if ident is None:
            ident = f"{p.id}-{c.id}" if c is not None else str(p.id)
        values = [o.value for o in opts if o.value]
        title = lang.name.strip() + (f" – {', '.join(values)}" if values else "")
        item: dict[str, str | list[str]] = {
            **common,
            "id": ident,
            "title": truncate(title, 150),
            "link": self._link(p, lang, c),
            "image_link": image,
            "additional_image_link": [u for u in images if u != image][:MAX_ADDITIONAL_IMAGES],
            "availability": "in_stock"
            if ((combo.quantity if combo is not None else rec.quantity) or 0) > 0
            else "out_of_stock",
            "price": f"{amount(price, self.currency)} {self.currency}",
        }
        sale = discount(rec.specific_prices, p.price, impact, c.id if c else 0, self.now, True)
        if sale is not None:
            item["sale_price"] = f"{amount(sale.price * self.tax, self.currency)} {self.currency}"
            if sale.end is not None:
                start = sale.start or self.now
                item["sale_price_effective_date"] = f"{iso_minute(start)}/{iso_minute(sale.end)}"
        code = own.ean13 or own.upc or (isbn13(own.isbn) if own.isbn else None)
        if code:
            problem = gtin_problem(code)
            if problem is None:
                item["gtin"] = normalise(code)
            else:
                message = f"{what}: GTIN {code} dropped from {self.name} ({problem}); item kept"
                self.warn(ctx, message, "invalid GTIN dropped")
        mpn = own.mpn or ""
        if mpn:
            item["mpn"] = mpn
        if "gtin" not in item and not (common["brand"] and mpn):
            item["identifier_exists"] = "no"
        for o in opts:
            if o.is_color:
                item["color"] = o.value
            elif o.group.strip().lower() in SIZE_GROUPS:
                item["size"] = o.value
        weight = p.weight + (c.weight if c is not None else 0)
        if weight > 0:
            item["shipping_weight"] = f"{number(weight)} kg"
        return [(name, item[name]) for name in ATTRIBUTES if item.get(name)]

    def _link(self, p, lang, c) -> str:
        url = self.link_pattern.format(
            shop=self.shop_url,
            id=p.id,
            rewrite=lang.link_rewrite or "",
            lang=self.lang,
            reference=p.reference or "",
        )
        if c is not None:  # PrestaShop preselects the combination from this parameter
            url += ("&" if "?" in url else "?") + f"id_product_attribute={c.id}"
        return url


class GoogleRssWriter(GoogleItems):
    """The RSS 2.0 feed, one ``<item>`` at a time through ``lxml.etree.xmlfile``."""

    name = "google-shopping"
    ext = "xml"
    textual = False

    def begin(self) -> None:
        self.stack = ExitStack()
        xf = self.xf = self.stack.enter_context(etree.xmlfile(self.fh, encoding="utf-8"))
        xf.write_declaration()
        self.stack.enter_context(xf.element("rss", {"version": "2.0"}, nsmap={"g": G}))
        xf.write("\n")
        self.stack.enter_context(xf.element("channel"))
        host = urlsplit(self.shop_url).hostname or "the shop"
        for tag, text in (
            ("title", f"{host} products"),
            ("link", self.shop_url),
            ("description", f"Products of {host} for Google Merchant Center"),
        ):
            xf.write("\n  ")
            el = etree.Element(tag)
            el.text = text
            xf.write(el)

    def write_item(self, item) -> None:
        xf = self.xf
        xf.write("\n  ")
        with xf.element("item"):
            for name, value in item:
                for one in value if isinstance(value, list) else [value]:
                    xf.write("\n    ")
                    with xf.element(f"{{{G}}}{name}"):
                        xf.write(one)
            xf.write("\n  ")

    def finish(self) -> None:
        self.xf.write("\n")

    def close(self, exc_type, exc, tb) -> None:
        self.stack.__exit__(exc_type, exc, tb)


class GoogleTsvWriter(GoogleItems):
    """The tab-delimited text feed: one line per item, the attribute names as header."""

    name = "google-shopping-tsv"
    ext = "txt"

    def begin(self) -> None:
        self.out = self.csv_writer(delimiter="\t", lineterminator="\n")
        self.out.writerow(ATTRIBUTES)

    def write_item(self, item) -> None:
        cells = dict(item)
        row = []
        for name in ATTRIBUTES:
            value = cells.get(name, "")
            if isinstance(value, list):  # repeated attribute: comma-separated, commas encoded
                value = ",".join(v.replace(",", "%2C") for v in value)
            elif name in ("title", "description", "brand", "product_type", "color", "size"):
                value = neutralise(value)
            row.append(value)
        self.out.writerow(row)


for _writer in (GoogleRssWriter, GoogleTsvWriter):
    register(
        PlatformTemplate(
            name=_writer.name,
            title="Google Shopping feed (RSS 2.0 XML)"
            if _writer is GoogleRssWriter
            else "Google Shopping feed (tab-delimited text)",
            entities=("products",),
            ext=_writer.ext,
            load=lambda w=_writer: w,
        )
    )
