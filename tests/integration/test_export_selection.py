"""Selections on real exports: each kind of filter lists exactly the expected entities, for
every entity, in full and incremental runs (entities that leave the selection become
<delete>s), and the CLI stores filters or refuses a bad one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from sqlalchemy import select

from impexmod import entities
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import reader
from impexmod.export.selection import Selection, check, parse_filter
from impexmod.extensions import db
from impexmod.models import (
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    Customer,
    Identity,
    Language,
    Manufacturer,
    Order,
    OrderState,
    Product,
    ProductLang,
    ProductSupplier,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Supplier,
    Tag,
    Task,
)
from impexmod.runs.feedstore import get_store
from impexmod.schema import validate
from tests.support import parse_feed


def _category(names: tuple[str, str], parent: Category | None = None) -> Category:
    cat = Category(id_parent=parent.id if parent else None, is_root_category=parent is None)
    db.session.add(cat)
    db.session.flush()
    for id_lang, name in enumerate(names, 1):
        db.session.add(
            CategoryLang(id_category=cat.id, id_lang=id_lang, name=name, link_rewrite=name.lower())
        )
    return cat


def _product(ref, names, categories, *, brand=None, price=10, active=True, quantity=None, **kw):
    product = Product(
        reference=ref, price=price, active=active, id_manufacturer=brand.id if brand else None, **kw
    )
    db.session.add(product)
    db.session.flush()
    for id_lang, name in enumerate(names, 1):
        db.session.add(
            ProductLang(id_product=product.id, id_lang=id_lang, name=name, link_rewrite=ref.lower())
        )
    for cat in categories:
        db.session.add(CategoryProduct(id_category=cat.id, id_product=product.id))
    if quantity is not None:
        db.session.add(StockAvailable(id_product=product.id, quantity=quantity))
    return product


def _combination(product: Product, ref: str, quantity: int) -> Combination:
    combo = Combination(id_product=product.id, reference=ref)
    db.session.add(combo)
    db.session.flush()
    db.session.add(
        StockAvailable(id_product=product.id, id_product_attribute=combo.id, quantity=quantity)
    )
    return combo


@pytest.fixture
def shop(app):
    """A hand-made catalog whose every selection is known.

    Home > Clothing > Shoes > Sneakers, and Home > Bags. SNK-1 is only in Sneakers (a
    sub-category of Shoes), SNK-5 in Sneakers and Bags; BAG-3 has no brand, no supplier, no
    stock row; SHO-2 is inactive.
    """
    db.session.add_all(
        [
            Language(id=1, iso_code="en", name="English"),
            Language(id=2, iso_code="fr", name="Français"),
        ]
    )
    db.session.flush()
    home = _category(("Home", "Accueil"))
    clothing = _category(("Clothing", "Vêtements"), home)
    shoes = _category(("Shoes", "Chaussures"), clothing)
    sneakers = _category(("Sneakers", "Baskets"), shoes)
    bags = _category(("Bags", "Sacs"), home)
    db.session.add(
        Identity(
            source="supplier:Acme", entity_type="category", reference="CAT-BAGS", local_id=bags.id
        )
    )
    nike, puma = Manufacturer(name="Nike"), Manufacturer(name="Puma")
    acme, globex = Supplier(name="Acme"), Supplier(name="Globex")
    sale = Tag(id_lang=1, name="Sale")
    db.session.add_all([nike, puma, acme, globex, sale])
    db.session.flush()
    p = {
        "SNK-1": _product(
            "SNK-1",
            ("Red Runner", "Coureur rouge"),
            [sneakers],
            brand=nike,
            price=50,
            quantity=10,
            date_add=datetime(2026, 1, 10, 12, 0),
        ),
        "SHO-2": _product(
            "SHO-2",
            ("Blue Boot", "Botte bleue"),
            [shoes],
            brand=puma,
            price=20,
            active=False,
            quantity=0,
        ),
        "BAG-3": _product("BAG-3", ("Tote", "Cabas"), [bags], price="5.5"),
        "CLO-4": _product(
            "CLO-4",
            ("Rain Jacket", "Imper"),
            [clothing],
            brand=nike,
            price=100,
            quantity=3,
            ean13="1234567890128",
        ),
        "SNK-5": _product(
            "SNK-5", ("Trail Runner", "Coureur trail"), [sneakers, bags], brand=puma, quantity=7
        ),
    }
    for product in p.values():
        if product.reference != "SNK-1":
            product.date_add = datetime(2025, 12, 1, 9, 30)
    db.session.add_all(
        [
            ProductSupplier(
                id_product=p["SNK-1"].id, id_supplier=acme.id, product_supplier_reference="A-1"
            ),
            ProductSupplier(
                id_product=p["SHO-2"].id, id_supplier=globex.id, product_supplier_reference="G-2"
            ),
            ProductSupplier(
                id_product=p["CLO-4"].id, id_supplier=acme.id, product_supplier_reference="A-4"
            ),
            ProductSupplier(
                id_product=p["CLO-4"].id, id_supplier=globex.id, product_supplier_reference="G-4"
            ),
            ProductTag(id_product=p["SNK-5"].id, id_tag=sale.id),
        ]
    )
    combos = {
        "SNK-1-M": _combination(p["SNK-1"], "SNK-1-M", 5),
        "CLO-4-A": _combination(p["CLO-4"], "CLO-4-A", 1),
        "CLO-4-B": _combination(p["CLO-4"], "CLO-4-B", 2),
    }
    prices = {
        "SNK-1": SpecificPrice(id_product=p["SNK-1"].id, reduction="0.1"),
        "BAG-3": SpecificPrice(id_product=p["BAG-3"].id, reduction="0.2"),
    }
    db.session.add_all(prices.values())
    db.session.commit()
    cats = {"Home": home, "Clothing": clothing, "Shoes": shoes, "Sneakers": sneakers, "Bags": bags}
    return {"products": p, "combinations": combos, "prices": prices, "categories": cats}


def export(entity: str, filters=(), match="all", strategy="full", task: Task | None = None):
    """Run an exporter (made once, with these filters) and return its feed's root and run."""
    if task is None:
        task = exporters.create_exporter(
            "sel",
            entity,
            strategy=strategy,
            filters=[parse_filter(f) for f in filters],
            filter_match=match,
        )
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    data = store.path(task.id, store.current(task.id).name).read_bytes()
    validate(data)
    return parse_feed(data), run


