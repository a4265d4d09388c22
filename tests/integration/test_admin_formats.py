"""Admin panel, issue 6: the exporter form's output fields, field templates, stylesheets and the
manual export, through the signed-in test client on a real SQLite database."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from html import unescape

import pytest

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import FieldTemplate, Product, Run, Stylesheet, Task
from impexmod.runs import tasks
from tests.integration.test_admin_auth import signed_in

ERRORS = re.compile(r'data-error-for="(\w+)">([^<]+)<')
PRODUCTS = 60

IDENTITY_XSL = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="/"><xsl:for-each select="//product">
    <xsl:value-of select="@id"/><xsl:text>&#10;</xsl:text></xsl:for-each></xsl:template>
</xsl:stylesheet>
"""
BROKEN_XSL = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><xsl:value-of select="concat(("/></xsl:template>
</xsl:stylesheet>
"""
FAILING_XSL = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="/"><xsl:message terminate="yes">no stock data today</xsl:message>
  </xsl:template>
</xsl:stylesheet>
"""
COLUMNS = [
    {"header": "SKU", "source": "reference"},
    {"header": "Price", "source": "price", "transforms": [{"op": "price", "decimals": 2}]},
    {"header": "Brand", "value": "Acme"},
]


@pytest.fixture
def panel(app):
    """A client signed in as a merchant, on a seeded catalog."""
    seed_catalog(db.engine, PRODUCTS, seed=5)
    return signed_in(app)


def errors_of(response) -> dict[str, str]:
    """The errors shown next to fields, by field name."""
    return dict(ERRORS.findall(unescape(response.get_data(as_text=True))))


def exporter_form(**fields) -> dict:
    """The exporter form as a merchant fills it in."""
    return {"name": "Feed", "entity": "products", "format": "", "strategy": "full",
            "schedule": "none", "timezone": "", "template": "", "stylesheet": "",
            "options": "", "filters": "", "filter_match": "all", **fields}  # fmt: skip


def manual_form(**fields) -> dict:
    """The manual export form."""
    return {"entity": "products", "format": "csv", "template": "", "stylesheet": "",
            "options": "", "filters": "", "filter_match": "all", **fields}  # fmt: skip


def csv_rows(data: bytes, delimiter: str = ";") -> list[dict[str, str]]:
    """A CSV file (with its BOM) parsed by the csv module."""
    assert data.startswith(b"\xef\xbb\xbf"), data[:20]
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))


def references(condition) -> set[str]:
    """References of the products matching a SQLAlchemy condition."""
    return {p.reference for p in db.session.query(Product).filter(condition)}


# ------------------------------------------------------------------------------ exporter form


def test_add_an_exporter_with_format_options_and_filters(panel):
    form = panel.text("/admin/tasks/new/")
    for text in ("Template", "Stylesheet", "Options", "Selection", "All the filters",
                 "Shopify", "separator", 'data-options-for="csv"'):  # fmt: skip
        assert text in form, text
    response = panel.post(
        "/admin/tasks/new/",
        data=exporter_form(
            name="Cheap or listed",
            format="csv",
            options="separator=tab\n\nbom=false",
            filters="price>=50\nreference in A1,A2",
            filter_match="any",
        ),
    )
    assert response.status_code == 302, errors_of(response)
    task = db.session.query(Task).one()
    assert (task.format, task.template, task.filter_match) == ("csv", None, "any")
    assert task.options["separator"] in ("tab", "\t") and task.options["bom"] in ("false", False)
    assert task.filters == [
        {"field": "price", "op": ">=", "value": "50"},
        {"field": "reference", "op": "in", "value": ["A1", "A2"]},
    ]
    # The edit form shows them back as typed.
    edit = panel.text(f"/admin/tasks/{task.id}/edit/")
    assert "separator=" in edit and "price >= 50" in edit and "reference in A1,A2" in edit
    assert re.search(r'value="any"[^>]*checked|checked[^>]*value="any"', edit)
    listed = panel.text("/admin/tasks/")
    assert "CSV" in listed and "selection" in listed


def test_a_predefined_template_implies_its_format_and_its_feed_runs(panel):
    response = panel.post(
        "/admin/tasks/new/", data=exporter_form(name="Shopify", template="shopify")
    )
    assert response.status_code == 302, errors_of(response)
    task = db.session.query(Task).one()
    assert (task.template, task.format) == ("shopify", "csv")
    assert "template shopify" in panel.text("/admin/tasks/")
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    feed = panel.get(tasks.feed_url(task).removeprefix("http://127.0.0.1:5000"))
    assert feed.status_code == 200 and feed.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(feed.data.decode("utf-8-sig"))))
    assert list(rows[0])[:2] == ["Title", "URL handle"] and "SKU" in rows[0]
    # Variants and extra images are rows of their product's handle.
    assert len({r["URL handle"] for r in rows}) == PRODUCTS


