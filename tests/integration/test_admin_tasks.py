"""Admin panel: recurring tasks, exporter form, confirmation, runs, progress, files, preview."""

from __future__ import annotations

import re
from html import unescape

import pytest

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing.definition import create_importer
from impexmod.models import Language, Product, ProductLang, Run, Task
from impexmod.runs import tasks
from tests.integration.test_admin_auth import signed_in
from tests.support import parse_feed

FEED_URL = re.compile(r'id="feed-url" value="([^"]+)"')
ERRORS = re.compile(r'data-error-for="(\w+)">([^<]+)<')


@pytest.fixture
def panel(app):
    """A client signed in as a merchant."""
    return signed_in(app)


@pytest.fixture
def catalog(app):
    """A few products with English names."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    for i in range(45):
        product = Product(reference=f"REF-{i:03d}", price=10 + i)
        db.session.add(product)
        db.session.flush()
        db.session.add(
            ProductLang(id_product=product.id, id_lang=1, name=f"Shirt {i}", link_rewrite=f"p{i}")
        )
    db.session.commit()
    app.config["CHUNK_SIZE"] = 10


def exporter_form(**fields) -> dict:
    """The exporter form as a merchant fills it in."""
    return {"name": "Products for shop B", "entity": "products", "format": "xml",
            "strategy": "full", "schedule": "none", "timezone": "", **fields}  # fmt: skip


def test_recurring_tasks_lists_every_task_with_its_last_and_next_run(panel, catalog):
    manual = exporters.create_exporter("Manual products", "products")
    jobs.start_run(manual, inline=True)
    exporters.create_exporter(
        "Nightly stock", "stock", "xml", "incremental", schedule="daily@02:30"
    )
    create_importer("Supplier stock", "https://supplier.test/stock.xml", "stock", "xml")
    page = unescape(panel.get("/admin/tasks/").get_data(as_text=True))
    for text in ("Manual products", "Nightly stock", "Supplier stock", "Exporter", "Importer",
                 "incremental", "daily@02:30", "Europe/Paris", "succeeded", "45 entities",
                 "Add an exporter", "Run now", "Rotate the feed URL"):  # fmt: skip
        assert text in page, text
    assert "manual" in page  # the schedule of a task without one
    assert "never" in page  # tasks that never ran


def test_invalid_exporter_shows_errors_next_to_the_fields_and_saves_nothing(panel):
    response = panel.post("/admin/tasks/new/", data=exporter_form(name=""))
    assert response.status_code == 200
    assert ERRORS.findall(response.get_data(as_text=True)) == [("name", "A name is required")]
    response = panel.post("/admin/tasks/new/", data=exporter_form(entity="planets"))
    errors = dict(ERRORS.findall(unescape(response.get_data(as_text=True))))
    assert errors["entity"].startswith("Choose one of products")
    response = panel.post("/admin/tasks/new/", data=exporter_form(schedule="every tuesday"))
    assert "schedule" in dict(ERRORS.findall(response.get_data(as_text=True)))
    response = panel.post("/admin/tasks/new/", data=exporter_form(webhook_url="ftp://x"))
    assert "webhook_url" in dict(ERRORS.findall(response.get_data(as_text=True)))
    db.session.rollback()
    assert db.session.query(Task).count() == 0


def test_saving_shows_the_feed_url_which_is_404_until_the_first_run(panel, catalog):
    response = panel.post("/admin/tasks/new/", data=exporter_form())
    assert response.status_code == 302
    page = panel.get(response.headers["Location"]).get_data(as_text=True)
    url = unescape(FEED_URL.search(page).group(1))
    task = db.session.query(Task).one()
    assert url == tasks.feed_url(task)
    assert "404" in page and "until the exporter has run once" in page
    assert 'id="copy-url"' in page and "readonly" in page
    path = url.removeprefix("http://127.0.0.1:5000")
    assert panel.get(path).status_code == 404

    response = panel.post(f"/admin/tasks/{task.id}/run/")
    assert response.headers["Location"] == f"/admin/runs/?task={task.id}"
    run = jobs.wait(db.session.query(Run).one(), timeout=60)
    assert run.status == "succeeded", run.error
    feed = panel.get(path)
    assert feed.status_code == 200
    assert len(parse_feed(feed.data).findall("product")) == 45


def test_run_now_on_a_busy_task_says_so(panel, catalog):
    task = exporters.create_exporter("Busy", "products")
    # Hold the task as a worker would, without running it.
    run = Run(task_id=task.id, status="running", trigger="manual")
    db.session.add(run)
    db.session.flush()
    task.lock_run_id = run.id
    db.session.commit()
    response = panel.post(f"/admin/tasks/{task.id}/run/", follow_redirects=True)
    assert "is already running" in unescape(response.get_data(as_text=True))
    assert db.session.query(Run).count() == 1


def test_edit_an_exporter(panel, catalog):
    task = exporters.create_exporter("Old name", "products")
    form = panel.get(f"/admin/tasks/{task.id}/edit/").get_data(as_text=True)
    assert 'value="Old name"' in form
    bad = panel.post(f"/admin/tasks/{task.id}/edit/", data=exporter_form(name=" "))
    assert "A name is required" in bad.get_data(as_text=True)
    response = panel.post(
        f"/admin/tasks/{task.id}/edit/",
        data=exporter_form(name="New name", strategy="incremental", schedule="daily@03:00"),
    )
    assert response.status_code == 302
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert (task.name, task.strategy, task.schedule) == ("New name", "incremental", "daily@03:00")
    assert task.next_run_at is not None


def test_rotate_token_asks_first_then_shows_the_new_url_and_kills_the_old(panel, catalog):
    task = exporters.create_exporter("Rotated", "products")
    jobs.start_run(task, inline=True)
    old = tasks.feed_url(task).removeprefix("http://127.0.0.1:5000")
    assert panel.get(old).status_code == 200
    confirm = panel.get(f"/admin/tasks/{task.id}/rotate/").get_data(as_text=True)
    assert "stops working" in confirm
    assert panel.get(old).status_code == 200  # asking is not rotating
    response = panel.post(f"/admin/tasks/{task.id}/rotate/", follow_redirects=True)
    page = response.get_data(as_text=True)
    new = unescape(FEED_URL.search(page).group(1)).removeprefix("http://127.0.0.1:5000")
    assert "previous URL no longer works" in page
    assert new != old
    assert panel.get(old).status_code == 404
    assert panel.get(new).status_code == 200


def test_delete_asks_first(panel, catalog):
    task_id = exporters.create_exporter("Doomed", "products").id
    assert "cannot be undone" in panel.get(f"/admin/tasks/{task_id}/delete/").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Task, task_id) is not None
    response = panel.post(f"/admin/tasks/{task_id}/delete/", follow_redirects=True)
    assert "deleted" in unescape(response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Task, task_id) is None
    assert panel.get(f"/admin/tasks/{task_id}/edit/").status_code == 404


def test_runs_page_progress_json_and_file(panel, catalog):
    task = exporters.create_exporter("Products", "products")
    run = jobs.start_run(task, inline=True)
    page = panel.get(f"/admin/runs/?task={task.id}").get_data(as_text=True)
    assert f'data-run-id="{run.id}"' in page and "succeeded" in page
    assert f"/admin/runs/{run.id}/file" in page
    progress = panel.get(f"/admin/runs/progress?ids={run.id},x,").get_json()
    (state,) = progress["runs"]
    assert state["status"] == "succeeded" and not state["active"]
    assert state["done"] == state["total"] == 45 and state["percent"] == 100
    assert state["file_url"] == f"/admin/runs/{run.id}/file"
    download = panel.get(state["file_url"])
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert len(parse_feed(download.data).findall("product")) == 45
    details = panel.get(f"/admin/runs/{run.id}/").get_data(as_text=True)
    assert "Published run-" in details and "Log" in details
    assert panel.get("/admin/runs/9999/").status_code == 404
    assert panel.get("/admin/runs/9999/file").status_code == 404


def test_a_failed_run_shows_its_error_without_a_stack_trace(panel, catalog):
    task = exporters.create_exporter("Broken", "products")
    run = Run(task_id=task.id, status="failed", trigger="manual",
              error="OperationalError: the database went away")  # fmt: skip
    db.session.add(run)
    db.session.commit()
    page = panel.get("/admin/runs/?status=failed").get_data(as_text=True)
    assert "the database went away" in page and "Traceback" not in page
    dashboard = panel.get("/admin/").get_data(as_text=True)
    assert "Failed runs in the last 7 days" in dashboard and "the database went away" in dashboard


def test_preview_shows_the_first_entities_pretty_printed(panel, catalog):
    task = exporters.create_exporter("Preview", "products")
    before = panel.get(f"/admin/tasks/{task.id}/preview/").get_data(as_text=True)
    assert "has not produced a feed yet" in before
    jobs.start_run(task, inline=True)
    page = unescape(panel.get(f"/admin/tasks/{task.id}/preview/").get_data(as_text=True))
    entities = re.findall(r'<pre class="entity">(.*?)</pre>', page, re.S)
    assert len(entities) == 10
    assert entities[0].startswith("<product") and "\n  <" in entities[0]
    assert "REF-000" in entities[0] and "REF-009" in entities[9]
    assert "the feed holds more" in page


def test_dashboard_counts(panel, catalog):
    page = panel.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="count-products">45<', page)
    assert re.search(r'id="count-orders">0<', page)
    assert "No runs yet." in page


def test_pages_of_unknown_tasks_are_404_pages_not_stack_traces(panel):
    response = panel.get("/admin/tasks/999/edit/")
    assert response.status_code == 404
    assert "This page does not exist" in response.get_data(as_text=True)
