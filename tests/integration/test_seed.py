"""The demo seed (`impexmod seed`) and the factories tests and seed share."""

from __future__ import annotations

from collections import Counter

import pytest
from factory.random import reseed_random
from sqlalchemy import Integer, delete, func, select

from impexmod.catalog import identity
from impexmod.extensions import db
from impexmod.factories import is_valid_ean13, rows
from impexmod.factories.maker import RowMaker
from impexmod.factories.orm import (
    CategoryFactory,
    CombinationFactory,
    CustomerFactory,
    OrderFactory,
    ProductFactory,
    SpecificPriceFactory,
    StockAvailableFactory,
    ensure_languages,
)
from impexmod.factories.seed import TABLES, seed_catalog
from impexmod.factories.values import ean13_check_digit
from impexmod.models import (
    Category,
    Combination,
    CombinationAttribute,
    EntityChange,
    Identity,
    Image,
    ImageLang,
    Language,
    Order,
    OrderDetail,
    OrderHistory,
    Product,
    ProductLang,
    ProductSupplier,
    SpecificPrice,
    StockAvailable,
    Supplier,
)


def count(model, *where) -> int:
    """Rows of ``model`` matching ``where``."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def dump() -> dict[str, list[tuple]]:
    """Every seeded table's rows, in primary-key order."""
    out = {}
    for name in TABLES:
        table = db.metadata.tables[name]
        query = table.select().order_by(*table.primary_key)
        out[name] = [tuple(r) for r in db.session.execute(query)]
    return out


def empty_catalog() -> None:
    """Delete every seeded row, children first: the database is as fresh as before the seed."""
    db.session.rollback()
    for name in reversed(TABLES):
        db.session.execute(delete(db.metadata.tables[name]))
    db.session.commit()


@pytest.fixture
def seeded(app):
    """A catalog of 300 products seeded in small batches (so batching is exercised)."""
    return seed_catalog(db.engine, 300, seed=11, batch_size=64)


def test_seeds_exactly_n_products_and_a_complete_catalog(seeded):
    assert count(Product) == 300 == seeded.counts["product"]
    assert count(ProductLang) == 600  # en and fr
    assert count(ProductLang, ProductLang.id_lang == 2, ProductLang.name != "") == 300
    root = db.session.scalars(select(Category).where(Category.is_root_category)).all()
    assert len(root) == 1 and root[0].id_parent is None
    assert count(Category) >= 24
    assert db.session.scalar(select(func.max(Category.level_depth))) >= 3
    # Stock for every product and every combination.
    assert count(StockAvailable, StockAvailable.id_product_attribute == 0) == 300
    assert count(StockAvailable, StockAvailable.id_product_attribute != 0) == count(Combination)
    # One cover per product, a legend per image and language.
    assert count(Image, Image.cover) == 300
    assert count(ImageLang) == 2 * count(Image)
    # Combinations: two attributes each (size and colour), one default per product.
    assert count(CombinationAttribute) == 2 * count(Combination)
    defaults = db.session.execute(
        select(Combination.id_product, func.sum(Combination.default_on.cast(Integer))).group_by(
            Combination.id_product
        )
    ).all()
    assert defaults and all(n == 1 for _, n in defaults)
    # Orders sell seeded products and end in the state their history ends in.
    assert count(Order) >= 20
    sold = set(db.session.scalars(select(OrderDetail.product_id)))
    assert sold <= set(db.session.scalars(select(Product.id)))
    for order in db.session.scalars(select(Order)):
        last = db.session.scalars(
            select(OrderHistory.id_order_state)
            .where(OrderHistory.id_order == order.id)
            .order_by(OrderHistory.date_add, OrderHistory.id)
        ).all()[-1]
        assert last == order.current_state
    # Bulk inserts bypass change tracking on purpose.
    assert count(EntityChange) == 0


def test_shares_roughly_hold(app):
    seed_catalog(db.engine, 1000, seed=5)
    with_combinations = db.session.execute(
        select(Combination.id_product, func.count()).group_by(Combination.id_product)
    ).all()
    assert 0.14 <= len(with_combinations) / 1000 <= 0.26
    assert all(2 <= n <= 6 for _, n in with_combinations)
    discounted = db.session.scalar(select(func.count(SpecificPrice.id_product.distinct())))
    assert 0.06 <= discounted / 1000 <= 0.14
    supplied = db.session.scalar(select(func.count(ProductSupplier.id_product.distinct())))
    assert 0.24 <= supplied / 1000 <= 0.36
    images = Counter(db.session.scalars(select(Image.id_product)))
    assert set(images.values()) <= {1, 2, 3}
    references = db.session.scalars(select(Product.reference)).all()
    assert len(set(references)) == 1000


def test_ean13_codes_are_valid(seeded):
    codes = db.session.scalars(select(Product.ean13)).all()
    present = [c for c in codes if c]
    assert len(present) >= 0.85 * len(codes)
    assert all(is_valid_ean13(c) for c in present)
    assert all(is_valid_ean13(c) for c in db.session.scalars(select(Combination.ean13)) if c)
    assert len(set(present)) == len(present)


