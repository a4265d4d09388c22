"""Declarations shared by the dict factories (bulk seed) and the ORM factories (tests).

Each class here is an abstract factory: ``rows.py`` turns it into a factory of plain dicts for
Core inserts, ``orm.py`` into a SQLAlchemy model factory. Defaults are the ones a test expects
(an active, new product); the bulk rows override a few with realistic mixes.
"""

from __future__ import annotations

from decimal import Decimal
from string import ascii_uppercase

import factory
from factory.random import randgen

from impexmod.factories import words
from impexmod.factories.values import (
    CATALOG_DAYS,
    CENT,
    EPOCH,
    ZERO,
    Weighted,
    catalog_price,
    date_in_catalog,
    email_for,
    later,
    measure,
    money,
    random_ean13,
    stock_quantity,
    wholesale_of,
    with_tax,
)


class Fields(factory.Factory):
    """Base of the shared declarations (abstract: no model)."""

    class Meta:
        abstract = True


class DatedFields(Fields):
    """A creation date within the catalog's span, and a later update date."""

    date_add = factory.LazyFunction(date_in_catalog)
    date_upd = factory.LazyAttribute(lambda o: later(o.date_add))


class ManufacturerFields(DatedFields):
    name = factory.Sequence(lambda n: f"{words.MANUFACTURERS[n % len(words.MANUFACTURERS)]} {n}")
    active = True


class SupplierFields(DatedFields):
    name = factory.Sequence(lambda n: f"Supplier {n}")
    active = True


class CategoryFields(DatedFields):
    id_parent = None
    level_depth = 0
    position = 0
    active = True
    is_root_category = False


class ProductFields(DatedFields):
    reference = factory.Sequence(lambda n: f"SKU-{n + 1:06d}")
    ean13 = factory.LazyFunction(random_ean13)
    upc = None
    isbn = None
    mpn = factory.LazyFunction(
        lambda: (
            f"{randgen.choice(ascii_uppercase)}{randgen.randrange(10**6):06d}"
            if randgen.random() < 0.5
            else None
        )
    )
    price = factory.LazyFunction(catalog_price)
    wholesale_price = factory.LazyAttribute(lambda o: wholesale_of(o.price))
    ecotax = ZERO
    weight = factory.LazyFunction(lambda: measure(0.05, 8))
    width = factory.LazyFunction(lambda: measure(1, 60, 1))
    height = factory.LazyFunction(lambda: measure(1, 60, 1))
    depth = factory.LazyFunction(lambda: measure(1, 40, 1))
    active = True
    condition = "new"
    visibility = "both"
    id_manufacturer = None
    id_category_default = None
    id_tax_rules_group = 1


class CombinationFields(Fields):
    reference = factory.Sequence(lambda n: f"SKU-V{n + 1:06d}")
    ean13 = factory.LazyFunction(random_ean13)
    upc = None
    isbn = None
    mpn = None
    # Impacts on the product's price and weight: most variants cost the same.
    price = factory.LazyFunction(Weighted((ZERO, 85), (Decimal("2"), 10), (Decimal("5"), 5)))
    wholesale_price = ZERO
    ecotax = ZERO
    weight = ZERO
    default_on = False
    date_upd = factory.LazyFunction(date_in_catalog)


class StockFields(Fields):
    id_product_attribute = 0
    quantity = factory.LazyFunction(stock_quantity)
    out_of_stock = 2  # PrestaShop's "use the shop default"


def _discount_window() -> tuple:
    # Half the discounts never end; the others run for up to two months in the catalog's span.
    if randgen.random() < 0.5:
        return (None, None)
    start = later(EPOCH, CATALOG_DAYS)
    return (start, later(start, 60))


class SpecificPriceFields(Fields):
    class Params:
        window = factory.LazyFunction(_discount_window)
        base_price = Decimal("50")  # the discounted price: an amount off stays below it

    id_product_attribute = 0
    id_shop = 0
    id_currency = 0
    id_country = 0
    id_group = 0
    id_customer = 0
    price = Decimal("-1")  # -1: keep the product's price, apply the reduction
    from_quantity = factory.LazyFunction(Weighted((1, 85), (5, 10), (10, 5)))
    reduction_type = factory.LazyFunction(Weighted(("percentage", 75), ("amount", 25)))
    reduction = factory.LazyAttribute(
        lambda o: (
            Decimal(randgen.choice((10, 15, 20, 25, 30, 50))) / 100
            if o.reduction_type == "percentage"
            else (Decimal(o.base_price) * randgen.randrange(5, 31) / 100).quantize(CENT)
        )
    )
    reduction_tax = True
    date_from = factory.LazyAttribute(lambda o: o.window[0])
    date_to = factory.LazyAttribute(lambda o: o.window[1])


class ProductSupplierFields(Fields):
    id_product_attribute = 0
    product_supplier_reference = factory.Sequence(lambda n: f"SUP-{n + 1:07d}")
    product_supplier_price_te = factory.LazyFunction(lambda: money(2, 120))


class IdentityFields(Fields):
    entity_type = "product"
    date_add = factory.LazyFunction(date_in_catalog)
    date_upd = factory.SelfAttribute("date_add")


class CustomerFields(DatedFields):
    # Faker is fine here: a shop has hundreds of customers, not hundreds of thousands.
    firstname = factory.Faker("first_name")
    lastname = factory.Faker("last_name")
    email = factory.LazyAttributeSequence(lambda o, n: email_for(o.firstname, o.lastname, n))
    active = True
    newsletter = factory.LazyFunction(lambda: randgen.random() < 0.3)


class AddressFields(DatedFields):
    alias = factory.LazyFunction(Weighted(("Home", 80), ("Work", 20)))
    company = None
    address1 = factory.Faker("street_address")
    address2 = None
    postcode = factory.Faker("postcode")
    city = factory.Faker("city")
    country_iso = "FR"
    phone = factory.Faker("numerify", text="0# ## ## ## ##")


class OrderFields(DatedFields):
    reference = factory.LazyFunction(lambda: "".join(randgen.choices(ascii_uppercase, k=9)))
    payment = factory.LazyFunction(lambda: randgen.choice(words.PAYMENTS))
    currency_iso = "EUR"
    total_products = ZERO
    total_shipping = ZERO
    total_paid_tax_excl = ZERO
    total_paid_tax_incl = ZERO


class OrderDetailFields(Fields):
    product_attribute_id = 0
    product_reference = None
    product_quantity = factory.LazyFunction(Weighted((1, 70), (2, 20), (3, 10)))
    unit_price_tax_excl = ZERO
    unit_price_tax_incl = factory.LazyAttribute(lambda o: with_tax(o.unit_price_tax_excl))


class OrderHistoryFields(Fields):
    date_add = factory.LazyFunction(date_in_catalog)
