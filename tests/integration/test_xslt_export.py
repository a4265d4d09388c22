"""XSLT exporters on a seeded catalog: the shipped stylesheets run by lxml (record-wise and on
the whole document) give the bytes /usr/bin/xsltproc gives on the native feed; uploads, the
sandbox, the size limit, the CLI and the feed URL's extension and content type."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
from lxml import etree
from sqlalchemy import select, update

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import stylesheets
from impexmod.export.stylesheets import SHIPPED_DIR, InvalidStylesheet, StylesheetInUse
from impexmod.export.xslt import resolve_stylesheet
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import Combination, Product, ProductLang, StockAvailable, Stylesheet
from impexmod.runs import tasks
from impexmod.runs.feedstore import get_store

G = "{http://base.google.com/ns/1.0}"
PARAMS = {"language": "fr", "currency": "EUR", "shop-url": "https://shop.test"}
SHIPPED = ("native-to-csv", "google-shopping")


@pytest.fixture
def catalog(app):
    """40 seeded products read in chunks of 7, one of them inactive and one with a bad EAN."""
    app.config.update(
        CHUNK_SIZE=7, FEED_LANGUAGE="fr", CURRENCY="EUR", SHOP_URL="https://shop.test"
    )
    seed_catalog(db.engine, 40, seed=3)
    db.session.execute(update(Product).where(Product.id == 3).values(active=False))
    db.session.execute(update(Product).where(Product.id == 1).values(ean13="3016429330640"))
    db.session.commit()
    return app


def feed_bytes(task) -> bytes:
    """Run an exporter and return the file its URL now serves."""
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    store = get_store()
    return store.path(task.id, store.current(task.id).name).read_bytes()


def xsltproc(stylesheet: Path, feed: bytes, tmp_path: Path) -> bytes:
    """The output of /usr/bin/xsltproc (no network) with the parameters a run passes."""
    native = tmp_path / "native.xml"
    native.write_bytes(feed)
    args = [a for k, v in PARAMS.items() for a in ("--stringparam", k, v)]
    done = subprocess.run(
        ["/usr/bin/xsltproc", "--nonet", *args, str(stylesheet), str(native)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def whole_document_copy(name: str, tmp_path: Path) -> tuple[str, Path]:
    """Upload a shipped stylesheet without its record-wise mark: it runs on the whole document."""
    content = (SHIPPED_DIR / f"{name}.xsl").read_bytes()
    assert b'impexmod:record-wise="true"' in content
    content = content.replace(b'impexmod:record-wise="true"', b"")
    saved = stylesheets.save_stylesheet(f"{name}-whole", content, record_wise=False)
    assert saved.record_wise is False
    path = tmp_path / f"{name}-whole.xsl"
    path.write_bytes(content)
    return saved.name, path


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.needs("xsltproc")
def test_lxml_record_wise_and_whole_document_give_the_bytes_of_xsltproc(catalog, tmp_path, name):
    native = feed_bytes(exporters.create_exporter("native", "products"))
    chunked = feed_bytes(exporters.create_exporter("chunked", "products", stylesheet=name))
    whole_name, whole_path = whole_document_copy(name, tmp_path)
    whole = feed_bytes(exporters.create_exporter("whole", "products", stylesheet=whole_name))
    reference = xsltproc(SHIPPED_DIR / f"{name}.xsl", native, tmp_path)
    assert len(reference) > 5000  # 40 products' worth
    assert chunked == reference  # byte for byte, XML declaration included
    assert whole == reference
    assert xsltproc(whole_path, native, tmp_path) == reference


def _gtin_valid(code: str) -> bool:
    digits = [int(c) for c in code.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    return len(code) in (8, 12, 13, 14) and (10 - total % 10) % 10 == digits[13]


def test_the_google_feed_has_every_required_attribute_of_every_item(catalog):
    data = feed_bytes(exporters.create_exporter("g", "products", stylesheet="google-shopping"))
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    assert (root.tag, root.get("version")) == ("rss", "2.0")
    assert root.nsmap["g"] == G.strip("{}")
    items = root.findall("channel/item")
    active = db.session.scalars(select(Product.id).where(Product.active.is_(True))).all()
    expected = sum(
        db.session.query(Combination).filter(Combination.id_product == pid).count() or 1
        for pid in active
    )
    assert len(items) == expected > len(active)  # one item per variant, inactive left out
    ids = [item.findtext(f"{G}id") for item in items]
    assert len(set(ids)) == len(ids)
    for item in items:
        for attribute in ("id", "title", "link", "price", "availability"):
            assert (item.findtext(f"{G}{attribute}") or "").strip(), (attribute, ids)
        amount, currency = item.findtext(f"{G}price").split(" ")
        assert currency == "EUR" and Decimal(amount) == Decimal(amount).quantize(Decimal("0.01"))
        assert item.findtext(f"{G}availability") in ("in_stock", "out_of_stock")
        assert item.findtext(f"{G}link").startswith("https://shop.test/")
        gtin = item.findtext(f"{G}gtin")
        assert gtin is None or _gtin_valid(gtin)
        assert "<" not in item.findtext(f"{G}description")
    first = db.session.get(Product, 1)
    lone = [i for i in items if i.findtext(f"{G}id") == first.reference]
    assert lone and lone[0].find(f"{G}gtin") is None  # its EAN's check digit is wrong
    # Titles in the feed language, variants named by their attributes.
    name_fr = db.session.scalar(
        select(ProductLang.name).where(ProductLang.id_product == 1, ProductLang.id_lang == 2)
    )
    assert lone[0].findtext(f"{G}title") == name_fr
    grouped = [i for i in items if i.find(f"{G}item_group_id") is not None]
    assert grouped and all(" - " in i.findtext(f"{G}title") for i in grouped)


def test_native_to_csv_is_one_row_per_product_with_canonical_columns(catalog):
    data = feed_bytes(exporters.create_exporter("c", "products", stylesheet="native-to-csv"))
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert len(rows) == db.session.query(Product).count()
    assert list(rows[0])[:8] == [
        "supplier_reference",
        "source",
        "reference",
        "ean13",
        "upc",
        "isbn",
        "mpn",
        "name[fr]",
    ]
    by_ref = {r["reference"]: r for r in rows}
    for product in db.session.scalars(select(Product)):
        row = by_ref[product.reference]
        name = db.session.scalar(
            select(ProductLang.name).where(
                ProductLang.id_product == product.id, ProductLang.id_lang == 2
            )
        )
        assert row["name[fr]"] == name
        assert Decimal(row["price"]) == product.price
        quantity = db.session.scalar(
            select(StockAvailable.quantity).where(
                StockAvailable.id_product == product.id,
                StockAvailable.id_product_attribute == 0,
            )
        )
        assert row["quantity"] == ("" if quantity is None else str(quantity))


def test_a_stylesheet_reading_a_file_fails_the_run_and_nothing_leaks(catalog):
    content = (
        (SHIPPED_DIR / "native-to-csv.xsl")
        .read_bytes()
        .replace(
            b'<xsl:value-of select="$sep"/>',
            b"<xsl:value-of select=\"document('file:///etc/passwd')\"/>",
            1,
        )
    )
    stylesheets.save_stylesheet("reader", content)  # document() is refused when it runs
    task = exporters.create_exporter("leaky", "products", stylesheet="reader")
    run = jobs.start_run(task, inline=True)
    assert run.status == "failed"
    assert "StylesheetFailed: stylesheet reader failed at line" in run.error
    assert "file:///etc/passwd refused" in run.error
    assert "may not read or write files" in run.error
    assert "root:" not in run.error and "root:" not in "\n".join(run.log or [])
    store = get_store()
    assert store.current(task.id) is None  # nothing published
    assert [p.name for p in store.folder(task.id).iterdir()] == []  # no temporary file left


def test_an_uploaded_stylesheet_must_compile_and_may_not_shadow_a_shipped_one(catalog):
    broken = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <xsl:for-each select="product[">x</xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
"""
    with pytest.raises(InvalidStylesheet) as caught:
        stylesheets.save_stylesheet("broken", broken)
    assert caught.value.line == 4
    assert caught.value.message.startswith("stylesheet does not compile: line 4:")
    with pytest.raises(InvalidStylesheet, match="google-shopping is a shipped stylesheet"):
        stylesheets.save_stylesheet(
            "google-shopping", (SHIPPED_DIR / "google-shopping.xsl").read_bytes()
        )
    with pytest.raises(InvalidStylesheet, match="not UTF-8"):
        stylesheets.save_stylesheet("latin", "<x>é</x>".encode("latin-1"))
    with pytest.raises(InvalidStylesheet, match="name is 1 to 64"):
        stylesheets.save_stylesheet("../evil", broken)
    assert db.session.query(Stylesheet).count() == 0