def test_ean13_check_digit():
    assert ean13_check_digit("400638133393") == "1"
    assert ean13_check_digit("978030640615") == "7"
    assert is_valid_ean13("4006381333931")
    assert not is_valid_ean13("4006381333932")
    assert not is_valid_ean13("400638133393")


def test_supplier_references_are_registered_identities(seeded):
    suppliers = dict(db.session.execute(select(Supplier.id, Supplier.name)).all())
    links = db.session.scalars(select(ProductSupplier)).all()
    assert links and count(Identity) == len(links)
    kinds = set()
    conn = db.session.connection()
    for link in links:
        kind = "combination" if link.id_product_attribute else "product"
        local = link.id_product_attribute or link.id_product
        source = f"supplier:{suppliers[link.id_supplier]}"
        assert identity.resolve(conn, source, kind, link.product_supplier_reference) == local
        kinds.add(kind)
    assert kinds == {"product", "combination"}


def test_same_seed_same_rows_other_seed_other_rows(app):
    seed_catalog(db.engine, 120, seed=7, batch_size=50)
    first = dump()
    empty_catalog()
    seed_catalog(db.engine, 120, seed=7, batch_size=50)
    assert dump() == first
    empty_catalog()
    seed_catalog(db.engine, 120, seed=8, batch_size=50)
    other = dump()
    assert other["product"] != first["product"]
    assert len(other["product"]) == 120


def test_refuses_a_catalog_with_products(app, runner):
    ProductFactory(reference="MINE")
    db.session.commit()
    result = runner.invoke(args=["seed", "--products", "10"])
    assert result.exit_code != 0
    assert "already has products" in result.output
    assert count(Product) == 1 and count(Category) == 0  # nothing written


def test_append_adds_products_to_the_same_catalog(app, runner):
    seed_catalog(db.engine, 30, seed=1)
    categories = count(Category)
    result = runner.invoke(args=["seed", "--products", "20", "--append", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert count(Product) == 50
    assert count(Category) == categories  # reference data is reused, not duplicated
    assert len(set(db.session.scalars(select(Product.reference)))) == 50
    assert count(StockAvailable, StockAvailable.id_product_attribute == 0) == 50


def test_cli_seeds_and_prints_a_summary(runner):
    result = runner.invoke(args=["seed", "--products", "50"])
    assert result.exit_code == 0, result.output
    assert "Seeded 50 products (seed 0)" in result.output
    assert "product_lang" in result.output
    assert count(Product) == 50


def test_orm_inserts_after_a_seed_get_fresh_ids(app):
    # On PostgreSQL this needs the sequences moved past the seeded ids.
    seed_catalog(db.engine, 40, seed=3)
    product = ProductFactory(reference="AFTER")
    assert product.id == 41
    assert CustomerFactory().id > 10


def test_orm_factories_write_through_the_session(app):
    languages = ensure_languages(db.session)
    assert {iso: lang.id for iso, lang in languages.items()} == {"en": 1, "fr": 2}
    product = ProductFactory(reference="X", name="Widget", stock=5)
    names = db.session.scalars(select(ProductLang.name).where(ProductLang.id_product == product.id))
    assert sorted(names) == ["Widget", "Widget"]
    assert count(StockAvailable, StockAvailable.id_product == product.id) == 1
    combination = CombinationFactory(product=product)
    StockAvailableFactory(combination=combination, quantity=3)
    SpecificPriceFactory(product=product)
    category = CategoryFactory(name="Shoes", parent=CategoryFactory(name="Home"))
    assert category.level_depth == 1
    order = OrderFactory(products=[product, combination], state="Shipped")
    assert count(OrderDetail, OrderDetail.id_order == order.id) == 2
    assert order.total_paid_tax_incl > order.total_paid_tax_excl > 0
    db.session.commit()
    changed = set(db.session.execute(select(EntityChange.entity_type, EntityChange.entity_id)))
    expected = {("product", product.id), ("combination", combination.id), ("order", order.id)}
    assert expected <= changed
    assert count(Product) == 1  # no stray products behind the scenes
    german = Language(iso_code="de", name="Deutsch")  # must not reuse id 1 or 2
    db.session.add(german)
    db.session.flush()
    assert german.id == 3


@pytest.mark.parametrize(
    "factory_class, overrides",
    [
        (rows.ProductRow, {"id": 1, "reference": "R"}),
        (rows.CombinationRow, {"reference": "R"}),
        (rows.StockRow, {}),
        (rows.ImageRow, {"id": 3}),
        (rows.SpecificPriceRow, {"base_price": 20}),
        (rows.ProductSupplierRow, {"product_supplier_reference": "S"}),
        (rows.IdentityRow, {"source": "supplier:Acme", "reference": "A", "local_id": 1}),
        (rows.OrderRow, {}),
        (rows.OrderDetailRow, {"unit_price_tax_excl": 9}),
        (rows.OrderHistoryRow, {}),
    ],
)
def test_row_maker_builds_what_factory_boy_builds(factory_class, overrides):
    make = RowMaker(factory_class)
    for seed in range(20):
        reseed_random(seed)
        expected = factory_class.build(**overrides)
        reseed_random(seed)
        assert make(**overrides) == expected


def test_row_maker_refuses_what_it_cannot_evaluate():
    with pytest.raises(TypeError, match="Faker"):
        RowMaker(rows.CustomerRow)