def refs(root, tag: str) -> list[str]:
    return [e.findtext("reference") for e in root.findall(tag)]


def keys(root, tag: str) -> list[str]:
    """The keys of the entities listed (their local id, unless a supplier's reference)."""
    return [e.get("supplier-reference") for e in root.findall(tag)]


def ids(*local_ids: int) -> list[str]:
    return [str(i) for i in local_ids]


def deletes(root) -> list[tuple[str, str, str]]:
    return [
        (d.get("type"), d.get("supplier-reference"), d.get("source"))
        for d in root.findall("delete")
    ]


ALL = ["SNK-1", "SHO-2", "BAG-3", "CLO-4", "SNK-5"]


@pytest.mark.parametrize(
    ("filters", "match", "expected"),
    [
        ([], "all", ALL),
        # A category by name includes its sub-categories, in any language, by id or reference.
        (["category=Shoes"], "all", ["SNK-1", "SHO-2", "SNK-5"]),
        (["category=chaussures"], "all", ["SNK-1", "SHO-2", "SNK-5"]),
        (["category=Clothing"], "all", ["SNK-1", "SHO-2", "CLO-4", "SNK-5"]),
        (["category=CAT-BAGS"], "all", ["BAG-3", "SNK-5"]),
        (["category in Sneakers, Bags"], "all", ["SNK-1", "BAG-3", "SNK-5"]),
        (["category!=Shoes"], "all", ["BAG-3", "CLO-4"]),
        (["category=Nowhere"], "all", []),
        (["supplier=Acme"], "all", ["SNK-1", "CLO-4"]),
        (["supplier=globex"], "all", ["SHO-2", "CLO-4"]),
        (["supplier not in Acme,Globex"], "all", ["BAG-3", "SNK-5"]),
        (["manufacturer=Nike"], "all", ["SNK-1", "CLO-4"]),
        (["manufacturer!=Nike"], "all", ["SHO-2", "BAG-3", "SNK-5"]),
        (["tag=sale"], "all", ["SNK-5"]),
        (["active=1"], "all", ["SNK-1", "BAG-3", "CLO-4", "SNK-5"]),
        (["active=0"], "all", ["SHO-2"]),
        (["status=inactive"], "all", ["SHO-2"]),
        (["status=active"], "all", ["SNK-1", "BAG-3", "CLO-4", "SNK-5"]),
        (["status=all"], "all", ALL),
        (["reference in SNK-1,BAG-3"], "all", ["SNK-1", "BAG-3"]),
        (["reference not in SNK-1,BAG-3"], "all", ["SHO-2", "CLO-4", "SNK-5"]),
        (["reference~snk"], "all", ["SNK-1", "SNK-5"]),
        (["price>=20"], "all", ["SNK-1", "SHO-2", "CLO-4"]),
        (["price<10"], "all", ["BAG-3"]),
        (["price=5,5"], "all", ["BAG-3"]),
        (["price in 10, 100"], "all", ["CLO-4", "SNK-5"]),
        (["quantity>=3"], "all", ["SNK-1", "CLO-4", "SNK-5"]),
        (["quantity=0"], "all", ["SHO-2", "BAG-3"]),  # no stock row counts as 0
        (["name~runner"], "all", ["SNK-1", "SNK-5"]),
        (["name~ROUGE"], "all", ["SNK-1"]),  # any language, case-insensitive
        (["name='Blue Boot'"], "all", ["SHO-2"]),
        (["name!=Tote"], "all", ["SNK-1", "SHO-2", "CLO-4", "SNK-5"]),
        (["ean13=''"], "all", ["SNK-1", "SHO-2", "BAG-3", "SNK-5"]),
        (["ean13!=''"], "all", ["CLO-4"]),
        (["ean13!=1234567890128"], "all", ["SNK-1", "SHO-2", "BAG-3", "SNK-5"]),
        (["date_add>=2026-01-01"], "all", ["SNK-1"]),
        (["date_add=2026-01-10"], "all", ["SNK-1"]),  # a date alone is the whole day
        (["date_add<=2025-12-01"], "all", ["SHO-2", "BAG-3", "CLO-4", "SNK-5"]),
        (["date_add>2026-01-10 12:00"], "all", []),
        # Several filters: all of them, or any.
        (["category=Shoes", "price>=20"], "all", ["SNK-1", "SHO-2"]),
        (["category=Shoes", "price>=20"], "any", ["SNK-1", "SHO-2", "CLO-4", "SNK-5"]),
        (["supplier=Acme", "active=1", "quantity>5"], "all", ["SNK-1"]),
        (["manufacturer=Puma", "tag=Sale"], "any", ["SHO-2", "SNK-5"]),
    ],
)
def test_full_product_export_lists_exactly_the_selection(shop, filters, match, expected):
    root, run = export("products", filters, match)
    assert refs(root, "product") == expected
    assert run.total == run.entity_count == len(expected)
    if filters:
        assert "Selection: " in run.log