def test_a_saved_field_template_is_offered_and_used(panel):
    panel.post("/admin/field-templates/new/", data={
        "name": "basic", "entity": "products", "columns": json.dumps(COLUMNS)})  # fmt: skip
    assert "Your field templates" in panel.text("/admin/tasks/new/")
    response = panel.post(
        "/admin/tasks/new/", data=exporter_form(name="Mine", template="basic", format="csv")
    )
    assert response.status_code == 302, errors_of(response)
    task = db.session.query(Task).one()
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    rows = csv_rows(panel.get(f"/admin/runs/{run.id}/file").data)
    assert list(rows[0]) == ["SKU", "Price", "Brand"] and len(rows) == PRODUCTS
    assert {r["Brand"] for r in rows} == {"Acme"}


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"format": "csv", "options": "colour=blue"}, "options", "colour"),
        ({"format": "csv", "options": "separator"}, "options", "Line 1"),
        ({"filters": "price>=10\nflavour=sweet"}, "filters", "flavour"),
        ({"filters": "price>=10\nprice"}, "filters", "Line 2"),
        ({"filters": "price>=cheap"}, "filters", "cheap"),
        ({"template": "shopify", "format": "xml"}, "format", "csv"),
        ({"template": "no-such-template"}, "template", "no-such-template"),
        ({"template": "shopify", "entity": "orders"}, "entity", "shopify"),
    ],
)
def test_invalid_output_or_selection_shown_next_to_the_field(panel, fields, field, says):
    response = panel.post("/admin/tasks/new/", data=exporter_form(**fields))
    assert response.status_code == 200
    errors = errors_of(response)
    assert field in errors and says in errors[field], errors
    assert "Traceback" not in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.query(Task).count() == 0


def test_editing_keeps_nothing_of_an_invalid_change(panel):
    task = exporters.create_exporter("Kept", "products", "csv", options={"separator": ","})
    response = panel.post(
        f"/admin/tasks/{task.id}/edit/",
        data=exporter_form(name="Kept", format="csv", options="separator=;\nwidth=3"),
    )
    assert "width" in errors_of(response)["options"]
    db.session.expire_all()
    assert db.session.get(Task, task.id).options == {"separator": ","}


# ---------------------------------------------------------------------------- field templates


def test_field_template_create_preview_edit_download_delete(panel):
    page = panel.text("/admin/field-templates/")
    assert "No field template yet" in page
    form = panel.text("/admin/field-templates/new/")
    assert "columns-preview" in form and "reference" in form  # the example columns
    bad = panel.post("/admin/field-templates/new/", data={
        "name": "basic", "entity": "products", "columns": '[{"header": "SKU",'})  # fmt: skip
    assert errors_of(bad)["columns"].startswith("Not valid JSON")
    bad = panel.post("/admin/field-templates/new/", data={
        "name": "basic", "entity": "products",
        "columns": json.dumps([{"header": "SKU", "source": "referense"}])})  # fmt: skip
    assert "referense" in errors_of(bad)["columns"]
    assert db.session.query(FieldTemplate).count() == 0

    response = panel.post("/admin/field-templates/new/", data={
        "name": "basic", "entity": "products", "description": "SKU and price",
        "columns": json.dumps(COLUMNS)})  # fmt: skip
    assert response.status_code == 302, errors_of(response)
    listed = panel.text("/admin/field-templates/")
    assert "basic" in listed and "SKU, Price, Brand" in listed

    edit = panel.text("/admin/field-templates/basic/edit/")
    preview = edit[edit.index('id="columns-preview"') :]
    for text in ("SKU", "reference", "price(decimals=2)", "“Acme” (constant)"):
        assert text in preview, text
    changed = [*COLUMNS, {"header": "Name", "source": "name[en]",
                          "transforms": [{"op": "upper"}]}]  # fmt: skip
    response = panel.post("/admin/field-templates/basic/edit/", data={
        "name": "ignored", "entity": "products", "description": "",
        "columns": json.dumps(changed)})  # fmt: skip
    assert response.status_code == 302, errors_of(response)
    db.session.expire_all()
    saved = db.session.query(FieldTemplate).one()
    assert saved.name == "basic" and [c["header"] for c in saved.columns][-1] == "Name"

    download = panel.get("/admin/field-templates/basic/download")
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert 'attachment; filename="basic.json"' in download.headers["Content-Disposition"]
    document = json.loads(download.data)
    assert document["name"] == "basic" and len(document["columns"]) == 4

    assert "cannot be undone" in panel.text("/admin/field-templates/basic/delete/")
    assert db.session.query(FieldTemplate).count() == 1  # asking is not deleting
    panel.post("/admin/field-templates/basic/delete/")
    db.session.expire_all()
    assert db.session.query(FieldTemplate).count() == 0
    assert panel.get("/admin/field-templates/basic/edit/").status_code == 404

    # The downloaded file brings it back.
    upload = {"file": (io.BytesIO(download.data), "basic.json")}
    response = panel.post("/admin/field-templates/import/", data=upload)
    assert response.status_code == 302
    db.session.expire_all()
    assert [c["header"] for c in db.session.query(FieldTemplate).one().columns][0] == "SKU"
    again = panel.post("/admin/field-templates/import/",
                       data={"file": (io.BytesIO(download.data), "basic.json")})  # fmt: skip
    assert "Replace" in errors_of(again)["file"]
    replaced = panel.post("/admin/field-templates/import/",
                          data={"file": (io.BytesIO(download.data), "basic.json"),
                                "replace": "y"})  # fmt: skip
    assert replaced.status_code == 302


