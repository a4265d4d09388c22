"""ORM factories for tests: rows written through ``db.session``, so the change-tracking events
of :mod:`impexmod.catalog.changes` see them. Each call flushes; the test commits when it needs to.

    product = ProductFactory(reference="X", name="Widget", stock=5)
    CombinationFactory(product=product)
    OrderFactory(products=[product], state="Shipped")
"""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory
from factory.random import randgen
from sqlalchemy import select
from sqlalchemy.orm import Session

from impexmod.extensions import db
from impexmod.factories import fields, words
from impexmod.factories.reference import LANGUAGES
from impexmod.factories.rows import lang_rows, product_lang_rows, product_name
from impexmod.factories.seed import advance_sequences
from impexmod.factories.values import ZERO, slugify, with_tax
from impexmod.factories.words import Word
from impexmod.models import (
    Address,
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    CombinationAttribute,
    Customer,
    Language,
    Order,
    OrderDetail,
    OrderHistory,
    OrderState,
    Product,
    ProductLang,
    SpecificPrice,
    StockAvailable,
)


def ensure_languages(session: Session) -> dict[str, Language]:
    """English (id 1) and French (id 2), created if missing; returns them by iso code."""
    found = {lang.iso_code: lang for lang in session.scalars(select(Language))}
    missing = [(id_, iso, name) for id_, iso, name in LANGUAGES if iso not in found]
    if not missing:
        return found
    taken = {lang.id for lang in found.values()}
    for id_, iso, name in missing:
        free = id_ if id_ not in taken else max(taken) + 1
        found[iso] = Language(id=free, iso_code=iso, name=name, active=True)
        taken.add(free)
        session.add(found[iso])
    session.flush()
    if session.connection().dialect.name == "postgresql":
        # Explicit ids leave PostgreSQL's sequence behind: a later Language() would collide.
        advance_sequences(session.connection(), ["language"])
    return found


def ensure_order_states(session: Session) -> dict[str, OrderState]:
    """PrestaShop's standard order states, created if missing; returns them by name."""
    found = {state.name: state for state in session.scalars(select(OrderState))}
    for name, color, paid, shipped, delivery in words.ORDER_STATES:
        if name not in found:
            found[name] = OrderState(
                name=name, color=color, paid=paid, shipped=shipped, delivery=delivery
            )
            session.add(found[name])
    session.flush()
    return found


def _lang_ids() -> dict[str, int]:
    return {iso: lang.id for iso, lang in ensure_languages(db.session).items()}


class OrmFactory(SQLAlchemyModelFactory):
    """Base of the ORM factories: the app's session, flushed after each object."""

    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731 - the session of the app context
        sqlalchemy_session_persistence = "flush"