def test_combinations_are_selected_through_their_product(shop):
    assert refs(export("combinations", ["category=Shoes"])[0], "combination") == ["SNK-1-M"]
    assert refs(export("combinations", ["supplier=Acme", "active=1"])[0], "combination") == [
        "SNK-1-M",
        "CLO-4-A",
        "CLO-4-B",
    ]
    assert refs(export("combinations", ["product.reference=CLO-4"])[0], "combination") == [
        "CLO-4-A",
        "CLO-4-B",
    ]
    # Their own columns and their own stock.
    assert refs(export("combinations", ["reference~-b"])[0], "combination") == ["CLO-4-B"]
    assert refs(export("combinations", ["quantity>=2"])[0], "combination") == [
        "SNK-1-M",
        "CLO-4-B",
    ]
    assert refs(export("combinations", ["product.quantity>5"])[0], "combination") == ["SNK-1-M"]


def test_stock_and_specific_prices_are_selected_through_their_product(shop):
    p, combos = shop["products"], shop["combinations"]

    def stock_ids(product: str, combo: str | None = None) -> int:
        return db.session.execute(
            select(StockAvailable.id).where(
                StockAvailable.id_product == p[product].id,
                StockAvailable.id_product_attribute == (combos[combo].id if combo else 0),
            )
        ).scalar_one()

    root, run = export("stock", ["category=Shoes"])
    assert keys(root, "stock") == ids(
        *sorted(
            [
                stock_ids("SNK-1"),
                stock_ids("SNK-1", "SNK-1-M"),
                stock_ids("SHO-2"),
                stock_ids("SNK-5"),
            ]
        )
    )
    assert run.total == 4
    # Stock rows have no reference: theirs is the product's.
    root, _ = export("stock", ["reference=CLO-4"])
    assert keys(root, "stock") == ids(
        *sorted([stock_ids("CLO-4"), stock_ids("CLO-4", "CLO-4-A"), stock_ids("CLO-4", "CLO-4-B")])
    )
    root, _ = export("stock", ["quantity>5", "active=1"])
    assert keys(root, "stock") == ids(stock_ids("SNK-1"), stock_ids("SNK-5"))
    prices = shop["prices"]
    root, _ = export("specific_prices", ["category=Bags"])
    assert keys(root, "specificPrice") == ids(prices["BAG-3"].id)
    root, _ = export("specific_prices", ["manufacturer=Nike"])
    assert keys(root, "specificPrice") == ids(prices["SNK-1"].id)


