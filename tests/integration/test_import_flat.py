# ruff: noqa: E501  (fixtures are files, written out as a merchant would)
"""CSV and XLSX files, mappings, ZIP data groups, and the CLI on a CSV of stock changes."""

from __future__ import annotations

import json
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing import Options, import_file
from impexmod.importing.columns import headers
from impexmod.models import (
    Category,
    CategoryLang,
    Combination,
    ImportMapping,
    Language,
    Product,
    ProductLang,
    StockAvailable,
)
from impexmod.runs.feedstore import get_store
from tests.support import parse_feed


@pytest.fixture
def shop(app):
    """English and French, three products (one with two combinations), all with stock."""
    db.session.add_all(
        [
            Language(id=1, iso_code="en", name="English"),
            Language(id=2, iso_code="fr", name="Français"),
        ]
    )
    for ref in ("A-1", "A-2", "A-3"):
        product = Product(reference=ref, ean13=f"376000000{ref[-1]}000", price=5)
        db.session.add(product)
        db.session.flush()
        db.session.add(ProductLang(id_product=product.id, id_lang=1, name=ref, link_rewrite=ref))
        db.session.add(StockAvailable(id_product=product.id, quantity=1))
        if ref == "A-3":
            for size in ("S", "M"):
                combo = Combination(id_product=product.id, reference=f"A-3-{size}")
                db.session.add(combo)
                db.session.flush()
                db.session.add(
                    StockAvailable(id_product=product.id, id_product_attribute=combo.id, quantity=1)
                )
    db.session.commit()
    return app


def stock_of(reference: str) -> int:
    combo = db.session.execute(select(Combination).filter_by(reference=reference)).scalar()
    if combo is not None:
        where = {"id_product_attribute": combo.id}
    else:
        product = db.session.execute(select(Product).filter_by(reference=reference)).scalar_one()
        where = {"id_product": product.id, "id_product_attribute": 0}
    return db.session.execute(select(StockAvailable.quantity).filter_by(**where)).scalar_one()


def test_stock_csv_then_incremental_export_lists_exactly_those_products(shop, runner, tmp_path):
    task = exporters.create_exporter("stock changes", "stock", strategy="incremental")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    path = tmp_path / "stock.csv"
    path.write_bytes("\ufeffreference;quantity\nA-1;7\nA-3-M;9\nA-2;1\n".encode())
    result = runner.invoke(args=["import", str(path), "--entity", "stock", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["updated"], data["unchanged"], data["errors"]) == (2, 1, 0)
    db.session.expire_all()
    assert stock_of("A-1") == 7 and stock_of("A-3-M") == 9
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded" and run.strategy == "incremental"
    store = get_store()
    root = parse_feed(store.path(task.id, store.current(task.id).name).read_bytes())
    linked = sorted(el.find("product") is not None and "product" or "combination" for el in root)
    assert len(root) == 2 and linked == ["combination", "product"]
    quantities = sorted(int(el.findtext("quantity")) for el in root)
    assert quantities == [7, 9]


@pytest.mark.parametrize(
    "content, encoding",
    [
        ('ean13,quantity\n"3760000001000","4"\n', "utf-8"),
        ("ean13\tquantity\n3760000001000\t4\n", "utf-8"),
        ("ean13;quantity;note\n3760000001000;4;déjà vu\n", "latin-1"),
        ("ean13|quantity\n3760000001000|4\n", "utf-16"),
    ],
)
def test_delimiters_quotes_and_encodings(shop, tmp_path, content, encoding):
    path = tmp_path / "stock.csv"
    path.write_bytes(content.encode(encoding))
    report = import_file(path, Options(entity="stock"))
    assert report.error_count == 0, [str(e) for e in report.errors]
    assert stock_of("A-1") == 4


def test_utf16_without_bom_is_refused_clearly(shop, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_bytes("reference;quantity\nA-1;4\n".encode("utf-16-le"))
    report = import_file(path, Options(entity="stock"))
    assert report.refused and "UTF-16" in report.refused[0]
    assert stock_of("A-1") == 1


def test_a_products_csv_with_canonical_columns_imports_back_unchanged(shop, tmp_path):
    columns = headers("products", ["en", "fr"])
    assert columns[:4] == ["supplier_reference", "source", "reference", "ean13"]
    path = tmp_path / "products.csv"
    path.write_text(
        "supplier_reference;reference;name[en];name[fr];price;categorypath;tags;quantity;images\n"
        "N-1;NEW-1;New one;Nouveau;9,90;Women > Tops;summer|sale;12;https://x.example/1.jpg\n"
        "N-2;NEW-2;Second;;bad;;;;\n"
    )
    report = import_file(path)
    assert (
        report.error_count == 1 and report.errors[0].line == 3 and report.errors[0].field == "price"
    )
    product = db.session.execute(select(Product).filter_by(reference="NEW-1")).scalar_one()
    assert str(product.price) == "9.900000" and stock_of("NEW-1") == 12
    names = {
        r.id_lang: r.name for r in db.session.query(ProductLang).filter_by(id_product=product.id)
    }
    assert names == {1: "New one", 2: "Nouveau"}
    tops = db.session.execute(select(CategoryLang).filter_by(name="Tops")).scalars().first()
    assert db.session.get(Category, tops.id_category).id_parent is not None
    again = import_file(path)
    assert again.totals()["created"] == 0 and again.totals()["updated"] == 0


def test_xlsx_with_a_saved_mapping(shop, tmp_path):
    db.session.add(
        ImportMapping(
            name="supplier x",
            entity="products",
            columns={"Article": "reference", "Designation": "name", "PV": "price"},
        )
    )
    db.session.commit()
    book = Workbook()
    sheet = book.active
    sheet.append(["Article", "Designation", "PV", "Ignored"])
    sheet.append(["A-2", "Renamed", 12.5, "x"])
    sheet.append(["B-9", "Brand new", 3, "y"])
    path = tmp_path / "supplier.xlsx"
    book.save(path)
    report = import_file(path, Options(entity="products", mapping_name="supplier x"))
    assert report.error_count == 0 and report.warning_count == 1  # "Ignored"
    assert report.totals()["updated"] == 1 and report.totals()["created"] == 1
    a2 = db.session.execute(select(Product).filter_by(reference="A-2")).scalar_one()
    assert str(a2.price) == "12.500000"


def test_zip_data_group_in_dependency_order(shop, tmp_path):
    path = tmp_path / "group.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stock.csv", "supplier_reference;quantity\nG-1;6\nG-1-RED;2\n")
        archive.writestr(
            "combinations.csv",
            "supplier_reference;product;reference;attributes\nG-1-RED;G-1;G1R;Color:Red\n",
        )
        archive.writestr(
            "products.csv", "supplier_reference;reference;name;categories\nG-1;G1;Group one;cat-a\n"
        )
        archive.writestr("categories.csv", "supplier_reference;name\ncat-a;Alpha\n")
    report = import_file(path)
    assert report.ok, [str(e) for e in report.errors]
    assert report.files == [
        f"group.zip/{n}"
        for n in ("categories.csv", "products.csv", "combinations.csv", "stock.csv")
    ]
    per_file = {
        row["file"].split("/")[1]: row
        for row in report.per_entity()
        if row["created"] or row["updated"]
    }
    assert per_file["stock.csv"]["updated"] + per_file["stock.csv"]["created"] == 2
    assert stock_of("G1") == 6 and stock_of("G1R") == 2