class CategoryFactory(OrmFactory, fields.CategoryFields):
    """A category (under ``parent=`` if given) named ``name=`` in every language."""

    class Meta:
        model = Category

    class Params:
        parent = None

    id_parent = factory.LazyAttribute(lambda o: o.parent.id if o.parent else None)
    level_depth = factory.LazyAttribute(lambda o: o.parent.level_depth + 1 if o.parent else 0)

    @factory.post_generation
    def name(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy passes the object
        """category_lang rows in every language."""
        if not create:
            return
        text = extracted or f"Category {obj.id}"
        for row in lang_rows("id_category", obj.id, Word(text, text), _lang_ids(), "name"):
            db.session.add(CategoryLang(**row, link_rewrite=slugify(text)))


class ProductFactory(OrmFactory, fields.ProductFields):
    """A product with its product_lang rows; ``name=``, ``stock=`` and ``categories=`` help."""

    class Meta:
        model = Product

    @factory.post_generation
    def name(obj, create, extracted, **kwargs):  # noqa: N805
        """product_lang rows in every language: ``name=`` or a generated name."""
        if not create:
            return
        name = (
            Word(extracted, extracted)
            if extracted
            else product_name(
                randgen.choice(words.GENERIC_NOUNS),
                randgen.choice(words.QUALIFIERS),
                randgen.choice(words.SERIES),
            )
        )
        material = randgen.choice(words.MATERIALS)
        for row in product_lang_rows(obj.id, name, "impexmod", material, _lang_ids()):
            db.session.add(ProductLang(**row))

    @factory.post_generation
    def stock(obj, create, extracted, **kwargs):  # noqa: N805
        """With ``stock=N``, the product's stock_available row."""
        if create and extracted is not None:
            StockAvailableFactory(product=obj, quantity=extracted)

    @factory.post_generation
    def categories(obj, create, extracted, **kwargs):  # noqa: N805
        """With ``categories=[...]``, the product's category_product rows."""
        for position, category in enumerate((extracted or ()) if create else ()):
            db.session.add(
                CategoryProduct(id_category=category.id, id_product=obj.id, position=position)
            )


def _product_id(o) -> int:
    # A lazy default: passing id_product= or product= creates no extra product.
    return (o.product or ProductFactory()).id


class CombinationFactory(OrmFactory, fields.CombinationFields):
    """A combination of ``product=`` (a new product if omitted); ``attributes=`` links values."""

    class Meta:
        model = Combination

    class Params:
        product = None

    id_product = factory.LazyAttribute(_product_id)

    @factory.post_generation
    def attributes(obj, create, extracted, **kwargs):  # noqa: N805
        """With ``attributes=[...]``, the combination's attribute links."""
        for attribute in (extracted or ()) if create else ():
            db.session.add(
                CombinationAttribute(id_attribute=attribute.id, id_product_attribute=obj.id)
            )


class StockAvailableFactory(OrmFactory, fields.StockFields):
    """Stock of ``product=``, or of ``combination=`` (then its product is implied)."""

    class Meta:
        model = StockAvailable

    class Params:
        product = None
        combination = None

    id_product = factory.LazyAttribute(
        lambda o: o.combination.id_product if o.combination else _product_id(o)
    )
    id_product_attribute = factory.LazyAttribute(lambda o: o.combination.id if o.combination else 0)


class SpecificPriceFactory(OrmFactory, fields.SpecificPriceFields):
    """A discount on ``product=`` (a new product if omitted)."""

    class Meta:
        model = SpecificPrice

    class Params:
        product = None
        base_price = factory.LazyAttribute(lambda o: o.product.price if o.product else 50)

    id_product = factory.LazyAttribute(_product_id)


class CustomerFactory(OrmFactory, fields.CustomerFields):
    class Meta:
        model = Customer

    id_lang = factory.LazyFunction(lambda: _lang_ids()["en"])


class AddressFactory(OrmFactory, fields.AddressFields):
    """An address of ``customer=`` (a new customer if omitted)."""

    class Meta:
        model = Address

    class Params:
        customer = factory.SubFactory(CustomerFactory)

    id_customer = factory.SelfAttribute("customer.id")
    firstname = factory.SelfAttribute("customer.firstname")
    lastname = factory.SelfAttribute("customer.lastname")


class OrderDetailFactory(OrmFactory, fields.OrderDetailFields):
    class Meta:
        model = OrderDetail


class OrderHistoryFactory(OrmFactory, fields.OrderHistoryFields):
    class Meta:
        model = OrderHistory


class OrderFactory(OrmFactory, fields.OrderFields):
    """An order in ``state=`` of ``products=`` (products or combinations; one new product if
    omitted), with its lines, totals and one history row."""

    class Meta:
        model = Order

    class Params:
        customer = factory.SubFactory(CustomerFactory)
        address = factory.SubFactory(AddressFactory, customer=factory.SelfAttribute("..customer"))
        state = "Awaiting payment"

    id_customer = factory.SelfAttribute("customer.id")
    id_address_delivery = factory.SelfAttribute("address.id")
    id_address_invoice = factory.SelfAttribute("address.id")
    current_state = factory.LazyAttribute(lambda o: ensure_order_states(db.session)[o.state].id)

    @factory.post_generation
    def products(obj, create, extracted, **kwargs):  # noqa: N805
        """Order lines for ``products=`` (products or combinations), totals and history."""
        if not create:
            return
        total = ZERO
        for item in extracted if extracted is not None else [ProductFactory()]:
            combination = item if isinstance(item, Combination) else None
            product = db.session.get(Product, item.id_product) if combination else item
            price = Decimal(product.price) + (Decimal(combination.price) if combination else ZERO)
            name = db.session.scalar(
                select(ProductLang.name).where(
                    ProductLang.id_product == product.id, ProductLang.id_lang == _lang_ids()["en"]
                )
            )
            line = OrderDetailFactory(
                id_order=obj.id,
                product_id=product.id,
                product_attribute_id=combination.id if combination else 0,
                product_name=name or product.reference or f"Product {product.id}",
                product_reference=(combination or product).reference,
                unit_price_tax_excl=price,
            )
            total += price * line.product_quantity
        obj.total_products = total
        obj.total_paid_tax_excl = total + obj.total_shipping
        obj.total_paid_tax_incl = with_tax(obj.total_paid_tax_excl)
        OrderHistoryFactory(
            id_order=obj.id, id_order_state=obj.current_state, date_add=obj.date_add
        )
