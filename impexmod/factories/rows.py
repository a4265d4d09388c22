"""Factories of plain dicts, one per table, for Core bulk inserts; and the link-row builders.

Entity rows come from these factories: ``ProductRow.build(id=7)``, or, in bulk, the same
declarations through a :class:`~impexmod.factories.maker.RowMaker`. Rows that only translate or
link entities (product_lang, image_lang, category_product, ...) come from the small functions
at the end, which the ORM factories use too: they hold nothing random a declaration would add.
"""

from __future__ import annotations

from collections.abc import Mapping

import factory
from factory.random import randgen

from impexmod.factories import fields
from impexmod.factories.values import Weighted, slugify
from impexmod.factories.words import DESCRIPTIONS, SHORT_DESCRIPTIONS, Word

IMAGE_URL = "https://cdn.example.com/img/{id}.jpg"


class ManufacturerRow(fields.ManufacturerFields):
    class Meta:
        model = dict


class SupplierRow(fields.SupplierFields):
    class Meta:
        model = dict


class CategoryRow(fields.CategoryFields):
    class Meta:
        model = dict


class ProductRow(fields.ProductFields):
    """A product; a seeded catalog has a few inactive, used or hidden ones, as real ones do."""

    class Meta:
        model = dict

    active = factory.LazyFunction(lambda: randgen.random() < 0.95)
    condition = factory.LazyFunction(Weighted(("new", 96), ("refurbished", 3), ("used", 1)))
    visibility = factory.LazyFunction(
        Weighted(("both", 94), ("catalog", 3), ("search", 2), ("none", 1))
    )


class CombinationRow(fields.CombinationFields):
    class Meta:
        model = dict


class StockRow(fields.StockFields):
    class Meta:
        model = dict


class SpecificPriceRow(fields.SpecificPriceFields):
    class Meta:
        model = dict
        # The table's columns are "from" and "to"; the model's attributes date_from, date_to.
        rename = {"date_from": "from", "date_to": "to"}


class ProductSupplierRow(fields.ProductSupplierFields):
    class Meta:
        model = dict


class IdentityRow(fields.IdentityFields):
    class Meta:
        model = dict


class ImageRow(factory.Factory):
    """An image of a product; the first one is the cover."""

    class Meta:
        model = dict

    position = 1
    cover = factory.LazyAttribute(lambda o: o.position == 1)
    url = factory.LazyAttribute(lambda o: IMAGE_URL.format(id=o.id))


class CustomerRow(fields.CustomerFields):
    class Meta:
        model = dict


class AddressRow(fields.AddressFields):
    class Meta:
        model = dict


class OrderRow(fields.OrderFields):
    class Meta:
        model = dict


class OrderDetailRow(fields.OrderDetailFields):
    class Meta:
        model = dict


class OrderHistoryRow(fields.OrderHistoryFields):
    class Meta:
        model = dict


def product_name(noun: Word, qualifier: Word, series: str) -> Word:
    """A product's name in both languages, e.g. "Orion Classic Mug" / "Mug classique Orion"."""
    return Word(f"{series} {qualifier.en} {noun.en}", f"{noun.fr} {qualifier.fr.lower()} {series}")


def product_lang_rows(
    id_product: int, name: Word, brand: str, material: Word, langs: Mapping[str, int]
) -> list[dict]:
    """The product_lang rows of one product, one per language in ``langs`` (iso -> id)."""
    out = []
    for iso, id_lang in langs.items():
        text = name.in_lang(iso)
        what = material.in_lang(iso)
        out.append(
            {
                "id_product": id_product,
                "id_lang": id_lang,
                "name": text,
                "description": DESCRIPTIONS.in_lang(iso).format(
                    name=text, brand=brand, material=what
                ),
                "description_short": SHORT_DESCRIPTIONS.in_lang(iso).format(
                    name=text, material=what
                ),
                "link_rewrite": slugify(text),
            }
        )
    return out


def lang_rows(key: str, id_: int, names: Word, langs: Mapping[str, int], field: str) -> list[dict]:
    """One row per language holding ``names`` in ``field`` (category_lang, image_lang, ...)."""
    return [
        {key: id_, "id_lang": id_lang, field: names.in_lang(iso)} for iso, id_lang in langs.items()
    ]