def test_categories_tags_and_customers_filter_on_their_own_fields(shop):
    cats = shop["categories"]
    root, _ = export("categories", ["category=Clothing"])
    assert keys(root, "category") == ids(*(cats[n].id for n in ("Clothing", "Shoes", "Sneakers")))
    root, _ = export("categories", ["name~sac", "is_root_category=1"], match="any")
    assert keys(root, "category") == [str(cats["Home"].id), "CAT-BAGS"]
    db.session.add_all(
        [
            Customer(email="a@shop.test", firstname="A", lastname="A", newsletter=True),
            Customer(email="b@shop.test", firstname="B", lastname="B", active=False),
        ]
    )
    db.session.commit()
    root, _ = export("customers", ["newsletter=1"])
    assert [e.findtext("email") for e in root.findall("customer")] == ["a@shop.test"]
    root, _ = export("customers", ["status=inactive"])
    assert [e.findtext("email") for e in root.findall("customer")] == ["b@shop.test"]
    root, _ = export("tags", ["name=Sale"])
    assert len(root.findall("tag")) == 1


def test_orders_filter_on_state_dates_and_totals(shop):
    shipped, cancelled = OrderState(name="Shipped"), OrderState(name="Cancelled")
    customer = Customer(email="c@shop.test", firstname="C", lastname="C")
    db.session.add_all([shipped, cancelled, customer])
    db.session.flush()

    def order(ref, state, total, when):
        return Order(
            reference=ref,
            id_customer=customer.id,
            current_state=state.id,
            total_paid_tax_incl=total,
            date_add=when,
        )

    db.session.add_all(
        [
            order("O1", shipped, 150, datetime(2026, 2, 1)),
            order("O2", cancelled, 50, datetime(2025, 11, 1)),
            order("O3", shipped, 80, datetime(2026, 1, 15)),
        ]
    )
    db.session.commit()
    assert refs(export("orders", ["state=shipped"])[0], "order") == ["O1", "O3"]
    assert refs(export("orders", [f"current_state={cancelled.id}"])[0], "order") == ["O2"]
    root, _ = export("orders", ["date_add>=2026-01-01", "total_paid>100"])
    assert refs(root, "order") == ["O1"]
    root, _ = export("orders", ["date_add>=2026-01-01", "total_paid>100"], match="any")
    assert refs(root, "order") == ["O1", "O3"]
    assert refs(export("orders", ["total_paid_tax_incl<=80"])[0], "order") == ["O2", "O3"]


# ------------------------------------------------------------------------- seeded catalogue