def test_field_template_import_refuses_bad_files(panel):
    for data, name, says in [
        (b"{not json", "t.json", "Not JSON"),
        (b'{"name": "x", "entity": "products", "columns": [], "colour": 1}', "t.json", "colour"),
        (b"<xml/>", "t.xml", ".json"),
    ]:
        response = panel.post(
            "/admin/field-templates/import/", data={"file": (io.BytesIO(data), name)}
        )
        assert response.status_code == 200
        assert says in errors_of(response)["file"], errors_of(response)
    assert db.session.query(FieldTemplate).count() == 0


def test_a_field_template_in_use_is_not_deleted(panel):
    panel.post("/admin/field-templates/new/", data={
        "name": "basic", "entity": "products", "columns": json.dumps(COLUMNS)})  # fmt: skip
    exporters.create_exporter("Uses it", "products", "csv", template="basic")
    response = panel.post("/admin/field-templates/basic/delete/", follow_redirects=True)
    page = unescape(response.get_data(as_text=True))
    assert "used by exporter" in page and "Uses it" in page
    assert db.session.query(FieldTemplate).count() == 1


# -------------------------------------------------------------------------------- stylesheets


def test_stylesheet_upload_good_and_bad_then_delete(panel):
    page = panel.text("/admin/stylesheets/")
    assert "native-to-csv" in page and "shipped" in page
    bad = panel.post("/admin/stylesheets/", data={
        "name": "broken", "file": (io.BytesIO(BROKEN_XSL), "broken.xsl")})  # fmt: skip
    assert bad.status_code == 200 and "file" in errors_of(bad)
    wrong = panel.post("/admin/stylesheets/", data={
        "name": "text", "file": (io.BytesIO(b"hello"), "notes.txt")})  # fmt: skip
    assert ".xsl" in errors_of(wrong)["file"]
    forged = panel.post("/admin/stylesheets/", token=False, data={
        "name": "forged", "file": (io.BytesIO(IDENTITY_XSL), "ids.xsl")})  # fmt: skip
    assert forged.status_code == 400  # an upload without its CSRF token is refused
    assert db.session.query(Stylesheet).count() == 0

    good = panel.post("/admin/stylesheets/", data={
        "name": "ids", "record_wise": "y",
        "file": (io.BytesIO(IDENTITY_XSL), "ids.xsl")})  # fmt: skip
    assert good.status_code == 302, errors_of(good)
    sheet = db.session.query(Stylesheet).one()
    assert sheet.name == "ids" and sheet.record_wise
    assert "ids" in panel.text("/admin/tasks/new/")  # offered to exporters

    assert "cannot be undone" in panel.text("/admin/stylesheets/ids/delete/")
    panel.post("/admin/stylesheets/ids/delete/")
    db.session.expire_all()
    assert db.session.query(Stylesheet).count() == 0
    assert panel.get("/admin/stylesheets/native-to-csv/delete/").status_code == 404


# ------------------------------------------------------------------------------ manual export


