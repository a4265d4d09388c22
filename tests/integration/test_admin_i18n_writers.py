"""The writers', filters', field templates' and destinations' messages in the panel: French for
a French merchant, English for an English one (marked with msg, said with say)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from impexmod.admin import users
from impexmod.export import definition as exporters
from impexmod.export import field_templates
from impexmod.extensions import db
from impexmod.models import Task
from impexmod.runs.feedstore import get_store
from tests.integration.test_admin_auth import EMAIL, PASSWORD
from tests.integration.test_admin_i18n import (
    ENGLISH,
    FRENCH,
    errors_of,
    exporter_form,
    ftp_block,
    signed_in,
)


@pytest.fixture
def merchant(app):
    return users.create_user(EMAIL, PASSWORD)


# (form, fields, the field in error, the French error, the English error)
FORM_ERRORS = [
    pytest.param(
        exporter_form(options="separator=x"),
        "options",
        "Option separator : choisissez ;  ,  tab ou |, pas 'x'",
        "Option separator: choose ;  ,  tab or |, not 'x'",
        id="format-option",
    ),
    pytest.param(
        exporter_form(options="colour=blue"),
        "options",
        "Option colour : le format csv ne prend pas l’option 'colour' (il prend : bom, fields, "
        "rows, separator)",
        "Option colour: format csv takes no option 'colour' (it takes: bom, fields, rows, "
        "separator)",
        id="format-unknown-option",
    ),
    pytest.param(
        exporter_form(entity="products", format="", template="amazon", options="handling_time=99"),
        "options",
        "Option handling_time : un nombre entier de jours de 1 à 30",
        "Option handling_time: a whole number of days from 1 to 30",
        id="platform-option",
    ),
    pytest.param(
        exporter_form(entity="products", filters="price>=cheap"),
        "filters",
        "Filtre 'price >= cheap' : 'cheap' n’est pas un nombre ; price attend un nombre",
        "Filter 'price >= cheap': 'cheap' is not a number; price takes a number",
        id="filter-value",
    ),
    pytest.param(
        exporter_form(entity="products", filters="price>=10\nprice"),
        "filters",
        "Ligne 2 : impossible de lire le filtre 'price' : aucun opérateur après 'price' ; "
        "utilisez l’un de =, !=, >, >=, <, <=, ~, in, not in",
        "Line 2: cannot read filter 'price': no operator after 'price'; "
        "use one of =, !=, >, >=, <, <=, ~, in, not in",
        id="filter-syntax",
    ),
]


@pytest.mark.parametrize(("fields", "field", "french", "english"), FORM_ERRORS)
def test_an_option_or_filter_error_is_said_in_the_merchants_language(
    app, merchant, fields, field, french, english
):
    for headers, expected in ((FRENCH, french), (ENGLISH, english)):
        response = signed_in(app, headers).post("/admin/tasks/new/", fields)
        assert response.status_code == 200
        assert errors_of(response) == {field: expected}
    assert Task.query.count() == 0


def test_a_field_templates_column_error_is_said_in_french(app, merchant):
    price = {"header": "Price", "source": "price", "transforms": [{"op": "round", "x": 1}]}
    columns = [{"header": "SKU", "source": "reference"}, price]
    fields = {"name": "basic", "entity": "products", "columns": json.dumps(columns)}
    french = signed_in(app, FRENCH).post("/admin/field-templates/new/", data=fields)
    assert errors_of(french) == {
        "columns": "Colonne 2 (« Price ») : transformation 1 (round) : paramètre inconnu 'x' ; "
        "round prend decimals"
    }
    english = signed_in(app, ENGLISH).post("/admin/field-templates/new/", data=fields)
    assert errors_of(english) == {
        "columns": "Column 2 (\"Price\"): transform 1 (round): unknown parameter 'x'; "
        "round takes decimals"
    }


def test_an_unknown_column_suggests_in_french(app, merchant):
    fields = {"name": "basic", "entity": "products",
              "columns": json.dumps([{"header": "SKU", "source": "referense"}])}  # fmt: skip
    french = errors_of(signed_in(app, FRENCH).post("/admin/field-templates/new/", data=fields))
    assert french == {
        "columns": "Colonne 1 (« SKU ») : source : colonne inconnue 'referense' "
        "(vouliez-vous dire reference ?)"
    }


def page_text(response) -> str:
    """The page as the merchant reads it: entities decoded, white space collapsed."""
    return " ".join(unescape(response.get_data(as_text=True)).split())


def test_a_template_in_use_is_said_in_french(app, merchant):
    field_templates.create_template(
        "market", "products", [{"header": "SKU", "source": "reference"}]
    )
    task = exporters.create_exporter("Shop B", "products", "csv", template="market")
    french = signed_in(app, FRENCH).post(
        "/admin/field-templates/market/delete/", follow_redirects=True
    )
    assert (
        f"Impossible de supprimer le modèle market : utilisé par l’exporteur {task.id} (Shop B) ; "
        "donnez-lui d’abord un autre modèle." in page_text(french)
    )
    english = signed_in(app, ENGLISH).post(
        "/admin/field-templates/market/delete/", follow_redirects=True
    )
    assert (
        f"Cannot delete template market: used by exporter {task.id} (Shop B); "
        "give them another template first." in page_text(english)
    )
    db.session.expire_all()
    assert field_templates.get_template("market") is not None


def _test_connection(app, headers, **settings) -> str:
    panel = signed_in(app, headers)
    data = {**exporter_form(), **ftp_block(**settings), "test_destination": "0"}
    body = panel.post("/admin/tasks/new/", data=data).get_data(as_text=True)
    found = re.search(r'data-field="test-outcome">([^<]*)<', body)
    assert found, body[-3000:]
    return unescape(found.group(1))


def test_a_test_connection_outcome_is_said_in_french(app, merchant):
    # Settings that are not valid: the outcome says why, in the merchant's language.
    assert _test_connection(app, FRENCH, port="99999") == (
        "Échec : Partner FTP : port : '99999' n’est pas compris entre 1 et 65535"
    )
    assert _test_connection(app, ENGLISH, port="99999") == (
        "Failed: Partner FTP: port: '99999' is not between 1 and 65535"
    )
    assert Task.query.count() == 0


def test_a_preview_error_is_said_in_french(app, merchant):
    task = exporters.create_exporter("Broken", "products")
    store = get_store()
    with store.writing(task.id, 1) as (fh, tmp):
        fh.write(b"<products><product>unclosed")
    store.point(store.place(task.id, 1, tmp, "xml"))
    french = signed_in(app, FRENCH).text(f"/admin/tasks/{task.id}/preview/")
    assert "run-1.xml n’est pas du XML lisible : " in unescape(french)
    english = signed_in(app, ENGLISH).text(f"/admin/tasks/{task.id}/preview/")
    assert "run-1.xml is not readable XML: " in unescape(english)
    assert "lisible" not in english


def test_an_unknown_stylesheet_is_said_in_french(app, merchant):
    fields = exporter_form(entity="products", format="xml", stylesheet="nope")
    french = errors_of(signed_in(app, FRENCH).post("/admin/tasks/new/", fields))
    assert french["stylesheet"].startswith("Aucune feuille de style nommée 'nope' (connues : ")
    english = errors_of(signed_in(app, ENGLISH).post("/admin/tasks/new/", fields))
    assert english["stylesheet"].startswith("No stylesheet named 'nope' (known: ")
