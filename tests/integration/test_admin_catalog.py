"""Admin panel: catalog pages, and edits that reach the next incremental feed."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import (
    Category,
    CategoryLang,
    Combination,
    Order,
    Product,
    ProductLang,
    StockAvailable,
    Supplier,
)
from impexmod.runs.feedstore import get_store
from tests.integration.test_admin_auth import signed_in
from tests.support import parse_feed


@pytest.fixture
def panel(app):
    """A client signed in as a merchant, over a seeded demo catalog."""
    seed_catalog(db.engine, 40, seed=3)
    return signed_in(app)


def _lone_product() -> Product:
    """A product without combinations."""
    with_combinations = select(Combination.id_product)
    return db.session.scalars(
        select(Product).where(Product.id.not_in(with_combinations)).order_by(Product.id)
    ).first()


def _product_with_combinations() -> Product:
    return db.session.get(Product, db.session.scalar(select(func.min(Combination.id_product))))


def _name(product_id: int) -> str:
    return db.session.scalar(
        select(ProductLang.name).where(
            ProductLang.id_product == product_id, ProductLang.id_lang == 1
        )
    )


def _feed(task) -> object:
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    return parse_feed(store.path(task.id, store.current(task.id).name).read_bytes())


def _edit_form(product: Product, **fields) -> dict:
    data = {
        "reference": product.reference or "",
        "ean13": product.ean13 or "",
        "price": str(product.price),
        "wholesale_price": str(product.wholesale_price),
        "active": "y",
    }
    data.update(fields)
    return data


def test_product_list_shows_names_stock_and_combinations(panel):
    page = panel.text("/admin/products/")
    lone = _lone_product()
    assert _name(lone.id) in page
    for label in ("Name", "Price (tax excl.)", "Quantity", "Combinations", "Active", "Stock"):
        assert label in page
    assert "Traceback" not in page


def test_products_are_searchable_by_name_and_reference_and_filterable(panel):
    lone = _lone_product()
    word = _name(lone.id).split()[-1]
    assert _name(lone.id) in panel.text(f"/admin/products/?search={word}")
    assert _name(lone.id) in panel.text(f"/admin/products/?search={lone.reference}")
    nothing = panel.text("/admin/products/?search=zzz-no-such-thing")
    assert "There are no items in the table." in nothing
    # A LIKE wildcard in the search box is a character, not a wildcard.
    assert "There are no items" in panel.text("/admin/products/?search=%25%25")
    out = panel.text("/admin/products/?flt0_0=out")
    assert "Traceback" not in out
    active = panel.get("/admin/products/?flt0_active_equals=1")
    assert active.status_code == 200


def test_price_and_stock_edits_reach_the_next_incremental_feeds(panel):
    products = exporters.create_exporter("Changed products", "products", "xml", "incremental")
    stock = exporters.create_exporter("Changed stock", "stock", "xml", "incremental")
    assert len(_feed(products).findall("product")) == 40  # a first run is complete
    _feed(stock)
    lone = _lone_product()
    lone_id = lone.id
    form = panel.get(f"/admin/products/edit/?id={lone_id}").get_data(as_text=True)
    assert 'name="quantity"' in form
    response = panel.post(
        f"/admin/products/edit/?id={lone_id}", data=_edit_form(lone, price="123.45", quantity="77")
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Product, lone_id).price == Decimal("123.45")

    changed = _feed(products).findall("product")
    assert [p.get("supplier-reference") for p in changed] == [str(lone_id)]
    assert Decimal(changed[0].findtext("price")) == Decimal("123.45")
    rows = _feed(stock).findall("stock")
    pairs = [(r.find("product").text, r.findtext("quantity")) for r in rows]
    assert pairs == [(str(lone_id), "77")]
    # Nothing changed since: the next incremental feeds are empty.
    assert _feed(products).findall("product") == []


def test_combination_stock_is_edited_on_the_product_page_and_sums_up(panel):
    stock = exporters.create_exporter("Changed stock", "stock", "xml", "incremental")
    _feed(stock)
    product = _product_with_combinations()
    product_id = product.id
    edit = panel.get(f"/admin/products/edit/?id={product_id}").get_data(as_text=True)
    assert 'name="quantity"' not in edit  # its stock is its combinations'
    details = panel.text(f"/admin/products/details/?id={product_id}")
    assert 'id="combinations"' in details and _name(product_id) in details
    combos = db.session.scalars(
        select(Combination.id).where(Combination.id_product == product_id).order_by(Combination.id)
    ).all()
    response = panel.post(
        f"/admin/products/combination/{combos[0]}/?product={product_id}",
        data={"price_impact": "2.5", "quantity": "500"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    quantities = dict(
        db.session.execute(
            select(StockAvailable.id_product_attribute, StockAvailable.quantity).where(
                StockAvailable.id_product == product_id
            )
        ).all()
    )
    assert quantities[combos[0]] == 500
    assert quantities[0] == sum(q for c, q in quantities.items() if c)
    assert db.session.get(Combination, combos[0]).price == Decimal("2.5")
    rows = _feed(stock).findall("stock")
    linked = {(r.find("combination") is not None, r.findtext("quantity")) for r in rows}
    assert (True, "500") in linked and (False, str(quantities[0])) in linked

    bad = panel.post(
        f"/admin/products/combination/{combos[0]}/?product={product_id}",
        data={"price_impact": "abc", "quantity": "1"},
        follow_redirects=True,
    )
    assert "Enter a number for the price impact" in bad.get_data(as_text=True)


def test_a_product_with_combinations_refuses_a_product_quantity(panel):
    from impexmod.catalog import edits as catalog_edits

    with pytest.raises(catalog_edits.InvalidEdit):
        catalog_edits.set_product_quantity(_product_with_combinations().id, 3)


def test_invalid_price_is_shown_and_not_saved(panel):
    lone = _lone_product()
    lone_id, before = lone.id, lone.price
    response = panel.post(f"/admin/products/edit/?id={lone_id}", data=_edit_form(lone, price="-4"))
    assert response.status_code == 200
    assert "Number must be at least 0" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Product, lone_id).price == before


def test_categories_suppliers_and_orders(panel):
    category = db.session.scalars(select(Category).where(Category.level_depth == 2)).first()
    name = db.session.scalar(
        select(CategoryLang.name).where(
            CategoryLang.id_category == category.id, CategoryLang.id_lang == 1
        )
    )
    page = panel.text(f"/admin/categories/?search={name}")
    assert name in page
    supplier = db.session.scalars(select(Supplier)).first()
    page = panel.text(f"/admin/suppliers/?search={supplier.name}")
    assert supplier.name in page
    order = db.session.scalars(select(Order).order_by(Order.id)).first()
    listing = panel.text("/admin/orders/")
    assert order.reference in listing and "badge" in listing
    found = panel.get(f"/admin/orders/?search={order.reference}").get_data(as_text=True)
    assert order.reference in found
    details = panel.text(f"/admin/orders/details/?id={order.id}")
    assert 'id="order-lines"' in details and re.search(r"<td>[^<]+</td>", details)
    assert order.reference in panel.text(f"/admin/orders/?flt0_0={order.current_state}")
    # Orders are read-only from the panel.
    assert panel.get(f"/admin/orders/edit/?id={order.id}").status_code in (302, 403, 404)