def test_seeded_catalog_selection_matches_an_independent_walk(app):
    from impexmod.factories.seed import seed_catalog

    seed_catalog(db.engine, 150, seed=3)
    app.config["CHUNK_SIZE"] = 7  # several key-range pages, each filtered in SQL
    with db.engine.connect() as conn:
        parents = dict(conn.execute(select(Category.id, Category.id_parent)).all())
        department = next(c for c, up in parents.items() if up and parents.get(up) is None)
        name = conn.execute(
            select(CategoryLang.name).where(
                CategoryLang.id_category == department, CategoryLang.id_lang == 1
            )
        ).scalar_one()
        subtree, grew = {department}, True
        while grew:
            more = {c for c, up in parents.items() if up in subtree} - subtree
            grew, subtree = bool(more), subtree | more
        in_tree = set(
            conn.execute(
                select(CategoryProduct.id_product).where(CategoryProduct.id_category.in_(subtree))
            ).scalars()
        )
        supplier_id, supplier = conn.execute(select(Supplier.id, Supplier.name)).first()
        supplied = set(
            conn.execute(
                select(ProductSupplier.id_product).where(ProductSupplier.id_supplier == supplier_id)
            ).scalars()
        )
        active = set(conn.execute(select(Product.id).where(Product.active.is_(True))).scalars())
        product_ids = dict(conn.execute(select(Product.reference, Product.id)).all())
    expected = sorted(in_tree & active)
    assert 0 < len(expected) < 150 and supplied

    root, run = export("products", [f"category={name}", "active=1"])
    assert [product_ids[r] for r in refs(root, "product")] == expected
    assert run.total == len(expected)

    root, run = export("products", [f"category={name}", f"supplier={supplier}"], match="any")
    assert [product_ids[r] for r in refs(root, "product")] == sorted(in_tree | supplied)

    descriptor = entities.resolve("products")
    chosen = check("products", [parse_filter(f"supplier={supplier}")])
    with db.engine.connect() as conn:
        assert reader.count_all(conn, descriptor, chosen) == len(supplied)
        pages = list(reader.all_batches(conn, descriptor, 7, chosen))
    assert [i for batch in pages for i in batch.ids] == sorted(supplied)
    assert max(len(batch.ids) for batch in pages) <= 7


# ------------------------------------------------------------------------------ incremental


def test_incremental_run_deletes_what_left_the_selection(shop):
    p = shop["products"]
    db.session.add(
        Identity(
            source="supplier:Acme",
            entity_type="product",
            reference="ACME-1",
            local_id=p["SNK-1"].id,
        )
    )
    db.session.commit()
    task = exporters.create_exporter(
        "shoes",
        "products",
        strategy="incremental",
        filters=[parse_filter("category=Shoes"), parse_filter("active=1")],
    )
    first, _ = export("products", task=task)
    assert refs(first, "product") == ["SNK-1", "SNK-5"]
    assert deletes(first) == []

    p["SNK-1"].active = False  # leaves the selection
    p["SNK-5"].price = 11  # changes and still matches
    p["SHO-2"].active = True  # enters it
    p["CLO-4"].price = 101  # changes, and never was in it
    db.session.delete(p["BAG-3"])  # deleted: stays a deletion
    db.session.commit()
    root, run = export("products", task=task)
    assert refs(root, "product") == ["SHO-2", "SNK-5"]
    assert root.find("product/price") is not None
    assert sorted(deletes(root)) == sorted(
        [
            ("product", "ACME-1", "supplier:Acme"),  # under the key its feeds used
            ("product", str(p["BAG-3"].id), "shop:testshop"),
            ("product", str(p["CLO-4"].id), "shop:testshop"),
        ]
    )
    assert run.deleted_count == 3
    assert run.total == run.done == 5

    # Moving out of the category tree is leaving too; moving back is entering.
    db.session.query(CategoryProduct).filter_by(id_product=p["SNK-5"].id).delete()
    bags, sneakers = shop["categories"]["Bags"], shop["categories"]["Sneakers"]
    db.session.add(CategoryProduct(id_category=bags.id, id_product=p["SNK-5"].id))
    db.session.commit()
    root, _ = export("products", task=task)
    assert refs(root, "product") == []
    assert deletes(root) == [("product", str(p["SNK-5"].id), "shop:testshop")]
    db.session.add(CategoryProduct(id_category=sneakers.id, id_product=p["SNK-5"].id))
    db.session.commit()
    root, _ = export("products", task=task)
    assert refs(root, "product") == ["SNK-5"]
    assert deletes(root) == []


