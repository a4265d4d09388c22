"""Admin panel, issue 4 items 6 and 8: recurring importers through the form ("Add an HTTP
download", edit), the manual import of an uploaded file (dry-run preview, then the real import,
or cancel), and an import run's results and row errors (downloadable as CSV). The upload
tests with ``feed_store`` run on the local store and on S3 (moto's server on loopback, standing
in for S3/MinIO), where the upload is kept in the bucket for any worker to fetch."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from impexmod.dispatch import jobs, retention
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing import manual as manual_import
from impexmod.importing.definition import create_importer, describe_importer
from impexmod.models import (
    ImportDiff,
    ImportMapping,
    Language,
    Product,
    ProductLang,
    Run,
    StockAvailable,
    Task,
    now,
)
from impexmod.runs import tasks
from tests.integration.test_admin_auth import Panel, signed_in

ERRORS = re.compile(r'data-error-for="(\w+)">([^<]+)<')
STAGE = re.compile(r'id="upload-stage" data-stage="(\w+)"')
PRODUCTS = 6
STOCK_CSV = "reference;quantity\nREF-000;12\nREF-001;5\nREF-002;oops\nNOPE;3\nREF-003;40\n"
FEED = """<advancedimporter>
<product supplier-reference="N-1"><reference>NEW-1</reference><name>New one</name><price>9.5</price></product>
<product supplier-reference="N-2"><reference>NEW-2</reference><name>New two</name><price>=1+2</price></product>
</advancedimporter>"""  # noqa: E501


@pytest.fixture
def panel(app):
    """A client signed in as a merchant, on a small catalog: REF-000... with 5 in stock each."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    for i in range(PRODUCTS):
        product = Product(reference=f"REF-{i:03d}", price=10 + i)
        db.session.add(product)
        db.session.flush()
        db.session.add(
            ProductLang(id_product=product.id, id_lang=1, name=f"Shirt {i}", link_rewrite=f"p{i}")
        )
        db.session.add(StockAvailable(id_product=product.id, id_product_attribute=0, quantity=5))
    columns = {"SKU": "reference", "Qty": "quantity"}
    db.session.add(ImportMapping(name="supplier-stock", entity="stock", columns=columns))
    db.session.commit()
    return signed_in(app)


def errors_of(response) -> dict[str, str]:
    """The errors shown next to fields, by field name."""
    return dict(ERRORS.findall(unescape(response.get_data(as_text=True))))


def count(model) -> int:
    """Rows of a table, as committed (a fresh transaction)."""
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def quantities() -> dict[str, int]:
    """Stock by product reference, as committed."""
    db.session.rollback()
    rows = db.session.execute(
        select(Product.reference, StockAvailable.quantity).join(
            StockAvailable, StockAvailable.id_product == Product.id
        )
    )
    return dict(rows.all())


def importer_form(**fields) -> dict:
    """The importer form as a merchant fills it in."""
    return {"name": "Stock from shop A", "url": "https://shop-a.test/feeds/t/stock.xml",
            "entity": "stock", "format": "xml", "modes": ["create", "update"], "source": "",
            "mapping": "", "username": "", "password": "", "schedule": "none", "timezone": "",
            "notify_emails": "", "webhook_url": "", **fields}  # fmt: skip


def upload_form(content: str | bytes, name: str = "stock.csv", **fields) -> dict:
    """The upload form with a file."""
    data = content.encode() if isinstance(content, str) else content
    return {"file": (io.BytesIO(data), name), "entity": "", "format": "",
            "modes": ["create", "update"], "source": "", "mapping": "", **fields}  # fmt: skip


def upload(panel: Panel, content: str | bytes, name: str = "stock.csv", **fields) -> int:
    """Upload a file; the id of its upload (from the page it redirects to)."""
    response = panel.post("/admin/import/", data=upload_form(content, name, **fields))
    assert response.status_code == 302, errors_of(response)
    return int(re.fullmatch(r"/admin/import/(\d+)/", response.headers["Location"]).group(1))


def uploads_folder(app):
    """What the feed store keeps of uploads (the instance's uploads folder, or the bucket's)."""
    from impexmod.runs.feedstore import get_store

    return get_store().upload_keys()