def test_small_manual_export_downloads_at_once(panel):
    page = panel.text("/admin/export/")
    assert "Manual export" in page and "1,000" in page
    response = panel.post("/admin/export/", data=manual_form(filters="price>=50"))
    assert response.status_code == 200, errors_of(response)
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert re.search(r"products-\d{8}-\d{4}\.csv", disposition)
    rows = csv_rows(response.data)
    expected = references(Product.price >= 50)
    assert expected and {r["reference"] for r in rows} == expected
    # A manual export is no recurring task, but the run history shows it.
    task = db.session.query(Task).one()
    assert task.kind == "manual" and task.next_run_at is None and task.schedule == "none"
    assert tasks.list_tasks() == []
    assert "No task yet" in panel.text("/admin/tasks/")
    assert re.search(r'id="count-tasks">0<', panel.text("/admin/"))
    assert "Manual export" in panel.text("/admin/runs/")
    assert "Manual export" in panel.text("/admin/export/")  # listed among recent ones


def test_large_manual_export_runs_in_the_background(panel, app):
    app.config["MANUAL_EXPORT_LIMIT"] = 10
    app.config["CHUNK_SIZE"] = 7
    # The selection decides, not the catalog: 5 products of 60 still download at once.
    small = panel.post("/admin/export/", data=manual_form(format="jsonl", filters="id<=5"))
    assert small.status_code == 200 and len(small.data.splitlines()) == 5
    response = panel.post("/admin/export/", data=manual_form(format="jsonl"))
    assert response.status_code == 302
    location = response.headers["Location"]
    run_id = int(re.fullmatch(r"/admin/runs/(\d+)/", location).group(1))
    assert db.session.query(Task).count() == 2
    page = panel.get(location, follow_redirects=True)
    assert "runs in the background" in unescape(page.get_data(as_text=True))
    run = jobs.wait(db.session.get(Run, run_id), timeout=60)
    assert run.status == "succeeded", run.error
    assert run.done == run.total == PRODUCTS
    details = panel.text(location)
    assert f"/admin/runs/{run_id}/file" in details and 'id="manual-export-file"' in details
    download = panel.get(f"/admin/runs/{run_id}/file")
    assert "attachment" in download.headers["Content-Disposition"]
    lines = [json.loads(line) for line in download.data.splitlines() if line.strip()]
    assert len(lines) == PRODUCTS


def test_a_failed_small_manual_export_says_why_without_a_stack_trace(panel):
    from impexmod.export import stylesheets

    stylesheets.save_stylesheet("stops", FAILING_XSL)
    response = panel.post("/admin/export/", data=manual_form(format="", stylesheet="stops"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = unescape(response.get_data(as_text=True))
    assert 'id="export-failed"' in page and "no stock data today" in page
    assert "Traceback" not in page
    run = db.session.query(Run).one()
    assert run.status == "failed" and f"/admin/runs/{run.id}/" in page


@pytest.mark.redis
def test_a_small_manual_export_through_an_rq_worker_still_downloads(panel, app):
    import redis

    from tests.integration.test_rq_worker import REDIS_URL, running_worker

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config.update(REDIS_URL=REDIS_URL, QUEUE_NAME=f"impexmod-test-{uuid.uuid4().hex[:8]}")
    try:
        with running_worker(app):
            response = panel.post("/admin/export/", data=manual_form(filters="id<=5"))
    finally:
        jobs.queue().empty()
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert len(csv_rows(response.data)) == 5
    assert db.session.query(Run).one().job_id  # it did go through the queue


def test_manual_export_errors_next_to_the_fields(panel):
    response = panel.post("/admin/export/", data=manual_form(options="colour=blue"))
    assert "colour" in errors_of(response)["options"]
    response = panel.post("/admin/export/", data=manual_form(filters="flavour=sweet"))
    assert "flavour" in errors_of(response)["filters"]
    db.session.rollback()
    assert db.session.query(Task).count() == 0


def test_old_manual_exports_are_purged(panel, app):
    from datetime import timedelta

    from impexmod.export import manual as manual_export
    from impexmod.models import now

    panel.post("/admin/export/", data=manual_form())
    old = db.session.query(Task).one()
    old.created_at = now() - timedelta(days=40)
    db.session.commit()
    panel.post("/admin/export/", data=manual_form(format="json"))
    db.session.expire_all()
    assert [t.format for t in db.session.query(Task)] == ["json"]
    assert manual_export.purge_expired(days=0) == 1
