"""The panel in French and English: the catalogue is complete, and each page speaks the language
of the account's setting, else of the browser (Accept-Language), else English."""

from __future__ import annotations

import ast
import io
import re
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest
from babel.messages import checkers
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from impexmod.admin import users
from impexmod.dispatch import notify
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import Run, Task, User
from tests.integration.test_admin_auth import EMAIL, PASSWORD, Panel

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "impexmod" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
# As docs/admin.md's pybabel extract command: -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -k msg
# (msg: the services' messages, impexmod/messages.py).
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_pgettext": ((1, "c"), 2),
    "msg": None,
}
SERVICES = ("impexmod/delivery/", "impexmod/export/", "impexmod/importing/", "impexmod/runs/")
FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}
ERRORS = re.compile(r'data-error-for="(\w+)">([^<]*)<')


def _mapping():
    from babel.messages import frontend

    parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    with open(ROOT / "babel.cfg") as cfg:
        return parse(cfg)


def _key(context, message) -> tuple:
    return context, message if isinstance(message, str) else message[0]


def extracted() -> dict[tuple, list[str]]:
    """Every message of the panel's sources, as babel.cfg extracts them, with where it is."""
    method_map, options_map = _mapping()
    found: dict[tuple, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.setdefault(_key(context, message), []).append(f"{filename}:{lineno}")
    return found


def french_catalogue():
    with open(CATALOGUE, "rb") as po:
        return read_po(po, locale="fr")


def test_the_sources_say_something_to_translate():
    messages = extracted()
    # Templates, view flashes, form labels, menu names and the e-mail are all extracted.
    for key in [
        (None, "Sign in"),
        (None, "Exporter “%(name)s” saved."),
        (None, "Notify by e-mail"),
        ("menu", "Recurring tasks"),
        (None, '%(label)s "%(name)s" failed (run %(id)s)'),
        # The services' messages the panel shows (marked with msg).
        (
            None,
            "%(text)s is not a schedule; use none, daily@HH:MM, weekly@DAY@HH:MM, "
            "monthly@D@HH:MM or a five-field cron expression",
        ),
        (None, "%(address)s is not an e-mail address"),
        (None, "a webhook URL starts with http:// or https://"),
        (None, "%(label)s: %(setting)s: %(reason)s"),
        (None, "an http(s) URL or an absolute file path"),
    ]:
        assert key in messages, key
    assert len(messages) > 500


def _marking_modules() -> set[str]:
    """The modules of the package that mark messages with ``msg`` (impexmod.messages)."""
    found = set()
    for path in (ROOT / "impexmod").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "impexmod.messages":
                if any(alias.name == "msg" for alias in node.names):
                    found.add(path.relative_to(ROOT).as_posix())
    return found


def test_every_module_marking_service_messages_is_extracted():
    # A service module that marks a message but is not in babel.cfg would show it in English.
    extracted_from = {where.split(":")[0] for places in extracted().values() for where in places}
    missing = _marking_modules() - extracted_from
    assert _marking_modules() and not missing, f"add them to babel.cfg: {sorted(missing)}"


def test_every_service_message_has_a_french_translation():
    service = {
        key: places
        for key, places in extracted().items()
        if any(place.startswith(SERVICES) for place in places)
    }
    assert len(service) > 90
    entries = {_key(m.context, m.id): m for m in french_catalogue() if m.id}
    missing = [key for key in service if key not in entries]
    assert not missing, f"not in messages.po (pybabel extract, update: docs/admin.md): {missing}"
    untranslated = [key for key in service if not entries[key].string or entries[key].fuzzy]
    assert not untranslated, untranslated


def test_the_french_catalogue_has_every_panel_message_translated():
    messages = extracted()
    catalogue = french_catalogue()
    entries = {_key(m.context, m.id): m for m in catalogue if m.id}
    missing = sorted(set(messages) - set(entries), key=str)
    where = "\n".join(f"{key[1]!r} at {messages[key][0]}" for key in missing)
    assert not missing, f"not in messages.po (pybabel extract, update: docs/admin.md):\n{where}"
    stale = sorted(set(entries) - set(messages), key=str)
    assert not stale, f"in messages.po but no longer in the sources: {stale}"
    untranslated = [
        key
        for key, entry in entries.items()
        if not all(
            (entry.string,) if isinstance(entry.string, str) else entry.string
        )  # every plural form
        or entry.fuzzy
    ]
    assert not untranslated, f"no (or a fuzzy) French translation: {untranslated}"


def test_french_translations_keep_their_placeholders_and_the_mo_is_compiled():
    catalogue = french_catalogue()
    problems = [
        (message.id, [str(e) for e in errors])
        for message, errors in catalogue.check()
        if errors and message.id
    ]
    assert not problems
    for message in catalogue:
        if message.id:
            checkers.python_format(catalogue, message)
    # The committed .mo is the compiled .po (pybabel compile after each update).
    with open(CATALOGUE.with_suffix(".mo"), "rb") as mo:
        compiled = read_mo(mo)

    def strings(entries):
        return {
            _key(m.context, m.id): m.string if isinstance(m.string, str) else tuple(m.string)
            for m in entries
            if m.id
        }

    expected, actual = strings(catalogue), strings(compiled)
    assert actual == expected, "messages.mo is older than messages.po: pybabel compile"


# --------------------------------------------------------------------------- the pages


@pytest.fixture
def merchant(app) -> User:
    return users.create_user(EMAIL, PASSWORD)


def browser(app, headers: dict | None = None) -> Panel:
    """A client whose every request sends ``headers`` (the browser's language)."""
    panel = Panel(app)
    for name, value in (headers or {}).items():
        panel.client.environ_base["HTTP_" + name.upper().replace("-", "_")] = value
    return panel


def signed_in(app, headers: dict | None = None) -> Panel:
    panel = browser(app, headers)
    assert panel.login().status_code == 302
    return panel


def test_the_login_page_speaks_the_browsers_language(app, merchant):
    french = browser(app, FRENCH).text("/admin/login/")
    assert "<title>Se connecter - Advanced Importer</title>" in french
    assert "Connectez-vous pour gérer vos exporteurs, importeurs et votre catalogue." in french
    assert ">Mot de passe<" in french and "Sign in" not in french
    english = browser(app, ENGLISH).text("/admin/login/")
    assert "Sign in to manage your exporters, importers and catalog." in english
    assert "Se connecter" not in english
    # No Accept-Language, or one the panel does not speak: English.
    assert "Sign in to manage" in browser(app).text("/admin/login/")
    assert "Sign in to manage" in browser(app, {"Accept-Language": "de-DE"}).text("/admin/login/")


def test_a_failed_sign_in_and_required_fields_are_said_in_french(app, merchant):
    panel = browser(app, FRENCH)
    wrong = panel.post("/admin/login/", {"email": EMAIL, "password": "not it"})
    assert "E-mail ou mot de passe incorrect." in wrong.get_data(as_text=True)
    empty = panel.post("/admin/login/", {"email": "", "password": ""})
    page = empty.get_data(as_text=True)
    assert "Saisissez votre adresse e-mail." in page and "Saisissez votre mot de passe." in page


def test_the_french_dashboard_menu_and_recurring_tasks(app, merchant):
    panel = signed_in(app, FRENCH)
    dashboard = panel.text("/admin/")
    assert ">Tableau de bord</h4>" in dashboard
    assert "Aucune exécution échouée ces 7 derniers jours." in dashboard
    assert "Dernières exécutions" in dashboard and ">Se déconnecter<" in dashboard
    # The menu as the French documentation names it: Advanced Importer > Tâche récurrente.
    assert "Advanced Importer" in dashboard and "Tâche récurrente</a>" in dashboard
    assert "Feuilles de style</a>" in dashboard and "Catalogue" in dashboard
    listing = panel.text("/admin/tasks/")
    assert ">Tâches récurrentes</h4>" in listing
    assert "Ajouter un exporteur" in listing and "Ajouter un téléchargement HTTP" in listing
    assert "Aucune tâche pour l’instant." in listing


def test_the_french_add_an_exporter_form_and_its_errors(app, merchant):
    panel = signed_in(app, FRENCH)
    form = panel.text("/admin/tasks/new/")
    assert ">Ajouter un exporteur</h4>" in form
    for label in ["Nom", "Entité", "Stratégie", "Planification", "Fuseau horaire", "Sélection"]:
        assert f">{label}</label>" in form, label
    assert "Complet : toutes les entités, à chaque exécution" in form
    assert "Options des formats" in form and ">Enregistrer</button>" in form
    bad = panel.post(
        "/admin/tasks/new/",
        {"name": "", "entity": "products", "strategy": "full", "options": "separator"},
    )
    page = bad.get_data(as_text=True)
    assert "Corrigez les champs signalés ci-dessous ; rien n’a été enregistré." in page
    errors = dict(ERRORS.findall(page))
    assert errors["name"] == "Un nom est requis"
    assert errors["options"].startswith("Ligne 1 : « separator » n’est pas de la forme CLÉ=VALEUR")


def test_a_saved_exporter_flashes_in_french(app, merchant):
    panel = signed_in(app, FRENCH)
    task = exporters.create_exporter("Stock", "stock")
    saved = panel.post(
        f"/admin/tasks/{task.id}/edit/",
        {"name": "Stock B", "entity": "stock", "strategy": "full", "schedule": "none"},
        follow_redirects=True,
    )
    assert "Exporteur « Stock B » enregistré." in saved.get_data(as_text=True)
    assert "Exporteur" in panel.text("/admin/tasks/")


def test_the_english_panel_stays_english(app, merchant):
    panel = signed_in(app, ENGLISH)
    assert ">Dashboard</h4>" in panel.text("/admin/")
    form = panel.text("/admin/tasks/new/")
    assert ">Add an exporter</h4>" in form and "Ajouter" not in form
    bad = panel.post("/admin/tasks/new/", {"name": "", "entity": "products", "strategy": "full"})
    assert dict(ERRORS.findall(bad.get_data(as_text=True)))["name"] == "A name is required"


def test_the_accounts_language_wins_over_the_browsers(app, merchant):
    users.set_language(merchant, "fr")
    panel = signed_in(app, ENGLISH)
    assert ">Tableau de bord</h4>" in panel.text("/admin/")
    users.set_language(db.session.get(User, merchant.id), "en")
    panel = signed_in(app, FRENCH)
    assert ">Dashboard</h4>" in panel.text("/admin/")


def language_of(user: User) -> str | None:
    db.session.expire_all()  # the requests saved it in their own sessions
    return db.session.get(User, user.id).language


def test_the_language_menu_saves_the_accounts_language(app, merchant):
    panel = signed_in(app, ENGLISH)
    menu = panel.text("/admin/tasks/")
    assert 'id="language-form"' in menu and '<option value="fr" lang="fr">Français</option>' in menu
    response = panel.post(
        "/admin/language/", {"language": "fr", "next": "/admin/tasks/"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert ">Tâches récurrentes</h4>" in page  # back where the merchant was, in French
    assert "La langue du panneau est enregistrée pour votre compte." in page
    assert language_of(merchant) == "fr"
    # Back to the browser's language (English here); an unknown language is refused.
    panel.post("/admin/language/", {"language": ""})
    assert language_of(merchant) is None
    panel.post("/admin/language/", {"language": "xx"})
    assert language_of(merchant) is None
    assert ">Dashboard</h4>" in panel.text("/admin/")


def test_flask_admin_and_wtforms_speak_french_too(app, merchant):
    seed_catalog(db.engine, 5, seed=1)
    panel = signed_in(app, FRENCH)
    listing = panel.text("/admin/products/")
    # Flask-Admin's own strings (its French catalogue), the page sizes it ships untranslated
    # (impexmod/translations/fr/LC_MESSAGES/admin.po) and the columns (impexmod's).
    assert re.search(r">\s*Liste \(5\)\s*<", listing)
    assert "Ajouter un filtre" in listing and "50 articles" in listing
    for column in ["Référence", "Nom", "Prix (HT)", "Quantité", "Déclinaisons", "Actif"]:
        assert re.search(rf">\s*{re.escape(column)}\s*<", listing), column
    # WTForms' built-in messages, in French.
    response = panel.post("/admin/products/edit/?id=1", {"reference": "X", "price": "-3"})
    assert "Le nombre doit être au minimum 0." in response.get_data(as_text=True)


def test_dates_and_numbers_are_formatted_for_the_locale(app, merchant):
    app.config["TIMEZONE"] = "Europe/Paris"
    task = exporters.create_exporter("Products", "products")
    queued = datetime(2026, 11, 22, 18, 36, 5)
    run = Run(
        task_id=task.id,
        status="succeeded",
        queued_at=queued,
        started_at=queued,
        ended_at=queued,
        entity_count=12345,
        bytes=12_700,
        duration=0.42,
    )
    db.session.add(run)
    db.session.commit()
    french = signed_in(app, FRENCH).text(f"/admin/runs/{run.id}/")
    assert "22/11/2026 19:36:05" in french  # the shop's timezone, day first
    assert "12\u202f345" in french or "12 345" in french  # narrow no-break space
    assert "12,4 Ko" in french and "0,42 s" in french and ">réussie<" in french
    english = signed_in(app, ENGLISH).text(f"/admin/runs/{run.id}/")
    assert "2026-11-22 19:36:05" in english
    assert "12,345" in english and "12.4 KB" in english and ">succeeded<" in english


def test_the_notification_email_speaks_the_shops_language(app, app_like, monkeypatch):
    sent = []
    monkeypatch.setattr(notify, "send_email", lambda cfg, to, subject, body: sent.append(body))
    task = exporters.create_exporter("Broken feed", "products", notify_emails="shop@example.test")
    run = Run(task_id=task.id, status="failed", ended_at=datetime(2026, 3, 1))
    db.session.add(run)
    db.session.commit()
    # A worker (no request, no merchant) writes in the shop's language: BABEL_DEFAULT_LOCALE.
    # Read the id first: loading an expired attribute of this session inside the other app's
    # context would check out (and keep) a connection of the other app's engine.
    run_id = run.id
    worker = app_like(BABEL_DEFAULT_LOCALE="fr", SMTP_HOST="smtp.invalid")
    with worker.app_context():
        notification = notify.run_ended(db.session.get(Run, run_id))
        title, message = notification.title, notification.message
    assert title == f"Exporteur « Broken feed » : échec (exécution {run.id})"
    assert message.startswith("L’exécution a échoué.\nLe flux précédent reste en place.")
    assert sent == [message]
    # English by default.
    english = notify._message(task, run, failed=True)
    assert english[0] == f'Exporter "Broken feed" failed (run {run.id})'


def test_a_catalogue_entry_can_be_read_as_the_docs_say():
    # docs/admin.md tells translators to edit this file: it must parse on its own.
    text = CATALOGUE.read_text(encoding="utf-8")
    assert 'msgid "Add an exporter"\nmsgstr "Ajouter un exporteur"' in text
    read_po(io.StringIO(text))


@pytest.mark.parametrize("headers", [FRENCH, ENGLISH])
def test_translated_labels_and_descriptions_are_escaped_as_text(app, merchant, headers):
    # "shop:<id>" in the Source field's description is text, not a tag, in either language.
    page = signed_in(app, headers).get("/admin/import/").get_data(as_text=True)
    assert "shop:&lt;id&gt;" in page and "shop:<id>" not in page


# ----------------------------------------------------------- the services' errors in the panel


def exporter_form(**fields) -> dict:
    return {"name": "Stock", "entity": "stock", "format": "csv", "strategy": "full",
            "schedule": "none", "timezone": "", **fields}  # fmt: skip


def ftp_block(**settings) -> dict:
    values = {"kind": "ftp", "label": "Partner FTP", "enabled": "1", "host": "ftp.example.test",
              "port": "21", "username": "shop", "password": "secret", "directory": "feeds",
              **settings}  # fmt: skip
    return {f"dest-0-{key}": value for key, value in values.items()}


def importer_form(**fields) -> dict:
    return {"name": "Stock from shop A", "url": "https://shop-a.test/feeds/stock.xml",
            "entity": "stock", "format": "xml", "modes": ["create", "update"], "source": "",
            "mapping": "", "username": "", "password": "", "schedule": "none", "timezone": "",
            "notify_emails": "", "webhook_url": "", **fields}  # fmt: skip


def errors_of(response) -> dict[str, str]:
    """The errors shown next to the fields of a page, by field, as the merchant reads them."""
    return {
        field: unescape(text) for field, text in ERRORS.findall(response.get_data(as_text=True))
    }


# (form, fields, the field in error, the French error, the English error)
SERVICE_ERRORS = [
    pytest.param(
        "/admin/tasks/new/",
        exporter_form(schedule="hourly@10"),
        "schedule",
        "'hourly@10' n’est pas une planification ; utilisez none, daily@HH:MM, "
        "weekly@JOUR@HH:MM, monthly@J@HH:MM ou une expression cron à cinq champs",
        "'hourly@10' is not a schedule; use none, daily@HH:MM, weekly@DAY@HH:MM, "
        "monthly@D@HH:MM or a five-field cron expression",
        id="schedule",
    ),
    pytest.param(
        "/admin/tasks/new/",
        exporter_form(schedule="daily@25:00"),
        "schedule",
        "Daily : '25:00' n’est pas une heure de la journée (00:00 à 23:59)",
        "Daily: '25:00' is not a time of day (00:00 to 23:59)",
        id="time-of-day",
    ),
    pytest.param(
        "/admin/tasks/new/",
        exporter_form(schedule="daily@02:30", timezone="Mars/Olympus"),
        "timezone",
        "Fuseau horaire 'Mars/Olympus' inconnu ; utilisez un nom IANA tel que Europe/Paris",
        "Unknown timezone 'Mars/Olympus'; use an IANA name such as Europe/Paris",
        id="timezone",
    ),
    pytest.param(
        "/admin/tasks/new/",
        exporter_form(notify_emails="ops@shop.test, not-an-address"),
        "notify_emails",
        "'not-an-address' n’est pas une adresse e-mail",
        "'not-an-address' is not an e-mail address",
        id="e-mail",
    ),
    pytest.param(
        "/admin/tasks/new/",
        exporter_form(webhook_url="ftp://hooks.shop.test"),
        "webhook_url",
        "Une URL de webhook commence par http:// ou https://",
        "A webhook URL starts with http:// or https://",
        id="webhook",
    ),
    pytest.param(
        "/admin/tasks/new/",
        {**exporter_form(), **ftp_block(host="")},
        "destination",
        "Partner FTP : host : est obligatoire",
        "Partner FTP: host: is required",
        id="destination-required",
    ),
    pytest.param(
        "/admin/tasks/new/",
        {**exporter_form(), **ftp_block(port="99999")},
        "destination",
        "Partner FTP : port : '99999' n’est pas compris entre 1 et 65535",
        "Partner FTP: port: '99999' is not between 1 and 65535",
        id="destination-port",
    ),
    pytest.param(
        "/admin/tasks/importers/new/",
        importer_form(url="ftp://shop-a.test/stock.xml"),
        "url",
        "Une URL http(s) ou un chemin de fichier absolu",
        "An http(s) URL or an absolute file path",
        id="importer-url",
    ),
    pytest.param(
        "/admin/tasks/importers/new/",
        importer_form(mapping="nobody"),
        "mapping",
        "Aucune correspondance enregistrée ne s’appelle 'nobody'",
        "No saved mapping is named 'nobody'",
        id="importer-mapping",
    ),
    pytest.param(
        "/admin/tasks/importers/new/",
        importer_form(schedule="*/5 * *"),
        "schedule",
        "Une expression cron a cinq champs (minute heure jour-du-mois mois "
        "jour-de-la-semaine), '*/5 * *' en a 3 ; ou utilisez none, daily@HH:MM, "
        "weekly@JOUR@HH:MM, monthly@J@HH:MM",
        "A cron expression has five fields (minute hour day-of-month month day-of-week), "
        "got 3 in '*/5 * *'; or use none, daily@HH:MM, weekly@DAY@HH:MM, monthly@D@HH:MM",
        id="importer-schedule",
    ),
]


@pytest.mark.parametrize(("path", "fields", "field", "french", "english"), SERVICE_ERRORS)
def test_a_services_error_is_said_in_french_on_its_field(
    app, merchant, path, fields, field, french, english
):
    response = signed_in(app, FRENCH).post(path, fields)
    assert response.status_code == 200
    assert errors_of(response) == {field: french}
    assert Task.query.count() == 0


@pytest.mark.parametrize(("path", "fields", "field", "french", "english"), SERVICE_ERRORS)
def test_a_services_error_stays_english_in_an_english_panel(
    app, merchant, path, fields, field, french, english
):
    response = signed_in(app, ENGLISH).post(path, fields)
    assert response.status_code == 200
    assert errors_of(response) == {field: english}


def test_the_french_schedule_preview_says_its_error_in_french(app, merchant):
    panel = signed_in(app, FRENCH)
    response = panel.get("/admin/tasks/upcoming?schedule=monthly@32@02:00&timezone=Europe/Paris")
    assert response.status_code == 400
    assert response.get_json() == {"error": "monthly : le jour doit être de 1 à 31, pas '32'"}


def test_the_command_line_says_the_services_errors_in_english(app_like):
    # Even in a shop whose default language is French: the CLI and the logs speak English.
    french_shop = app_like(BABEL_DEFAULT_LOCALE="fr")
    result = french_shop.test_cli_runner().invoke(
        args=["exporter", "add", "--name", "Stock", "--entity", "stock", "--schedule", "daily@9"]
    )
    assert result.exit_code != 0
    assert "daily: expected a time as HH:MM, got '9'" in result.output
    assert "attendue" not in result.output
