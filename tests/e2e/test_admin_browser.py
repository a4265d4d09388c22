"""The admin panel in a real browser (Playwright driving Debian's Chromium, headless).

A merchant signs in, adds an exporter through the form, reads the feed URL from the
confirmation (404 until the first run), presses "Run now", watches the progress bar reach the
end without reloading, gets the feed, rotates the token and sees the old URL die. Then a
Shopify exporter with a selection serves its CSV feed, a manual export downloads its file and
a field template is written and previewed. An importer of this shop's own stock feed is added
through its form and run; a CSV of stock changes is uploaded, previewed by its dry run and
imported. The pages it walks through are saved as screenshots (the README shows them, from
docs/screenshots/ when IMPEXMOD_SCREENSHOT_DIR points there).

Every test runs twice: with an English browser, and with a French one (Accept-Language fr-FR),
whose screenshots go to the fr/ subfolder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
import requests

from impexmod.admin import users
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import Combination, Product, StockAvailable
from impexmod.runs import tasks
from tests.support import live_server, parse_feed

# The README's screenshots are refreshed on purpose, not by every run of the suite:
# IMPEXMOD_SCREENSHOT_DIR=docs/screenshots pytest tests/e2e/test_admin_browser.py
SCREENSHOTS = Path(
    os.environ.get("IMPEXMOD_SCREENSHOT_DIR")
    or Path(tempfile.gettempdir()) / f"impexmod-screenshots-{os.getpid()}"
)
EMAIL, PASSWORD = "merchant@shop.test", "browser test password"
PRODUCTS = 2000  # with chunks of 20, a run takes long enough for its progress to be seen

pytestmark = pytest.mark.needs("chromium")

# What the tests read or click, in each language of the panel.
WORDS = {
    "en": {
        "locale": "en-GB",
        "Recurring tasks": "Recurring tasks",
        "Manual export": "Manual export",
        "Field templates": "Field templates",
        "Import a file": "Import a file",
        "Name": "Name",
        "Entity": "Entity",
        "Format": "Format",
        "Strategy": "Strategy",
        "Schedule": "Schedule",
        "Template": "Template",
        "Selection": "Selection",
        "Options": "Options",
        "Description": "Description",
        "Columns": "Columns",
        "URL": "URL",
        "E-mail": "E-mail",
        "answers 404": "answers 404",
        "Preview": "Preview",
        "Edit": "Edit",
        "Rotate the feed URL": "Rotate the feed URL",
        "stops working": "stops working",
        "A name is required": "A name is required",
        "Please correct": "Please correct",
        "No task yet": "No task yet",
        "Form refused": "Form refused",
        "template shopify": "template shopify",
        "constant": "“new” (constant)",
        "Create new entries": "Create new entries",
        "Update existing entries": "Update existing entries",
        "Delete absent": "Delete the entries the input no longer holds",
        "Next runs:": "Next runs:",
        "nothing was written": "nothing was written",
    },
    "fr": {
        "locale": "fr-FR",
        "Recurring tasks": "Tâche récurrente",  # the menu, as the French documentation says
        "Manual export": "Export manuel",
        "Field templates": "Modèles de champs",
        "Import a file": "Importer un fichier",
        "Name": "Nom",
        "Entity": "Entité",
        "Format": "Format",
        "Strategy": "Stratégie",
        "Schedule": "Planification",
        "Template": "Modèle",
        "Selection": "Sélection",
        "Options": "Options",
        "Description": "Description",
        "Columns": "Colonnes",
        "URL": "URL",
        "E-mail": "E-mail",
        "answers 404": "répond 404",
        "Preview": "Aperçu",
        "Edit": "Modifier",
        "Rotate the feed URL": "Renouveler l’URL du flux",
        "stops working": "cesse de fonctionner",
        "A name is required": "Un nom est requis",
        "Please correct": "Corrigez les champs",
        "No task yet": "Aucune tâche pour l’instant",
        "Form refused": "Formulaire refusé",
        "template shopify": "modèle shopify",
        "constant": "“new” (constante)",
        "Create new entries": "Créer les nouvelles entrées",
        "Update existing entries": "Mettre à jour les entrées existantes",
        "Delete absent": "Supprimer les entrées que l’entrée ne contient plus",
        "Next runs:": "Prochaines exécutions :",
        "nothing was written": "rien n’a été écrit",
    },
}
STATUS = "[data-field='status']"
SUCCEEDED = (
    "document.querySelector(\"#runs tbody tr [data-field='status']\").dataset.status"
    " === 'succeeded'"
)


@pytest.fixture
def shop(app):
    """A served shop with a demo catalog and a merchant account; yields its base URL."""
    seed_catalog(db.engine, PRODUCTS, seed=1)
    users.create_user(EMAIL, PASSWORD)
    app.config.update(CHUNK_SIZE=20, ADMIN_POLL_MS=200)
    with live_server(app) as base:
        app.config["PUBLIC_URL"] = base
        yield base


@pytest.fixture(params=list(WORDS))
def lang(request) -> str:
    """The language of the browser (its Accept-Language): each test runs in both."""
    return request.param


@pytest.fixture
def w(lang) -> dict[str, str]:
    """The panel's words in the browser's language."""
    return WORDS[lang]


_LANGUAGE_OF: dict[int, str] = {}


@pytest.fixture
def page(browser, shop, lang):
    """A fresh browser tab (its own cookies) on a laptop-sized screen, in ``lang``."""
    context = browser.new_context(
        viewport={"width": 1366, "height": 860}, base_url=shop, locale=WORDS[lang]["locale"]
    )
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    _LANGUAGE_OF[id(tab)] = lang
    yield tab
    _LANGUAGE_OF.pop(id(tab), None)
    context.close()


def shot(page, name: str, full_page: bool = True) -> None:
    """Save a screenshot of the page (the whole page, or what the screen shows); French ones
    go to the fr/ subfolder."""
    lang = _LANGUAGE_OF.get(id(page), "en")
    folder = SCREENSHOTS if lang == "en" else SCREENSHOTS / lang
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


def sign_in(page) -> None:
    """Sign in through the login form."""
    page.goto("/admin/")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url("**/admin/")


def progress_of(page) -> dict:
    """The progress bar of the newest run, as the page shows it now."""
    return page.eval_on_selector(
        "#runs tbody tr:first-child",
        """row => {
            const bar = row.querySelector('.progress-bar');
            return {
                done: bar ? Number(bar.getAttribute('aria-valuenow')) : null,
                total: bar ? Number(bar.getAttribute('aria-valuemax')) : null,
                status: row.querySelector("[data-field='status']").dataset.status,
                text: (row.querySelector("[data-field='progress-text']") || {}).textContent,
            };
        }""",
    )


def test_exporter_from_form_to_feed_to_rotated_url(page, shop, w):
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    shot(page, "login")
    sign_in(page)

    page.click("text=Advanced Importer")
    page.click(f"a.dropdown-item:has-text('{w['Recurring tasks']}')")
    page.click("#add-exporter")
    for label in ("Name", "Entity", "Format", "Strategy"):
        assert page.get_by_label(w[label], exact=True).is_visible()
    page.get_by_label(w["Name"], exact=True).fill("Products for shop B")
    page.get_by_label(w["Entity"], exact=True).select_option("products")
    page.get_by_label(w["Format"], exact=True).select_option("xml")
    page.get_by_label(w["Strategy"], exact=True).select_option("full")
    shot(page, "exporter-form")
    page.click("#save")

    page.wait_for_selector("#feed-url")
    shot(page, "confirmation")
    url = page.input_value("#feed-url")
    assert url.startswith(f"{shop}/feeds/") and url.endswith("/products.xml")
    assert page.get_attribute("#feed-url", "readonly") is not None
    assert w["answers 404"] in page.inner_text("#not-yet")
    page.click("#copy-url")  # selects the URL (and copies it where the browser allows)
    assert page.evaluate("window.getSelection().toString() || document.activeElement.value") == url
    assert requests.get(url, timeout=10).status_code == 404

    page.click("button.run-now")
    page.wait_for_selector("#runs tbody tr[data-run-id]")
    page.evaluate("window.__sameDocument = true")
    seen, shot_taken = [], False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = progress_of(page)
        seen.append(state["done"])
        # A bar well under way makes a telling picture (any bar will do if the run is quick).
        if not shot_taken and state["status"] == "running" and 0.3 < state["done"] / PRODUCTS < 0.8:
            shot(page, "runs-progress")
            shot_taken = True
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded", state
    assert state["done"] == state["total"] == PRODUCTS
    assert state["text"].strip() == f"{PRODUCTS} / {PRODUCTS}"
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert seen == sorted(seen)  # the bar only moves forward
    if not shot_taken:
        shot(page, "runs-progress")
    page.wait_for_selector("#runs [data-field='file'] a")

    feed = requests.get(url, timeout=10)
    assert feed.status_code == 200
    assert len(parse_feed(feed.content).findall("product")) == PRODUCTS

    page.goto("/admin/tasks/")
    page.wait_for_selector("#tasks")
    assert page.locator("#tasks [data-status='succeeded']").count() == 1
    shot(page, "recurring-tasks")
    page.click(f"#tasks tr[data-task-id] a:has-text('{w['Preview']}')")
    page.wait_for_selector("#preview-entities pre.entity")
    assert page.locator("#preview-entities pre.entity").count() == 10
    assert page.locator("#preview-entities pre.entity").first.inner_text().startswith("<product")
    shot(page, "feed-preview", full_page=False)

    page.goto("/admin/tasks/")
    page.click(f"#tasks tr[data-task-id] a[title='{w['Rotate the feed URL']}']")
    assert w["stops working"] in page.inner_text("body")
    page.click("#confirm")
    page.wait_for_selector("#feed-url")
    new_url = page.input_value("#feed-url")
    assert new_url != url
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(new_url, timeout=10).status_code == 200

    page.goto("/admin/products/")
    page.wait_for_selector("table.model-list")
    shot(page, "products")
    page.goto("/admin/")
    page.wait_for_selector("#count-products")
    count = page.inner_text("#count-products")
    assert re.sub(r"[,\s\u202f]", "", count) == str(PRODUCTS)
    shot(page, "dashboard")


def test_invalid_form_shows_errors_and_saves_nothing(page, w):
    sign_in(page)
    page.goto("/admin/tasks/new/")
    page.get_by_label(w["Name"], exact=True).fill("")
    page.get_by_label(w["Schedule"], exact=True).fill("every other tuesday")
    # The live preview says the schedule is wrong: its text pushes the Save button down, and
    # a click while it arrives can land where the button was.
    page.wait_for_selector("#upcoming-runs.text-danger")
    page.click("#save")
    assert page.inner_text("[data-error-for='name']") == w["A name is required"]
    assert page.locator(".alert-danger").inner_text().startswith(w["Please correct"])
    shot(page, "exporter-form-errors")
    page.get_by_label(w["Name"], exact=True).fill("Valid name")
    page.wait_for_selector("#upcoming-runs.text-danger")
    page.click("#save")
    assert page.locator("[data-error-for='schedule']").is_visible()
    page.goto("/admin/tasks/")
    assert w["No task yet"] in page.inner_text("#tasks")


def test_a_webhook_destination_added_in_the_exporter_form(page, w):
    sign_in(page)
    page.goto("/admin/tasks/new/")
    page.get_by_label(w["Name"], exact=True).fill("Stock for the ERP")
    page.get_by_label(w["Entity"], exact=True).select_option("stock")
    page.click("button[name='add_destination'][value='webhook']")
    page.wait_for_selector(".destination[data-kind='webhook']")
    assert page.input_value("#dest-0-secret") == ""
    assert page.get_attribute("#dest-0-secret", "type") == "password"
    page.fill("#dest-0-label", "ERP")
    page.fill("#dest-0-url", "https://erp.example.test/feeds")
    page.fill("#dest-0-secret", "browser-hook-secret")
    shot(page, "exporter-form-destination")
    page.click("#save")
    page.wait_for_selector("#feed-url")
    [task] = [t for t in tasks.list_tasks() if t.name == "Stock for the ERP"]
    [row] = tasks.destinations_of(task)
    assert (row.kind, row.label, row.get_secrets()) == (
        "webhook",
        "ERP",
        {"secret": "browser-hook-secret"},
    )
    page.goto(f"/admin/tasks/{task.id}/edit/")
    assert page.input_value("#dest-0-url") == "https://erp.example.test/feeds"
    assert "browser-hook-secret" not in page.content()


def test_anonymous_visit_goes_to_the_login_page(page, w):
    page.goto("/admin/runs/")
    assert "/admin/login/?next=/admin/runs/" in page.url
    assert page.get_by_label(w["E-mail"]).is_visible()
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url("**/admin/runs/")


def test_post_without_csrf_token_is_refused(page, w):
    sign_in(page)
    page.goto("/admin/tasks/new/")
    page.get_by_label(w["Name"], exact=True).fill("Forged")
    page.evaluate("document.querySelector('#exporter-form input[name=csrf_token]').remove()")
    page.click("#save")
    assert w["Form refused"] in page.inner_text("body")
    response = page.request.post(f"{page.url.split('/admin')[0]}/admin/tasks/new/",
                                 form={"name": "Forged", "entity": "products"})  # fmt: skip
    assert response.status == 400
    page.goto("/admin/tasks/")
    assert "Forged" not in page.inner_text("#tasks")


def csv_of(data: bytes) -> list[dict[str, str]]:
    """A CSV file (with or without a BOM, ``;`` or ``,`` separated) parsed by the csv module."""
    text = data.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=";,")
    return list(csv.DictReader(io.StringIO(text), dialect=dialect))


def test_exporter_with_the_shopify_template_serves_a_csv_feed(page, shop, w):
    sign_in(page)
    page.goto("/admin/tasks/new/")
    page.get_by_label(w["Name"], exact=True).fill("Shopify products")
    page.get_by_label(w["Entity"], exact=True).select_option("products")
    page.get_by_label(w["Format"], exact=True).select_option("xml")
    page.get_by_label(w["Template"], exact=True).select_option("shopify")
    # The template implies its format: the form goes back to automatic.
    assert page.get_by_label(w["Format"], exact=True).input_value() == ""
    page.get_by_label(w["Selection"], exact=True).fill("id<=200")
    page.click("#save")

    page.wait_for_selector("#feed-url")
    url = page.input_value("#feed-url")
    assert url.endswith("/products.csv")
    page.click("button.run-now")
    page.wait_for_selector("#runs tbody tr[data-run-id]")
    page.wait_for_function(SUCCEEDED, timeout=120_000)
    feed = requests.get(url, timeout=10)
    assert feed.status_code == 200
    assert feed.headers["Content-Type"].startswith("text/csv")
    rows = csv_of(feed.content)
    assert list(rows[0])[:2] == ["Title", "URL handle"]
    assert len({r["URL handle"] for r in rows}) == 200

    page.goto("/admin/tasks/")
    assert w["template shopify"] in page.inner_text("#tasks")


def test_manual_export_downloads_the_file(page, shop, w):
    sign_in(page)
    page.click("text=Advanced Importer")
    page.click(f"a.dropdown-item:has-text('{w['Manual export']}')")
    page.wait_for_selector("#manual-export-form")
    page.get_by_label(w["Entity"], exact=True).select_option("products")
    page.get_by_label(w["Format"], exact=True).select_option("csv")
    page.get_by_label(w["Options"], exact=True).fill("separator=,")
    page.get_by_label(w["Selection"], exact=True).fill("id<=300\nactive=1")
    assert page.locator("[data-options-for='csv']").is_visible()
    assert not page.locator("[data-options-for='xml']").is_visible()
    shot(page, "manual-export")
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename.startswith("products-")
    assert download.suggested_filename.endswith(".csv")
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    rows = csv_of(data)
    expected = db.session.query(Product).filter(Product.id <= 300, Product.active).count()
    assert 0 < len(rows) == expected
    assert {r["active"] for r in rows} == {"1"}

    page.goto("/admin/export/")
    assert w["Manual export"] in page.inner_text("#runs")
    page.goto("/admin/tasks/")
    assert w["No task yet"] in page.inner_text("#tasks")  # not a recurring task


def test_field_template_through_its_page(page, shop, w):
    sign_in(page)
    page.click("text=Advanced Importer")
    page.click(f"a.dropdown-item:has-text('{w['Field templates']}')")
    page.click("#add-template")
    page.get_by_label(w["Name"], exact=True).fill("marketplace")
    page.get_by_label(w["Description"], exact=True).fill("SKU, title and price for the marketplace")
    columns = [
        {"header": "SKU", "source": "reference"},
        {"header": "Title", "source": "name[en]", "transforms": [{"op": "truncate", "length": 70}]},
        {"header": "Price", "source": "price",
         "transforms": [{"op": "price", "decimals": 2, "decimal_separator": ","}]},
        {"header": "Condition", "value": "new"},
    ]  # fmt: skip
    page.get_by_label(w["Columns"], exact=True).fill(json.dumps(columns, indent=2))
    page.click("#save")
    page.wait_for_selector("#field-templates")
    assert "marketplace" in page.inner_text("#field-templates")
    page.click(f"#field-templates tr[data-template='marketplace'] a:has-text('{w['Edit']}')")
    page.wait_for_selector("#columns-preview")
    preview = page.inner_text("#columns-preview")
    for text in ("SKU", "name[en]", "truncate", w["constant"]):
        assert text in preview, text
    shot(page, "field-templates")


def test_an_http_download_importer_then_an_uploaded_stock_file(page, shop, w, tmp_path):
    # This shop's own stock feed, run once: the importer downloads it over HTTP.
    exporter = exporters.create_exporter("Stock feed", "stock")
    assert jobs.start_run(exporter, inline=True).status == "succeeded"
    feed_url = tasks.feed_url(exporter)
    assert feed_url.startswith(shop)

    sign_in(page)
    page.click("text=Advanced Importer")
    page.click(f"a.dropdown-item:has-text('{w['Recurring tasks']}')")
    page.click("#add-importer")
    page.get_by_label(w["Name"], exact=True).fill("Stock from shop A")
    page.get_by_label(w["URL"], exact=True).fill(feed_url)
    page.get_by_label(w["Entity"], exact=True).select_option("stock")
    page.get_by_label(w["Format"], exact=True).select_option("xml")
    assert page.get_by_label(w["Create new entries"]).is_checked()
    assert page.get_by_label(w["Update existing entries"]).is_checked()
    assert not page.get_by_label(w["Delete absent"]).is_checked()
    page.get_by_label(w["Schedule"], exact=True).fill("daily@03:00")
    page.wait_for_function(
        "next => document.getElementById('upcoming-runs').textContent.startsWith(next)",
        arg=w["Next runs:"],
    )
    shot(page, "importer-form")
    page.click("#save")
    page.wait_for_selector("#tasks")
    row = page.locator("#tasks tr[data-task-id]", has_text="Stock from shop A")
    assert "daily@03:00" in row.inner_text() and feed_url in row.inner_text()
    row.locator("button.run-now").click()
    page.wait_for_selector("#runs tbody tr[data-run-id]")
    page.wait_for_function(SUCCEEDED, timeout=120_000)
    page.click("#runs tbody tr:first-child a:has-text('#')")
    page.wait_for_selector("#import-results")
    # Its own feed: every stock row is found by its key and already up to date.
    stock_rows = db.session.query(StockAvailable).count()
    unchanged = page.inner_text("#import-results [data-entity='stock'] [data-count='unchanged']")
    assert int(unchanged) == stock_rows
    assert page.inner_text("#import-results [data-entity='stock'] [data-count='errors']") == "0"

    # A CSV of stock changes for three products without combinations.
    with_combinations = db.session.query(Combination.id_product).distinct()
    rows = (
        db.session.query(Product.reference, StockAvailable.quantity)
        .join(StockAvailable, StockAvailable.id_product == Product.id)
        .filter(StockAvailable.id_product_attribute == 0, Product.id.not_in(with_combinations))
        .order_by(Product.id)
        .limit(3)
        .all()
    )
    assert len(rows) == 3
    before = dict(rows)
    wanted = {ref: quantity + 100 for ref, quantity in before.items()}
    upload = tmp_path / "stock-changes.csv"
    lines = "".join(f"{r};{q}\n" for r, q in wanted.items())
    # And one row no product has: a row error, shown and downloadable, that stops nothing.
    upload.write_text(f"reference;quantity\n{lines}NO-SUCH-REF;7\n")

    page.click("text=Advanced Importer")
    page.click(f"a.dropdown-item:has-text('{w['Import a file']}')")
    page.set_input_files("#file", str(upload))
    page.get_by_label(w["Entity"], exact=True).select_option("stock")
    page.click("#dry-run")
    page.wait_for_selector("#upload-stage[data-stage='previewed']")
    assert w["nothing was written"] in page.inner_text("#dry-run-note")
    result = "#import-results [data-entity='stock'] [data-count='updated']"
    assert page.inner_text(result) == "3"
    changes = page.inner_text("[data-diffs-for='stock']")
    for ref, quantity in before.items():
        assert f"quantity: {quantity} → {quantity + 100}" in changes, ref
    assert "NO-SUCH-REF" in page.inner_text("#row-errors")
    assert page.locator("#errors-csv").is_visible()
    shot(page, "import-preview")
    db.session.rollback()
    assert {r: q for r, q in _quantities(before)} == before  # the dry run wrote nothing

    page.click("#run-import")
    page.wait_for_selector("#upload-stage[data-stage='imported']")
    assert page.inner_text(result) == "3"
    assert {r: q for r, q in _quantities(before)} == wanted
    reference = next(iter(wanted))
    page.goto(f"/admin/products/?search={reference}")
    page.wait_for_selector("table.model-list")
    assert str(wanted[reference]) in page.inner_text("table.model-list tbody")


def _quantities(references):
    """(reference, quantity) of the products' own stock rows, as committed."""
    db.session.rollback()
    return (
        db.session.query(Product.reference, StockAvailable.quantity)
        .join(StockAvailable, StockAvailable.id_product == Product.id)
        .filter(StockAvailable.id_product_attribute == 0, Product.reference.in_(list(references)))
        .all()
    )