def test_the_whole_document_limit_fails_the_run_and_keeps_the_previous_feed(catalog, tmp_path):
    name, _ = whole_document_copy("native-to-csv", tmp_path)
    task = exporters.create_exporter("whole", "products", stylesheet=name)
    first = feed_bytes(task)
    catalog.config["XSLT_MAX_INPUT_BYTES"] = 20_000
    run = jobs.start_run(task, inline=True)
    assert run.status == "failed"
    assert "InputTooLarge" in run.error
    assert "over the limit of 20000 bytes (IMPEXMOD_XSLT_MAX_INPUT_BYTES)" in run.error
    store = get_store()
    assert store.path(task.id, store.current(task.id).name).read_bytes() == first
    # The record-wise original has no such limit.
    assert feed_bytes(exporters.create_exporter("chunked", "products", stylesheet="native-to-csv"))


def test_a_stylesheet_in_use_cannot_be_deleted(catalog, tmp_path):
    name, _ = whole_document_copy("google-shopping", tmp_path)
    task = exporters.create_exporter("g", "products", stylesheet=name)
    with pytest.raises(StylesheetInUse, match=f"used by exporter {task.id} \\(g\\)"):
        stylesheets.delete_stylesheet(name)
    with pytest.raises(stylesheets.StylesheetError, match="shipped stylesheet"):
        stylesheets.delete_stylesheet("native-to-csv")
    tasks.delete_task(task)
    stylesheets.delete_stylesheet(name)
    assert name not in stylesheets.stylesheet_names()
    with pytest.raises(LookupError):
        stylesheets.delete_stylesheet(name)