# ------------------------------------------------------------------------ recurring importers


def test_add_an_http_download_saves_the_importer_as_entered(panel):
    page = panel.text("/admin/tasks/")
    assert "Add an HTTP download" in page and "Import a file" in page
    form = panel.text("/admin/tasks/importers/new/")
    for label in ("Name", "URL", "Entity", "Format", "Modes", "Source", "Column mapping",
                  "User", "Password", "Schedule", "Timezone", "Notify by e-mail"):  # fmt: skip
        assert f">{label}<" in form, label
    assert "supplier-stock (stock)" in form  # the saved mappings are offered
    assert 'id="upcoming-runs"' in form  # the next run times, as on the exporter form

    response = panel.post(
        "/admin/tasks/importers/new/",
        data=importer_form(
            modes=["create", "update", "delete"],
            source="Acme",
            format="csv",
            mapping="supplier-stock",
            username="shop",
            password="s3cret",
            schedule="daily@02:30",
            timezone="Europe/Paris",
            notify_emails="ops@shop.test",
        ),  # fmt: skip
    )
    assert response.status_code == 302, errors_of(response)
    task = db.session.query(Task).one()
    described = describe_importer(task)
    assert {
        k: described[k]
        for k in (
            "kind",
            "name",
            "url",
            "entity",
            "format",
            "modes",
            "source",
            "mapping",
            "username",
            "has_password",
            "schedule",
            "timezone",
        )
    } == {  # fmt: skip
        "kind": "import",
        "name": "Stock from shop A",
        "url": "https://shop-a.test/feeds/t/stock.xml",
        "entity": "stock",
        "format": "csv",
        "modes": "create,update,delete",
        "source": "supplier:Acme",
        "mapping": "supplier-stock",
        "username": "shop",
        "has_password": True,
        "schedule": "daily@02:30",
        "timezone": "Europe/Paris",
    }
    assert described["next_run_at"] is not None and task.notify_emails == "ops@shop.test"
    assert task.secrets == {"password": "s3cret"} and "password" not in task.options
    listed = panel.text("/admin/tasks/")
    assert "https://shop-a.test/feeds/t/stock.xml" in listed
    assert f"/admin/tasks/{task.id}/edit/" in listed  # importers have an Edit action now
    assert "s3cret" not in listed


@pytest.mark.parametrize(
    "fields, field, says",
    [
        ({"url": "ftp://shop-a.test/stock.xml"}, "url", "An http(s) URL or an absolute file"),
        ({"url": "stock.xml"}, "url", "An http(s) URL"),
        ({"url": "https://"}, "url", "An http(s) URL"),
        # The panel never reads a file of the server (the command line may).
        ({"url": "/etc/passwd"}, "url", "An http(s) URL: importing a file on the server"),
        ({"name": "  "}, "name", "A name of 1 to 128"),
        ({"modes": ["delete", "disable"]}, "modes", "Delete and disable are mutually exclusive"),
        ({"modes": []}, "modes", "Choose among create, update"),
        ({"modes": ["create", "explode"]}, "modes", "Choose among"),
        ({"entity": "planets"}, "entity", "Choose one of products"),
        ({"format": "pdf"}, "format", "Choose one of xml, csv"),
        ({"mapping": "nobody"}, "mapping", "No saved mapping is named 'nobody'"),
        ({"entity": "products", "mapping": "supplier-stock"}, "mapping", "maps stock columns"),
        ({"schedule": "every tuesday"}, "schedule", ""),
        ({"timezone": "Mars/Olympus"}, "timezone", ""),
        ({"webhook_url": "ftp://hooks"}, "webhook_url", "A webhook URL starts with"),
    ],
)
def test_an_invalid_importer_shows_the_error_on_its_field_and_saves_nothing(
    panel, fields, field, says
):
    response = panel.post("/admin/tasks/importers/new/", data=importer_form(**fields))
    assert response.status_code == 200
    errors = errors_of(response)
    assert list(errors) == [field], errors
    assert errors[field].startswith(says) or says in errors[field], errors
    assert "nothing was saved" in response.get_data(as_text=True)
    assert count(Task) == 0


