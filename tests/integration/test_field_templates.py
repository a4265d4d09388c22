"""Field templates on a real database: the services (validation against the shop's columns,
never half-saved, refused deletion while in use, JSON export and import), `impexmod template`
through the CLI runner, and an exporter writing its CSV through a saved template."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import openpyxl
import pytest

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import field_templates as services
from impexmod.export import mapping, output
from impexmod.extensions import db
from impexmod.models import (
    Combination,
    FieldTemplate,
    Language,
    Product,
    ProductLang,
    StockAvailable,
    Task,
)
from impexmod.runs.feedstore import get_store
from impexmod.runs.tokens import new_nonce

COLUMNS = [
    {"header": "SKU", "source": "reference"},
    {"header": "Title", "concat": ["name[en]", " - ", "reference"]},
    {
        "header": "Price",
        "source": "price",
        "transforms": [{"op": "price", "decimals": 2, "decimal_separator": ",", "suffix": " EUR"}],
    },
    {"header": "Condition", "value": "new"},
]


@pytest.fixture
def shop(app):
    """A shop in English and French."""
    db.session.add_all(
        [Language(id=1, iso_code="en", name="English"), Language(id=2, iso_code="fr", name="Fr")]
    )
    db.session.commit()
    return app


def count() -> int:
    return db.session.query(FieldTemplate).count()


def exporter_using(name: str, entity: str = "products", title: str = "Marketplace") -> Task:
    """An exporter row naming the template (as the exporter services save it)."""
    task = Task(kind="export", name=title, entity=entity, format="csv", token_nonce=new_nonce())
    task.template = name
    db.session.add(task)
    db.session.commit()
    return task


# ---------------------------------------------------------------------------------- services


def test_create_saves_canonical_columns_and_loads_as_a_mapping(shop):
    saved = services.create_template("market", "products", COLUMNS, "  For the marketplace ")
    assert saved.description == "For the marketplace"
    assert saved.columns[1]["concat"] == [
        {"field": "name[en]"},
        {"text": " - "},
        {"field": "reference"},
    ]
    assert all("transforms" in c for c in saved.columns)
    loaded = mapping.load_mapping("market")
    assert loaded.entity == "products"
    assert loaded.headers() == ["SKU", "Title", "Price", "Condition"]
    assert loaded.apply({"reference": "R1", "name[en]": "Shoe", "price": "10.005"}) == [
        "R1",
        "Shoe - R1",
        "10,01 EUR",
        "new",
    ]
    assert mapping.load_mapping("nothing") is None
    assert mapping.saved_names() == ["market"]
    assert "market" in output.template_names()


def test_sources_are_checked_against_the_shop_languages(shop):
    with pytest.raises(services.InvalidTemplate) as caught:
        services.create_template("t", "products", [{"header": "Name", "source": "name"}])
    assert caught.value.field == "columns"
    assert "unknown column 'name' (did you mean name[en], name[fr]?)" in caught.value.message
    with pytest.raises(services.InvalidTemplate) as caught:
        services.create_template("t", "products", [{"header": "N", "source": "name[de]"}])
    assert "column 1 (\"N\"): source: unknown column 'name[de]'" in caught.value.message
    with pytest.raises(services.InvalidTemplate) as caught:
        services.create_template("t", "stock", [{"header": "P", "source": "price"}])
    assert "unknown column 'price'" in caught.value.message
    services.create_template("t", "products", [{"header": "N", "source": "name[fr]"}])
    assert count() == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "a name is required"),
        ("shopify", "'shopify' is a predefined template"),
        ("Google-Shopping", "is a predefined template"),
        ("amazon", "is a predefined template"),
        ("my feed", "up to 64 letters, digits"),
        ("x" * 65, "up to 64 letters"),
        ("-x", "starting with a letter or digit"),
    ],
)
def test_bad_names_are_refused(shop, name, expected):
    with pytest.raises(services.InvalidTemplate) as caught:
        services.create_template(name, "products", COLUMNS)
    assert caught.value.field == "name"
    assert expected in caught.value.message
    assert count() == 0


def test_names_are_unique_whatever_the_case(shop):
    services.create_template("Market", "products", COLUMNS)
    with pytest.raises(services.InvalidTemplate, match="'Market' already exists"):
        services.create_template("market", "products", COLUMNS)
    assert count() == 1


def test_entity_and_description_are_checked(shop):
    with pytest.raises(services.InvalidTemplate) as caught:
        services.create_template("t", "nope", COLUMNS)
    assert caught.value.field == "entity"
    assert "'nope' cannot be mapped; choose one of products, combinations" in caught.value.message
    with pytest.raises(services.InvalidTemplate, match="at most 255"):
        services.create_template("t", "products", COLUMNS, "x" * 256)
    assert count() == 0


def test_update_changes_columns_and_a_bad_update_changes_nothing(shop):
    services.create_template("t", "products", COLUMNS, "first")
    services.update_template("t", columns=[{"header": "Ref", "source": "reference"}])
    saved = services.get_template("t")
    assert [c["header"] for c in saved.columns] == ["Ref"]
    assert saved.description == "first"
    with pytest.raises(services.InvalidTemplate):
        services.update_template("t", columns=[{"header": "X", "source": "nope"}], description="x")
    db.session.expire_all()
    saved = services.get_template("t")
    assert [c["header"] for c in saved.columns] == ["Ref"]
    assert saved.description == "first"
    with pytest.raises(services.TemplateNotFound, match="saved: t"):
        services.update_template("other", columns=COLUMNS)


def test_delete_is_refused_while_exporters_use_it(shop):
    services.create_template("t", "products", COLUMNS)
    first = exporter_using("t", title="Shop B")
    second = exporter_using("t", title="Market")
    with pytest.raises(services.TemplateInUse) as caught:
        services.delete_template("t")
    assert str(caught.value) == (
        f"cannot delete template t: used by exporters {first.id} (Shop B), {second.id} (Market); "
        "give them another template first"
    )
    assert count() == 1
    # Nor may it change entity under them.
    with pytest.raises(services.TemplateInUse, match="cannot map stock with template t"):
        services.update_template(
            "t", entity="stock", columns=[{"header": "Q", "source": "quantity"}]
        )
    assert services.get_template("t").entity == "products"
    first.template = second.template = None
    db.session.commit()
    services.delete_template("t")
    assert count() == 0
    with pytest.raises(services.TemplateNotFound):
        services.delete_template("t")


def test_export_import_round_trip(shop):
    services.create_template("market", "products", COLUMNS, "Marketplace CSV")
    document = services.export_template("market")
    assert list(document) == ["name", "entity", "description", "columns"]
    text = services.dumps(document)
    assert list(json.loads(text)) == ["name", "entity", "description", "columns"]
    assert list(json.loads(text)["columns"][2]["transforms"][0]) == [
        "op",
        "decimals",
        "decimal_separator",
        "suffix",
    ]
    services.delete_template("market")
    imported = services.import_template(text.encode("utf-8"))
    assert imported.name == "market"
    assert services.dumps(services.export_template("market")) == text


def test_import_replaces_only_when_asked(shop):
    services.create_template("market", "products", COLUMNS)
    first_id = services.get_template("market").id
    document = {
        "name": "market",
        "entity": "products",
        "description": "v2",
        "columns": [{"header": "Ref", "source": "reference"}],
    }
    with pytest.raises(services.InvalidTemplate, match="already exists .replace it with --replace"):
        services.import_template(document)
    replaced = services.import_template(json.dumps(document), replace=True)
    assert replaced.id == first_id
    assert replaced.description == "v2"
    assert replaced.columns == [{"header": "Ref", "source": "reference", "transforms": []}]


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        (b"\xff\xfe", "file", "not UTF-8 text"),
        ("{", "file", "not JSON: Expecting property name enclosed in double quotes at line 1"),
        ("[]", "file", "a template file is a JSON object"),
        ('{"name": "t", "entity": "products", "colums": []}', "file", "did you mean columns?"),
        ('{"name": "t", "entity": "products"}', "columns", "the file has no 'columns'"),
        ('{"name": "t", "entity": "nope", "columns": []}', "entity", "'nope' cannot be mapped"),
        (
            '{"name": "t", "entity": "products", "columns": [{"header": "A", "source": "x"}]}',
            "columns",
            "column 1 (\"A\"): source: unknown column 'x'",
        ),
        ('{"name": "prestashop", "entity": "products", "columns": []}', "name", "predefined"),
    ],
)
def test_import_errors_save_nothing(shop, data, field, expected):
    with pytest.raises(services.InvalidTemplate) as caught:
        services.import_template(data)
    assert caught.value.field == field
    assert expected in caught.value.message
    assert count() == 0


def test_a_bad_replacing_import_keeps_the_saved_template(shop):
    services.create_template("market", "products", COLUMNS)
    bad = {"name": "market", "entity": "products", "columns": [{"header": "A", "value": []}]}
    with pytest.raises(services.InvalidTemplate, match="a constant is a text or a number"):
        services.import_template(bad, replace=True)
    db.session.expire_all()
    assert len(services.get_template("market").columns) == len(COLUMNS)


def test_exporter_validation_reads_saved_templates(shop):
    services.create_template("market", "products", COLUMNS)
    with pytest.raises(output.InvalidOutput) as caught:
        output.validate_output("stock", "csv", {}, "market")
    assert caught.value.field == "template"
    assert "template market maps products, not stock" in caught.value.message
    with pytest.raises(output.InvalidOutput) as caught:
        output.validate_output("products", "xml", {}, "market")
    assert caught.value.field == "format"
    with pytest.raises(output.InvalidOutput, match="no template named 'other'"):
        output.validate_output("products", "csv", {}, "other")


# ------------------------------------------------------------------------------------- CLI


def invoke(runner, *args, input=None):
    result = runner.invoke(args=["template", *args], input=input)
    # Bad input ends in a message, never a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_cli_add_list_show_export_import_delete(shop, runner, tmp_path):
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(COLUMNS), encoding="utf-8")
    result = invoke(
        runner, "add", "--name", "market", "--entity", "products", "--file", str(mapping_file)
    )
    assert result.exit_code == 0, result.output
    assert "Template market saved: products, 4 columns." in result.output

    result = invoke(
        runner,
        "add",
        "--name",
        "quick",
        "--entity",
        "products",
        "--description",
        "Quick one",
        "--column",
        "Title=name[en]|strip_html|truncate:70",
        "--column",
        "Price=price|price:2|default:n/a",
        "--column",
        "Ref=reference|upper",
    )
    assert result.exit_code == 0, result.output
    quick = services.get_template("quick")
    assert quick.description == "Quick one"
    assert quick.columns[0] == {
        "header": "Title",
        "source": "name[en]",
        "transforms": [{"op": "strip_html"}, {"op": "truncate", "length": 70}],
    }
    assert quick.columns[1]["transforms"] == [
        {"op": "price", "decimals": 2},
        {"op": "default", "value": "n/a"},
    ]

    result = invoke(runner, "list")
    assert result.exit_code == 0
    assert "market  [products, 4 columns]" in result.output
    assert "SKU, Title, Price, Condition" in result.output
    listed = json.loads(invoke(runner, "list", "--json").output)
    assert [(t["name"], t["headers"][0], t["used_by"]) for t in listed] == [
        ("market", "SKU", []),
        ("quick", "Title", []),
    ]

    shown = invoke(runner, "show", "market").output
    assert json.loads(shown) == services.export_template("market")
    assert invoke(runner, "export", "market").output == shown
    exported = tmp_path / "out" / "market.json"
    exported.parent.mkdir()
    result = invoke(runner, "export", "market", "-o", str(exported))
    assert result.exit_code == 0
    assert exported.read_text(encoding="utf-8") == shown

    result = invoke(runner, "import", str(exported))
    assert result.exit_code == 2
    assert "already exists (replace it with --replace)" in result.output
    result = invoke(runner, "import", str(exported), "--replace")
    assert result.exit_code == 0, result.output
    assert "Template market imported: products, 4 columns." in result.output

    result = invoke(runner, "delete", "quick")
    assert result.exit_code == 0
    assert "Template quick deleted." in result.output
    assert mapping.saved_names() == ["market"]


def test_cli_add_takes_a_whole_template_file(shop, runner, tmp_path):
    document = tmp_path / "doc.json"
    document.write_text(
        json.dumps({"name": "ignored", "description": "From a file", "columns": COLUMNS}),
        encoding="utf-8-sig",  # a BOM, as Windows editors write
    )
    result = invoke(runner, "add", "--name", "m", "--entity", "products", "--file", str(document))
    assert result.exit_code == 0, result.output
    assert services.get_template("m").description == "From a file"


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        (("add", "--name", "t", "--entity", "products"), 2, "give the mapping with --file"),
        (
            ("add", "--name", "shopify", "--entity", "products", "--column", "A=reference"),
            2,
            "Invalid value for --name: 'shopify' is a predefined template",
        ),
        (
            ("add", "--name", "t", "--entity", "products", "--column", "A=nope"),
            2,
            "Invalid value for --column: column 1 (\"A\"): source: unknown column 'nope'",
        ),
        (
            ("add", "--name", "t", "--entity", "products", "--column", "A"),
            2,
            "'A' is not Header=source",
        ),
        (
            ("add", "--name", "t", "--entity", "products", "--column", "A=price|round:x"),
            2,
            "round wants a whole number, not 'x'",
        ),
        (
            ("add", "--name", "t", "--entity", "products", "--column", "A=price|upper:x"),
            2,
            "upper takes no argument",
        ),
        (
            ("add", "--name", "t", "--entity", "products", "--column", "A=price|uper"),
            2,
            "unknown op 'uper' (did you mean upper?)",
        ),
        (
            ("add", "--name", "t", "--entity", "orderz", "--column", "A=price"),
            2,
            "Invalid value for '--entity'",
        ),
        (("show", "nope"), 1, "Error: no field template named 'nope' (saved: none yet)"),
        (("export", "nope"), 1, "no field template named 'nope'"),
        (("delete", "nope"), 1, "no field template named 'nope'"),
    ],
)
def test_cli_errors(shop, runner, args, status, expected):
    result = invoke(runner, *args)
    assert result.exit_code == status, result.output
    assert expected in result.output
    assert count() == 0


def test_cli_bad_files(shop, runner, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"header": "A", "source": "reference"', encoding="utf-8")
    result = invoke(runner, "add", "--name", "t", "--entity", "products", "--file", str(broken))
    assert result.exit_code == 2
    assert "Invalid value for --file: not JSON: Expecting" in result.output
    result = invoke(runner, "import", str(broken))
    assert result.exit_code == 2
    assert "Invalid value for FILE: not JSON" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"name": "t", "entity": "products", "columns": [{"header": "A"}]}),
        encoding="utf-8",
    )
    result = invoke(runner, "import", str(bad))
    assert result.exit_code == 2
    assert 'column 1 ("A"): give exactly one of source' in result.output
    assert count() == 0


def test_cli_delete_refused_while_in_use(shop, runner):
    services.create_template("market", "products", COLUMNS)
    task = exporter_using("market", title="Shop B")
    result = invoke(runner, "delete", "market")
    assert result.exit_code == 1
    assert f"Error: cannot delete template market: used by exporter {task.id} (Shop B)" in (
        result.output
    )
    assert json.loads(invoke(runner, "list", "--json").output)[0]["used_by"] == [task.id]
    assert count() == 1


# ------------------------------------------------------------------------- exporter, end to end

MARKETPLACE = [
    {"header": "SKU", "source": "reference", "transforms": [{"op": "upper"}]},
    {"header": "Title", "concat": ["name[en]", " - ", "reference"]},
    {
        "header": "Description",
        "source": "description[en]",
        "transforms": [
            {"op": "strip_html"},
            {"op": "truncate", "length": 12, "ellipsis": "…"},
            {"op": "default", "value": "n/a"},
        ],
    },
    {
        "header": "Price",
        "source": "price",
        "transforms": [{"op": "price", "decimals": 2, "decimal_separator": ",", "suffix": " EUR"}],
    },
    {"header": "Weight", "source": "weight", "transforms": [{"op": "round", "decimals": 1}]},
    {
        "header": "Online",
        "source": "active",
        "transforms": [{"op": "lookup", "table": {"1": "yes", "0": "no"}}],
    },
    {"header": "Stock", "source": "quantity"},
    {"header": "Condition", "value": "new"},
]


def add_product(reference: str, price: str, description: str | None, active: bool = True):
    product = Product(reference=reference, price=Decimal(price), weight=Decimal("1.25"))
    product.active = active
    db.session.add(product)
    db.session.flush()
    db.session.add(
        ProductLang(
            id_product=product.id,
            id_lang=1,
            name=f"Shoe {reference}",
            link_rewrite=reference.lower(),
            description=description,
        )
    )
    db.session.add(StockAvailable(id_product=product.id, quantity=7))
    db.session.commit()


def published(task: Task) -> bytes:
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    return store.path(task.id, store.current(task.id).name).read_bytes()


def test_a_csv_exporter_writes_through_its_template(shop, runner):
    add_product("ab-1", "19.995", "<p>Soft &amp; light leather</p>")
    add_product("ab-2", "5", None, active=False)
    services.create_template("marketplace", "products", MARKETPLACE)
    result = runner.invoke(
        args=["exporter", "add", "--name", "Market", "--entity", "products"]
        + ["--format", "csv", "--template", "marketplace", "--json"]
    )
    assert result.exit_code == 0, result.output
    task = db.session.get(Task, json.loads(result.output)["id"])
    data = published(task)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows == [
        ["SKU", "Title", "Description", "Price", "Weight", "Online", "Stock", "Condition"],
        ["AB-1", "Shoe ab-1 - ab-1", "Soft & ligh…", "20,00 EUR", "1.3", "yes", "7", "new"],
        ["AB-2", "Shoe ab-2 - ab-2", "n/a", "5,00 EUR", "1.3", "no", "7", "new"],
    ]
    # The template is now in use: it stays, and its next version is what the next run writes.
    result = runner.invoke(args=["template", "delete", "marketplace"])
    assert result.exit_code == 1
    assert f"used by exporter {task.id} (Market)" in result.output
    services.update_template("marketplace", columns=[{"header": "Ref", "source": "reference"}])
    rows = list(csv.reader(io.StringIO(published(task).decode("utf-8-sig")), delimiter=";"))
    assert rows == [["Ref"], ["ab-1"], ["ab-2"]]


def test_json_jsonl_and_xlsx_exporters_write_through_the_template(shop):
    add_product("ab-1", "19.995", "<p>x</p>")
    services.create_template("market", "products", MARKETPLACE)
    headers = [c["header"] for c in MARKETPLACE]
    expected = ["AB-1", "Shoe ab-1 - ab-1", "x", "20,00 EUR", "1.3", "yes", 7, "new"]

    task = exporters.create_exporter("Lines", "products", "jsonl", template="market")
    lines = [json.loads(line) for line in published(task).decode("utf-8").splitlines()]
    assert lines == [dict(zip(headers, expected, strict=True))]
    assert list(lines[0]) == headers  # the template's order

    task = exporters.create_exporter("Document", "products", "json", template="market")
    assert json.loads(published(task))["products"] == lines

    task = exporters.create_exporter("Sheet", "products", "xlsx", template="market")
    book = openpyxl.load_workbook(io.BytesIO(published(task)), read_only=True)
    try:
        cells = [[c.value for c in row] for row in book.worksheets[0].iter_rows()]
    finally:
        book.close()
    # ``round`` gives a number: a numeric cell; the untransformed quantity stays one too.
    assert cells == [headers, [*expected[:4], 1.3, *expected[5:]]]


def test_a_products_template_may_read_combination_columns(shop):
    add_product("ab-1", "10", None)
    product = db.session.query(Product).one()
    db.session.add_all(
        [
            Combination(id_product=product.id, reference="ab-1-red", price=Decimal("1.5")),
            Combination(id_product=product.id, reference="ab-1-blue", price=0),
        ]
    )
    db.session.commit()
    columns = [
        {"header": "Parent", "source": "reference"},
        {"header": "SKU", "source": "combination_reference", "transforms": [{"op": "upper"}]},
        {"header": "Price", "source": "combination_price", "transforms": [{"op": "price"}]},
    ]
    services.create_template("variants", "products", columns)
    task = exporters.create_exporter(
        "Variants", "products", "csv", options={"rows": "combinations"}, template="variants"
    )
    rows = list(csv.reader(io.StringIO(published(task).decode("utf-8-sig")), delimiter=";"))
    assert rows == [
        ["Parent", "SKU", "Price"],
        ["ab-1", "AB-1-RED", "11.50"],
        ["ab-1", "AB-1-BLUE", "10.00"],
    ]