def test_cli_add_list_show_delete(catalog, runner, tmp_path):
    mine = tmp_path / "mine.xsl"
    mine.write_bytes(
        (SHIPPED_DIR / "native-to-csv.xsl")
        .read_bytes()
        .replace(b'impexmod:record-wise="true"', b"")
    )
    added = runner.invoke(args=["stylesheet", "add", str(mine), "--record-wise"])
    assert added.exit_code == 0, added.output
    assert "Stylesheet mine saved: writes csv, applied record-wise." in added.output
    again = runner.invoke(args=["stylesheet", "add", str(mine)])
    assert again.exit_code != 0 and "exists" in again.output
    broken = tmp_path / "broken.xsl"
    broken.write_text(
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">\n'
        '<xsl:template match="/"><xsl:value-of select="1 +"/></xsl:template>\n'
        "</xsl:stylesheet>\n"
    )
    refused = runner.invoke(args=["stylesheet", "add", str(broken), "--name", "broken"])
    assert refused.exit_code != 0
    assert "does not compile: line 2:" in refused.output
    listed = json.loads(runner.invoke(args=["stylesheet", "list", "--json"]).output)
    assert [(s["name"], s["origin"], s["ext"], s["record_wise"]) for s in listed] == [
        ("google-shopping", "shipped", "xml", True),
        ("native-to-csv", "shipped", "csv", True),
        ("mine", "uploaded", "csv", True),
    ]
    text = runner.invoke(args=["stylesheet", "list"]).output
    assert "mine" in text and "uploaded" in text
    shown = runner.invoke(args=["stylesheet", "show", "mine"])
    assert shown.output == mine.read_text()
    used = runner.invoke(
        args=["exporter", "add", "--name", "m", "--entity", "products", "--stylesheet", "mine"]
    )
    assert used.exit_code == 0, used.output
    refused = runner.invoke(args=["stylesheet", "delete", "mine"])
    assert refused.exit_code != 0 and "used by exporter" in refused.output
    task_id = tasks.list_tasks("export")[0].id
    assert runner.invoke(args=["exporter", "delete", str(task_id)]).exit_code == 0
    deleted = runner.invoke(args=["stylesheet", "delete", "mine"])
    assert deleted.exit_code == 0 and "Stylesheet mine deleted." in deleted.output
    gone = runner.invoke(args=["stylesheet", "show", "mine"])
    assert gone.exit_code != 0 and "no stylesheet named 'mine'" in gone.output


def test_exporter_add_with_a_stylesheet_serves_a_csv_feed(catalog, runner, client):
    added = runner.invoke(
        args=[
            "exporter",
            "add",
            "--name",
            "flat",
            "--entity",
            "products",
            "--stylesheet",
            "native-to-csv",
        ]
    )
    assert added.exit_code == 0, added.output
    url = added.output.strip().splitlines()[-1]
    assert url.endswith("/products.csv")
    path = urlparse(url).path
    assert client.get(path).status_code == 404  # until the first run
    task = tasks.list_tasks("export")[0]
    ran = runner.invoke(args=["exporter", "run", str(task.id)])
    assert ran.exit_code == 0 and "succeeded" in ran.output, ran.output
    with client.get(path) as served:  # a file response: closed when done
        assert served.status_code == 200
        assert served.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert served.data.decode("utf-8-sig").startswith("supplier_reference;source;reference;")
    refused = runner.invoke(
        args=["exporter", "add", "--name", "x", "--entity", "products", "--stylesheet", "nope"]
    )
    assert refused.exit_code != 0 and "no stylesheet named 'nope'" in refused.output


def test_shipped_stylesheets_resolve_with_their_declarations(app):
    csv_spec = resolve_stylesheet("native-to-csv")
    assert (csv_spec.origin, csv_spec.ext, csv_spec.record_wise) == ("shipped", "csv", True)
    google = resolve_stylesheet("google-shopping")
    assert (google.ext, google.record_wise, google.container) == ("xml", True, "channel")
    assert isinstance(google.xslt(), etree.XSLT)
    with pytest.raises(LookupError, match=r"no stylesheet named 'nope' \(known: google-shopping"):
        resolve_stylesheet("nope")
    with pytest.raises(LookupError):
        resolve_stylesheet("../xslt/native-to-csv")
