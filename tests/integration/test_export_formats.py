"""CSV, XLSX, JSON and JSONL feeds of a seeded catalog, read back by real readers (csv,
openpyxl, LibreOffice, json), imported back into an empty shop, and served at their URLs."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from impexmod.catalog import identity
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import flatten
from impexmod.export.formats.xlsx_writer import XlsxFeedWriter
from impexmod.extensions import db
from impexmod.importing import import_file
from impexmod.models import (
    Category,
    CategoryProduct,
    Combination,
    Customer,
    Language,
    Order,
    Product,
    ProductLang,
    ProductSupplier,
    SpecificPrice,
    StockAvailable,
    Tag,
)
from impexmod.runs.feedstore import get_store
from tests.e2e.test_stock_sync import _shop, sqlite_template  # noqa: F401 (a fixture)

TEST_DB = os.environ.get("IMPEXMOD_TEST_DATABASE_URL")
SHOP = "shop:testshop"
LANGS = ["en", "fr"]
BOM = "\ufeff".encode()
SOFFICE = Path("/usr/bin/soffice")
MODELS = {
    "products": Product,
    "combinations": Combination,
    "categories": Category,
    "tags": Tag,
    "specific_prices": SpecificPrice,
    "stock": StockAvailable,
    "orders": Order,
    "customers": Customer,
}
_names = itertools.count(1)


@pytest.fixture
def catalog(app):
    """A seeded catalog of 25 products (with combinations, suppliers, orders...)."""
    from impexmod.factories.seed import seed_catalog

    seed_catalog(db.engine, 25, seed=7)
    return app


def export(entity: str, fmt: str, strategy: str = "full", **options) -> bytes:
    """Define an exporter, run it, and return the feed it published."""
    task = exporters.create_exporter(f"t{next(_names)}", entity, fmt, strategy, options=options)
    return run_feed(task)


def run_feed(task) -> bytes:
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    return store.path(task.id, store.current(task.id).name).read_bytes()


def read_csv(data: bytes, separator: str = ";", bom: bool = True) -> list[list[str]]:
    assert data.startswith(BOM) is bom
    text = data.decode("utf-8-sig" if bom else "utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def read_xlsx(data: bytes) -> dict[str, list[tuple]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    finally:
        book.close()


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


# ---------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("separator, char", [(None, ";"), (";", ";"), (",", ","), ("tab", "\t")])
def test_csv_with_bom_and_each_separator(catalog, separator, char):
    options = {"separator": separator} if separator else {}
    rows = read_csv(export("products", "csv", **options), char)
    assert rows[0] == flatten.available_columns("products", LANGS)
    assert len(rows) == 1 + count(Product)
    first = dict(zip(rows[0], rows[1], strict=True))
    product = db.session.get(Product, 1)
    assert first["reference"] == product.reference
    assert first["price"] == format(flatten.plain_decimal(product.price), "f")
    names = dict(
        db.session.execute(
            select(ProductLang.id_lang, ProductLang.name).filter_by(id_product=1)
        ).all()
    )
    assert (first["name[en]"], first["name[fr]"]) == (names[1], names[2])


def test_csv_without_bom_rows_per_combination_and_chosen_fields(catalog):
    rows = read_csv(
        export("products", "csv", bom="false", rows="combinations", fields="reference,name,price"),
        bom=False,
    )
    assert rows[0] == ["reference", "name[en]", "name[fr]", "price"]
    with_combos = db.session.execute(select(func.count(func.distinct(Combination.id_product))))
    assert len(rows) - 1 == count(Combination) + count(Product) - with_combos.scalar_one()
    full = as_dicts(read_csv(export("products", "csv", rows="combinations")))
    combos = [r for r in full if r["combination_reference"]]
    assert len(combos) == count(Combination)
    combo = db.session.execute(
        select(Combination).where(Combination.reference == combos[0]["combination_reference"])
    ).scalar_one()
    final = db.session.get(Product, combo.id_product).price + combo.price
    assert combos[0]["combination_price"] == format(flatten.plain_decimal(final), "f")


def test_formula_cells_are_neutralised_and_negative_numbers_kept(catalog):
    db.session.execute(
        ProductLang.__table__.update()
        .where(ProductLang.id_product == 1, ProductLang.id_lang == 1)
        .values(name='=HYPERLINK("http://evil.test","x")')
    )
    db.session.get(Product, 1).reference = "@cmd"
    combo = db.session.execute(select(Combination).order_by(Combination.id)).scalars().first()
    combo.price = Decimal("-1.5")
    stock = db.session.execute(select(StockAvailable).order_by(StockAvailable.id)).scalars().first()
    stock.quantity = -3
    db.session.commit()
    first = as_dicts(read_csv(export("products", "csv")))[0]
    assert first["name[en]"] == '\'=HYPERLINK("http://evil.test","x")'
    assert first["reference"] == "'@cmd"
    combos = {r["reference"]: r for r in as_dicts(read_csv(export("combinations", "csv")))}
    assert combos[combo.reference]["price"] == "-1.50"
    stocks = as_dicts(read_csv(export("stock", "csv")))
    assert stocks[0]["quantity"] == "-3"
    # In a workbook, such text is a string cell, never a formula.
    book = load_workbook(io.BytesIO(export("products", "xlsx")))
    sheet = book["products"]
    name = sheet.cell(row=2, column=1 + sheet_header(sheet).index("name[en]"))
    assert name.data_type == "s" and name.value.startswith("=HYPERLINK")


def sheet_header(sheet) -> list[str]:
    return [c.value for c in sheet[1]]


# --------------------------------------------------------------------------------- XLSX


def test_xlsx_has_a_bold_frozen_header_numbers_and_text(catalog):
    data = export("products", "xlsx")
    book = load_workbook(io.BytesIO(data))
    sheet = book["products"]
    header = sheet_header(sheet)
    assert header == flatten.available_columns("products", LANGS)
    assert all(c.font.b for c in sheet[1]) and sheet.freeze_panes == "A2"
    letter = sheet.cell(row=1, column=1 + header.index("description[en]")).column_letter
    assert sheet.column_dimensions[letter].width > 50
    row = dict(zip(header, (c.value for c in sheet[2]), strict=True))
    product = db.session.get(Product, 1)
    assert isinstance(row["price"], float) and row["price"] == float(product.price)
    assert isinstance(row["quantity"], int)
    assert row["ean13"] == product.ean13 and isinstance(row["supplier_reference"], str)
    assert sheet.max_row == 1 + count(Product)


def test_xlsx_several_sheets_in_one_pass(catalog):
    sheets = read_xlsx(export("products", "xlsx", sheets="combinations,categories,suppliers"))
    assert list(sheets) == ["products", "combinations", "categories", "suppliers"]
    assert len(sheets["products"]) == 1 + count(Product)
    assert list(sheets["combinations"][0]) == flatten.available_columns("combinations", LANGS)
    assert len(sheets["combinations"]) == 1 + count(Combination)
    used = db.session.execute(select(func.count(func.distinct(CategoryProduct.id_category))))
    assert len(sheets["categories"]) == 1 + used.scalar_one()
    assert sheets["suppliers"][0][4:] == (
        "supplier",
        "product_supplier_reference",
        "wholesale_price",
    )
    assert len(sheets["suppliers"]) == 1 + count(ProductSupplier) > 1
    first = db.session.execute(select(ProductSupplier).order_by(ProductSupplier.id)).scalars()
    references = {r[5] for r in sheets["suppliers"][1:]}
    assert {ps.product_supplier_reference for ps in first} == references


def test_xlsx_goes_on_in_a_new_sheet_past_the_row_limit(catalog, monkeypatch):
    monkeypatch.setattr(XlsxFeedWriter, "MAX_ROWS", 10)
    sheets = read_xlsx(export("products", "xlsx", sheets="combinations"))
    products = [n for n in sheets if n.startswith("products")]
    assert products == ["products", "products (2)", "products (3)"]
    assert [len(sheets[n]) for n in products] == [10, 10, 1 + count(Product) - 18]
    combos = [n for n in sheets if n.startswith("combinations")]
    assert len(combos) > 1 and list(sheets)[3] == "combinations"
    assert sum(len(sheets[n]) - 1 for n in combos) == count(Combination)
    for name in sheets:
        assert sheets[name][0][0] == "supplier_reference"  # each part has the header


@pytest.mark.needs("soffice")
def test_libreoffice_reads_the_same_rows_as_openpyxl(catalog, tmp_path):
    path = tmp_path / "products.xlsx"
    path.write_bytes(export("products", "xlsx"))
    out = tmp_path / "out"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    subprocess.run(
        [
            str(SOFFICE),
            f"-env:UserInstallation={home.as_uri()}",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1",
            "--outdir",
            str(out),
            str(path),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = (out / "products.csv").read_text(encoding="utf-8")
    office = list(csv.reader(io.StringIO(text, newline="")))
    ours = [[_shown(v) for v in row] for row in read_xlsx(path.read_bytes())["products"]]
    assert len(office) == len(ours) == 1 + count(Product)
    assert office == ours


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------- JSON


def test_json_document_with_nested_relations(catalog):
    data = export("products", "json")
    assert data.count(b"\n") == 1  # compact: one line
    document = json.loads(data)
    assert document["feed"]["entity"] == "products" and document["feed"]["source"] == SHOP
    products = document["products"]
    assert len(products) == count(Product)
    supplied = db.session.execute(
        select(ProductSupplier.id_product, func.count()).group_by(ProductSupplier.id_product)
    ).all()
    pid, n = supplied[0]
    product = db.session.get(Product, pid)
    (obj,) = [p for p in products if p["reference"] == product.reference]
    assert len(obj["suppliers"]) == n and obj["suppliers"][0]["supplier"]
    assert obj["price"] == format(flatten.plain_decimal(product.price), "f")
    combos = db.session.execute(select(Combination).filter_by(id_product=pid)).scalars().all()
    assert [c["reference"] for c in obj["combinations"]] == [c.reference for c in combos]
    assert all(isinstance(c["stock"]["quantity"], int) for c in obj["combinations"])
    assert all(c["attribute_groups"] for c in obj["combinations"])
    assert obj["categories"] and isinstance(obj["stock"]["quantity"], int)
    pretty = export("products", "json", pretty="true")
    assert json.loads(pretty) == {**document, "feed": json.loads(pretty)["feed"]}
    assert b'\n    {\n      "supplier_reference"' in pretty


def test_jsonl_one_object_per_line(catalog):
    lines = export("products", "jsonl").decode().splitlines()
    objects = [json.loads(line) for line in lines]
    assert len(objects) == count(Product)
    document = json.loads(export("products", "json"))
    assert objects == document["products"]


# ---------------------------------------------------------------------- every entity, every way


def parse(fmt: str, data: bytes) -> tuple[list, list]:
    """(header or keys, records) of a feed of any of the four formats."""
    if fmt == "csv":
        rows = read_csv(data)
        return rows[0], rows[1:]
    if fmt == "xlsx":
        (rows,) = read_xlsx(data).values()
        return list(rows[0]), rows[1:]
    if fmt == "json":
        (entity,) = [k for k in json.loads(data) if k != "feed"]
        objects = json.loads(data)[entity]
    else:
        objects = [json.loads(line) for line in data.decode().splitlines()]
    return list(objects[0]) if objects else [], objects


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "jsonl"])
def test_every_entity_in_every_format(catalog, fmt):
    for entity, model in MODELS.items():
        header, records = parse(fmt, export(entity, fmt))
        assert len(records) == count(model) > 0, (entity, fmt)
        if fmt in ("csv", "xlsx"):
            assert header == flatten.available_columns(entity, LANGS), entity
        else:
            assert header[:2] == ["supplier_reference", "source"], entity


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "jsonl"])
def test_incremental_feeds_list_deletions(catalog, fmt):
    task = exporters.create_exporter(f"inc {fmt}", "products", fmt, "incremental")
    header, _ = parse(fmt, run_feed(task))
    assert "deleted" not in header  # the first run is complete: nothing to delete
    key = identity.key_of(db.session.connection(), "product", 1)
    db.session.get(Product, 2).price = Decimal("77.7")
    db.session.delete(db.session.get(Product, 1))
    db.session.commit()
    header, records = parse(fmt, run_feed(task))
    if fmt in ("json", "jsonl"):
        assert records[-1] == {"deleted": True, "supplier_reference": key[0], "source": key[1]}
        assert records[0]["price"] == "77.70" and "deleted" not in records[0]
        return
    assert header[-1] == "deleted" and len(records) == 2
    changed, deleted = (dict(zip(header, r, strict=True)) for r in records)
    assert changed["deleted"] in ("", None) and changed["price"] in ("77.70", 77.7)
    assert deleted["deleted"] in ("1", 1)
    assert (deleted["supplier_reference"], deleted["source"]) == key
    assert {
        v for k, v in deleted.items() if k not in ("supplier_reference", "source", "deleted")
    } <= {
        "",
        None,
    }


# ---------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exported_then_imported_into_an_empty_shop_exports_the_same(
    sqlite_template,  # noqa: F811
    tmp_path,
    fmt,
):
    a = _shop(sqlite_template, tmp_path / "a", "shopa")
    b = _shop(sqlite_template, tmp_path / "b", "shopb", TEST_DB)
    with a.app_context():
        from impexmod.factories.seed import seed_catalog

        seed_catalog(db.engine, 30, seed=5)
        files = {e: export(e, fmt) for e in ("categories", "products")}
        before = as_dicts(read_csv(export("products", "csv")))
    with b.app_context():
        db.session.add_all(
            [Language(id=1, iso_code="en", name="English"), Language(id=2, iso_code="fr", name="F")]
        )
        db.session.commit()
        for entity, data in files.items():
            path = tmp_path / f"{entity}.{fmt}"
            path.write_bytes(data)
            report = import_file(path)
            assert report.ok, (entity, [str(e) for e in report.errors[:5]])
        after = as_dicts(read_csv(export("products", "csv")))
    # Manufacturers are matched by name: their ids and sources are the new shop's.
    local = ("manufacturer", "manufacturer_source")
    assert {r["manufacturer_source"] for r in after if r["manufacturer"]} == {"shop:shopb"}
    for rows in (before, after):
        for row in rows:
            for name in local:
                row.pop(name)
    assert len(after) == len(before) == 30
    assert sorted(after, key=_key) == sorted(before, key=_key)
    for app in (a, b):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _key(row: dict) -> tuple[str, str]:
    return row["source"], row["supplier_reference"]


# ----------------------------------------------------------------------------- CLI and URL


@pytest.mark.parametrize(
    "fmt, content_type",
    [
        ("csv", "text/csv; charset=utf-8"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("json", "application/json"),
        ("jsonl", "application/x-ndjson"),
    ],
)
def test_cli_exporter_feed_served_at_its_url(catalog, runner, client, fmt, content_type):
    added = runner.invoke(
        args=["exporter", "add", "--name", f"cli {fmt}", "--entity", "products"]
        + ["--format", fmt, "--json"]
    )
    assert added.exit_code == 0, added.output
    task = json.loads(added.output)
    path = urlsplit(task["feed_url"]).path
    assert path.endswith(f"/products.{fmt}")
    assert client.get(path).status_code == 404  # nothing until the first run
    ran = runner.invoke(args=["exporter", "run", str(task["id"]), "--wait"])
    assert ran.exit_code == 0 and "succeeded" in ran.output, ran.output
    with client.get(path) as response:
        assert response.status_code == 200 and response.content_type == content_type
        _, records = parse(fmt, response.data)
    assert len(records) == count(Product)


def test_cli_refuses_a_bad_option_naming_it(catalog, runner):
    result = runner.invoke(
        args=["exporter", "add", "--name", "bad", "--entity", "products", "--format", "csv"]
        + ["--option", "fields=reference,colour"]
    )
    assert result.exit_code == 2 and "colour" in result.output