def test_an_importer_of_a_server_file_keeps_its_path_when_edited_but_takes_no_other(panel):
    task = create_importer("Local", "/srv/feeds/stock.xml", "stock", "xml", "create,update")
    data = importer_form(name="Local stock", url="/srv/feeds/stock.xml")
    assert panel.post(f"/admin/tasks/{task.id}/edit/", data=data).status_code == 302
    db.session.expire_all()
    assert db.session.get(Task, task.id).name == "Local stock"
    response = panel.post(f"/admin/tasks/{task.id}/edit/", data=importer_form(url="/etc/passwd"))
    assert list(errors_of(response)) == ["url"]
    db.session.expire_all()
    assert db.session.get(Task, task.id).options["url"] == "/srv/feeds/stock.xml"


def test_editing_an_importer_keeps_the_password_when_left_blank(panel):
    task = create_importer("Supplier", "https://supplier.test/stock.xml", "stock", "xml",
                           "create,update", "Acme", "shop", "s3cret")  # fmt: skip
    form = panel.text(f"/admin/tasks/{task.id}/edit/")
    assert 'value="https://supplier.test/stock.xml"' in form and 'value="shop"' in form
    assert "s3cret" not in form and "Stored: leave blank to keep it" in form
    assert re.search(r'value="update"[^>]*checked|checked[^>]*value="update"', form)
    assert not re.search(r'value="delete"[^>]*checked|checked[^>]*value="delete"', form)

    edited = importer_form(name="Supplier stock", url="https://supplier.test/v2/stock.xml",
                           source="supplier:Acme", username="shop", password="")  # fmt: skip
    response = panel.post(f"/admin/tasks/{task.id}/edit/", data=edited)
    assert response.status_code == 302, errors_of(response)
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.name == "Supplier stock"
    assert task.options["url"] == "https://supplier.test/v2/stock.xml"
    assert task.secrets["password"] == "s3cret"  # blank: kept

    panel.post(f"/admin/tasks/{task.id}/edit/", data={**edited, "password": "n3w"})
    db.session.expire_all()
    assert db.session.get(Task, task.id).secrets["password"] == "n3w"

    bad = panel.post(f"/admin/tasks/{task.id}/edit/", data={**edited, "url": "gopher://x"})
    assert "url" in errors_of(bad)
    db.session.expire_all()
    assert db.session.get(Task, task.id).options["url"] == "https://supplier.test/v2/stock.xml"

    panel.post(f"/admin/tasks/{task.id}/edit/", data={**edited, "username": ""})
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.options["username"] is None and task.secrets is None  # no user: no credentials


def test_cli_importer_edit_changes_only_what_it_is_given(panel, runner):
    task = create_importer("Supplier", "https://supplier.test/stock.xml", "stock", "xml",
                           "create,update", "Acme", "shop", "s3cret")  # fmt: skip
    result = runner.invoke(args=["importer", "edit", str(task.id), "--mode", "update",
                                 "--schedule", "daily@04:00"])  # fmt: skip
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.options["modes"] == "update" and task.schedule == "daily@04:00"
    assert task.secrets["password"] == "s3cret" and task.options["source"] == "supplier:Acme"
    bad = runner.invoke(args=["importer", "edit", str(task.id), "--mode", "delete,disable"])
    assert bad.exit_code == 2 and "mutually exclusive" in bad.output


