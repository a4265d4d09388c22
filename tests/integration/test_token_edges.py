"""Feed tokens that are validly signed (with the app's real secret) but hold an id no task can
have: too large for the database's integers, negative, a bool, not a number. Each must be the
same plain 404 as any bad token, over real HTTP; never a 500."""

from __future__ import annotations

import pytest
import requests
from itsdangerous import URLSafeSerializer

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang
from impexmod.runs import tokens
from tests.support import live_server


@pytest.fixture
def served(app):
    """A live server and one exporter whose feed has been produced (so a good token is 200)."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="REF-0", price=10)
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductLang(id_product=product.id, id_lang=1, name="P0", link_rewrite="p0"))
    db.session.commit()
    task = exporters.create_exporter("products", "products")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    with live_server(app) as base:
        yield base, task


def signed(app, payload) -> str:
    """A token signed exactly as the app signs feed tokens, holding any payload."""
    return URLSafeSerializer(app.config["SECRET_KEY"], salt=tokens.SALT).dumps(payload)


@pytest.mark.parametrize(
    "task_id",
    [2**31 - 1, 2**31, 2**63, 2**64, 10**40, -1, -(2**63) - 1, 0, True, False, 1.0, "1", None, [1]],
    ids=lambda v: repr(v)[:20],
)
def test_a_signed_token_with_an_impossible_id_is_a_plain_404(app, served, task_id):
    base, task = served
    token = signed(app, [task_id, task.token_nonce])
    response = requests.get(f"{base}/feeds/{token}/products.xml", timeout=10)
    assert response.status_code == 404
    assert response.text == "Not found\n"


@pytest.mark.parametrize(
    "payload", [[], [1], "x", {"id": 1}, [1, 2], [1, None], [1, "n", "extra"], 7]
)
def test_a_signed_token_of_another_shape_is_a_plain_404(app, served, payload):
    base, _task = served
    response = requests.get(f"{base}/feeds/{signed(app, payload)}/products.xml", timeout=10)
    assert (response.status_code, response.text) == (404, "Not found\n")


def test_the_real_token_still_opens_the_feed(app, served):
    base, task = served
    assert signed(app, [task.id, task.token_nonce]) == tokens.make_token(task)
    response = requests.get(f"{base}/feeds/{tokens.make_token(task)}/products.xml", timeout=10)
    assert response.status_code == 200