def test_combinations_follow_their_product_in_and_out_of_the_selection(shop):
    p, combos = shop["products"], shop["combinations"]
    task = exporters.create_exporter(
        "active combos", "combinations", strategy="incremental", filters=[parse_filter("active=1")]
    )
    first, _ = export("combinations", task=task)
    assert refs(first, "combination") == ["SNK-1-M", "CLO-4-A", "CLO-4-B"]
    p["CLO-4"].active = False  # only the product changes: its combinations leave with it
    db.session.commit()
    root, run = export("combinations", task=task)
    assert refs(root, "combination") == []
    assert deletes(root) == [
        ("combination", str(combos["CLO-4-A"].id), "shop:testshop"),
        ("combination", str(combos["CLO-4-B"].id), "shop:testshop"),
    ]
    assert run.total == run.done == 2
    p["CLO-4"].active = True
    db.session.commit()
    root, _ = export("combinations", task=task)
    assert refs(root, "combination") == ["CLO-4-A", "CLO-4-B"]
    # Without a product filter, a product change alone lists no combination.
    own = exporters.create_exporter(
        "own", "combinations", strategy="incremental", filters=[parse_filter("reference~CLO")]
    )
    export("combinations", task=own)
    p["CLO-4"].price = 1
    db.session.commit()
    root, run = export("combinations", task=own)
    assert len(root) == 0 and run.total == 0


def test_a_stored_filter_that_no_longer_applies_fails_the_run_clearly(shop):
    task = exporters.create_exporter("sel", "products")
    task.filters = [{"field": "colour", "op": "=", "value": "red"}]
    db.session.commit()
    run = jobs.start_run(task, inline=True)
    assert run.status == "failed"
    assert "InvalidFilter: filter 'colour = red': products have no field 'colour'" in run.error


def test_selection_where_is_none_without_filters_and_counts_match(shop):
    descriptor = entities.resolve("products")
    assert Selection().where("products") is None
    with db.engine.connect() as conn:
        assert reader.count_all(conn, descriptor, Selection()) == 5
        assert reader.count_all(conn, descriptor, check("products", ["category=Shoes"])) == 3


# ------------------------------------------------------------------------------------- CLI


def _cli(app, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("IMPEXMOD_REDIS_URL", None)
    env.update(
        IMPEXMOD_DATABASE_URL=db.engine.url.render_as_string(hide_password=False),
        IMPEXMOD_INSTANCE_PATH=app.instance_path,
        IMPEXMOD_SHOP_ID="testshop",
    )
    return subprocess.run(
        [sys.executable, "-m", "impexmod.cli", "exporter", "add", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_stores_filters_and_refuses_a_bad_one(app):
    db.session.commit()
    done = _cli(
        app,
        "--name", "shoes or cheap",
        "--entity", "products",
        "--filter", "category = Shoes",
        "--filter", "price<10",
        "--filter", "reference in 'A,1', A2",
        "--match", "any",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["filter_match"] == "any"
    assert described["filters"] == [
        {"field": "category", "op": "=", "value": "Shoes"},
        {"field": "price", "op": "<", "value": "10"},
        {"field": "reference", "op": "in", "value": ["A,1", "A2"]},
    ]
    db.session.expire_all()
    task = db.session.get(Task, described["id"])
    assert task.filters == described["filters"] and task.filter_match == "any"

    bad_syntax = _cli(app, "--name", "x", "--entity", "products", "--filter", "price >> 10")
    assert bad_syntax.returncode == 2
    assert "--filter" in bad_syntax.stderr and "'price >> 10'" in bad_syntax.stderr
    assert "unknown operator '>>'" in bad_syntax.stderr
    assert "Traceback" not in bad_syntax.stderr
    bad_field = _cli(app, "--name", "x", "--entity", "orders", "--filter", "colour=red")
    assert bad_field.returncode == 2
    assert "filter 'colour = red': orders have no field 'colour'" in bad_field.stderr
    bad_value = _cli(app, "--name", "x", "--entity", "products", "--filter", "price>=ten")
    assert bad_value.returncode == 2
    assert "'ten' is not a number" in bad_value.stderr
    assert db.session.query(Task).count() == 1