def test_an_importer_run_shows_its_results_and_errors_with_a_csv(panel, tmp_path):
    feed = tmp_path / "supplier.xml"
    feed.write_text(FEED)
    # A file of the server: saved as the command line saves it (the panel takes URLs only).
    task = create_importer("Supplier file", str(feed))
    panel.post(f"/admin/tasks/{task.id}/run/")
    run = jobs.wait(db.session.query(Run).one(), timeout=60)
    assert run.status == "succeeded", run.error
    page = panel.text(f"/admin/runs/{run.id}/")
    assert 'id="import-results"' in page and 'data-entity="product"' in page
    assert re.search(r'data-count="created">1<', page)
    assert "1 error," in page and "/product[2]/price" in page
    assert f"/admin/runs/{run.id}/errors.csv" in page
    download = panel.get(f"/admin/runs/{run.id}/errors.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    disposition = download.headers["Content-Disposition"]
    assert disposition == f"attachment; filename=run-{run.id}-errors.csv"
    assert download.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert [(r["file"], r["line"], r["path"], r["field"]) for r in rows] == [
        ("supplier.xml", "3", "/advancedimporter/product[2]/price", "price")
    ]
    # The reason quotes the input: a spreadsheet must not run it as a formula.
    assert "=1+2" in rows[0]["reason"] and not rows[0]["reason"].startswith("=")


# ----------------------------------------------------------------------------- manual import


def test_an_upload_is_dry_run_first_and_writes_nothing(panel, app, feed_store):
    before = quantities()
    task_id = upload(panel, STOCK_CSV)
    assert quantities() == before  # the dry run wrote nothing
    page = panel.text(f"/admin/import/{task_id}/")
    assert STAGE.search(page).group(1) == "previewed"
    assert "Dry run: nothing was written." in page
    assert 'data-file="stock.csv" data-entity="stock"' in page
    assert re.search(r'data-count="updated">2<', page)  # REF-000 and REF-003
    assert re.search(r'data-count="unchanged">1<', page)  # REF-001 already has 5
    assert re.search(r'data-count="errors">2<', page)
    assert 'data-diffs-for="stock"' in page and "quantity</code>: 5 → 12" in page
    assert "quantity</code>: 5 → 40" in page
    assert "'oops' is not a whole number" in page and "unknown combination" in page
    assert "2 errors, 0 warnings" in page and 'id="run-import"' in page

    # Stored under a random name of its own, never under the client's file name.
    stored = uploads_folder(app)
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{32}\.csv", stored[0])
    task = db.session.get(Task, task_id)
    assert task.kind == "upload" and task.next_run_at is None and tasks.list_tasks() == []
    assert "No task yet" in panel.text("/admin/tasks/")
    run = db.session.query(Run).one()
    assert run.strategy == "dry run" and count(ImportDiff) == 2
    assert "Dry run" in panel.text("/admin/import/")  # among the recent imports


def test_run_the_import_writes_the_same_file_with_the_same_options(panel):
    task_id = upload(panel, STOCK_CSV)
    response = panel.post(f"/admin/import/{task_id}/run/")
    assert response.headers["Location"] == f"/admin/import/{task_id}/"
    after = quantities()
    assert (after["REF-000"], after["REF-001"], after["REF-002"], after["REF-003"]) == (
        12, 5, 5, 40,
    )  # fmt: skip
    page = panel.text(f"/admin/import/{task_id}/")
    assert STAGE.search(page).group(1) == "imported"
    assert 'id="run-import"' not in page and 'id="cancel-import"' not in page
    runs = db.session.query(Run).order_by(Run.id).all()
    assert [r.strategy for r in runs] == ["dry run", "import"]
    assert re.search(r'data-count="updated">2<', page)
    assert f"/admin/runs/{runs[1].id}/errors.csv" in page
    # Once imported, it is not imported again, nor cancelled.
    again = panel.post(f"/admin/import/{task_id}/run/", follow_redirects=True)
    assert "this file was imported already" in unescape(again.get_data(as_text=True))
    panel.post(f"/admin/import/{task_id}/cancel/")
    assert count(Run) == 2 and manual_import.get(task_id) is not None


def test_a_products_upload_creates_nothing_until_run(panel, feed_store):
    task_id = upload(panel, FEED, "supplier.xml", modes=["create"])
    assert count(Product) == PRODUCTS
    page = panel.text(f"/admin/import/{task_id}/")
    assert re.search(r'data-count="created">1<', page)
    assert 'data-diffs-for="product"' in page and "product 'N-1' of supplier:default" in page
    assert "reference</code>: NEW-1" in page and "price</code>: 9.5" in page
    errors_csv = panel.get(f"/admin/runs/{db.session.query(Run).one().id}/errors.csv")
    assert b"/advancedimporter/product[2]/price" in errors_csv.data
    panel.post(f"/admin/import/{task_id}/run/")
    assert count(Product) == PRODUCTS + 1
    assert db.session.query(Product).filter_by(reference="NEW-1").one().price == 9.5


def test_an_upload_with_a_saved_mapping(panel):
    task_id = upload(panel, "SKU;Qty\nREF-004;77\n", "levels.csv", entity="stock",
                     mapping="supplier-stock")  # fmt: skip
    assert "quantity</code>: 5 → 77" in panel.text(f"/admin/import/{task_id}/")
    panel.post(f"/admin/import/{task_id}/run/")
    assert quantities()["REF-004"] == 77


def test_delete_absent_on_a_partial_input_is_refused_as_the_service_says(panel):
    partial = ('<advancedimporter strategy="incremental" window-from="3" window-to="9">'
               '<product supplier-reference="N-1"><reference>NEW-1</reference><name>New</name>'
               "</product>"
               "</advancedimporter>")  # fmt: skip
    task_id = upload(panel, partial, "delta.xml", modes=["create", "update", "delete"])
    page = panel.text(f"/admin/import/{task_id}/")
    assert 'data-field="refusal"' in page
    assert "delete-absent refused: the input is partial (an incremental feed" in page
    assert re.search(r'data-count="deleted">0<', page)
    panel.post(f"/admin/import/{task_id}/run/")
    assert count(Product) == PRODUCTS + 1  # created, and nothing deleted


@pytest.mark.parametrize(
    "name, content, fields, field, says",
    [
        (
            "stock.txt",
            STOCK_CSV,
            {},
            "file",
            "Only .xml, .csv, .xlsx and .zip files can be imported, not “stock.txt”",
        ),
        (
            "../../etc/stock",
            STOCK_CSV,
            {},
            "file",
            "Only .xml, .csv, .xlsx and .zip files can be imported, not “stock”",
        ),
        ("stock.csv", "x" * 200, {}, "file", "“stock.csv” is over the import limit of 100 bytes"),
        ("stock.csv", STOCK_CSV, {"modes": ["delete", "disable"]}, "modes", "Delete and"),
        ("stock.csv", STOCK_CSV, {"modes": []}, "modes", "Choose among"),
        ("stock.csv", STOCK_CSV, {"mapping": "nobody"}, "mapping", "No saved mapping"),
    ],
)
def test_a_refused_upload_says_why_and_keeps_nothing(panel, app, name, content, fields, field,
                                                     says):  # fmt: skip
    app.config["IMPORT_MAX_BYTES"] = 100
    response = panel.post("/admin/import/", data=upload_form(content, name, **fields))
    assert response.status_code == 200
    errors = errors_of(response)
    assert list(errors) == [field] and errors[field].startswith(says), errors
    assert count(Task) == 0 and count(Run) == 0
    assert uploads_folder(app) == []


def test_an_upload_without_a_file_is_refused(panel):
    response = panel.post("/admin/import/", data={"entity": "", "modes": ["create"]})
    assert errors_of(response) == {"file": "Choose the file to import."}
    assert count(Task) == 0


def test_a_refused_file_shows_why_and_can_only_be_cancelled(panel, app):
    task_id = upload(panel, "<advancedimporter><product>", "broken.xml")
    page = panel.text(f"/admin/import/{task_id}/")
    assert STAGE.search(page).group(1) == "refused" and "broken.xml" in page
    assert "Traceback" not in page and 'id="run-import"' not in page
    refused = panel.post(f"/admin/import/{task_id}/run/", follow_redirects=True)
    assert "the dry run refused the file" in unescape(refused.get_data(as_text=True))
    assert count(Run) == 1
    response = panel.post(f"/admin/import/{task_id}/cancel/")
    assert response.headers["Location"] == "/admin/import/"
    assert count(Task) == 0 and count(Run) == 0 and uploads_folder(app) == []


def test_cancel_deletes_the_upload_and_its_file(panel, app, feed_store):
    task_id = upload(panel, STOCK_CSV)
    assert len(uploads_folder(app)) == 1
    response = panel.post(f"/admin/import/{task_id}/cancel/", follow_redirects=True)
    assert "cancelled: the uploaded file was deleted" in unescape(response.get_data(as_text=True))
    assert uploads_folder(app) == [] and count(Task) == 0 and count(Run) == 0
    assert panel.get(f"/admin/import/{task_id}/").status_code == 404
    assert quantities()["REF-000"] == 5


def test_a_large_upload_runs_in_the_background(panel, app, feed_store):
    app.config["MANUAL_IMPORT_WAIT_BYTES"] = 10
    task_id = upload(panel, STOCK_CSV)
    jobs.wait(db.session.query(Run).one(), timeout=60)
    page = panel.text(f"/admin/import/{task_id}/")
    assert STAGE.search(page).group(1) == "previewed"
    panel.post(f"/admin/import/{task_id}/run/")
    run = db.session.query(Run).order_by(Run.id.desc()).first()
    run = jobs.wait(run, timeout=60)
    assert run.status == "succeeded" and run.strategy == "import"
    assert quantities()["REF-000"] == 12
    assert STAGE.search(panel.text(f"/admin/import/{task_id}/")).group(1) == "imported"


def test_unknown_or_tampered_upload_ids_are_404(panel):
    exporter = exporters.create_exporter("Products", "products")
    exported = jobs.start_run(exporter, inline=True)
    task_id = upload(panel, STOCK_CSV)
    for path in ("/admin/import/999/", f"/admin/import/{exporter.id}/", "/admin/import/abc/",
                 f"/admin/import/{task_id}x/", f"/admin/runs/{exported.id}/errors.csv",
                 "/admin/runs/999/errors.csv"):  # fmt: skip
        assert panel.get(path).status_code == 404, path
    for path in (f"/admin/import/{exporter.id}/run/", "/admin/import/999/cancel/"):
        assert panel.post(path).status_code == 404, path
    # An upload is no recurring task: the task pages do not take it.
    assert panel.post(f"/admin/tasks/{task_id}/run/").status_code == 404
    assert panel.get(f"/admin/tasks/{task_id}/edit/").status_code == 404
    assert count(Run) == 2


def test_anonymous_visitors_go_to_the_login_page_and_forms_need_their_token(panel, app):
    task_id = upload(panel, STOCK_CSV)
    anonymous = Panel(app)
    for path in ("/admin/import/", f"/admin/import/{task_id}/", "/admin/tasks/importers/new/",
                 "/admin/runs/1/errors.csv"):  # fmt: skip
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login/?next=")
    assert anonymous.post(f"/admin/import/{task_id}/run/", token=False).status_code == 400
    for path, data in (
        ("/admin/import/", upload_form(STOCK_CSV)),
        (f"/admin/import/{task_id}/run/", {}),
        (f"/admin/import/{task_id}/cancel/", {}),
        ("/admin/tasks/importers/new/", importer_form()),
    ):
        response = panel.post(path, data=data, token=False)
        assert response.status_code == 400 and "Form refused" in response.get_data(as_text=True)
    assert count(Task) == 1 and count(Run) == 1 and quantities()["REF-000"] == 5


def test_uploads_past_retention_are_deleted_with_their_files(panel, app, feed_store):
    task = db.session.get(Task, upload(panel, STOCK_CSV))
    task.created_at = now() - timedelta(days=40)
    db.session.commit()
    recent = upload(panel, STOCK_CSV)  # starting one purges the expired ones
    db.session.expire_all()
    assert [t.id for t in db.session.query(Task)] == [recent]
    assert len(uploads_folder(app)) == 1
    report = retention.purge_run_files(days=0)  # and so does the daily retention pass
    assert report.removed_uploads == 1 and count(Task) == 0 and count(Run) == 0
    assert uploads_folder(app) == [] and "1 uploaded file(s)" in str(report)


@pytest.mark.redis
def test_an_upload_through_an_rq_worker(panel, app):
    import uuid

    import redis

    from tests.integration.test_rq_worker import REDIS_URL, running_worker

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config.update(REDIS_URL=REDIS_URL, QUEUE_NAME=f"impexmod-test-{uuid.uuid4().hex[:8]}")
    try:
        with running_worker(app):
            task_id = upload(panel, STOCK_CSV)  # small: the request waits for the worker
            assert STAGE.search(panel.text(f"/admin/import/{task_id}/")).group(1) == "previewed"
            assert quantities()["REF-000"] == 5
            panel.post(f"/admin/import/{task_id}/run/")
    finally:
        jobs.queue().empty()
    assert all(run.job_id for run in db.session.query(Run))  # both went through the queue
    assert quantities()["REF-000"] == 12
