"""X-Forwarded-* headers are believed only from as many proxies as the operator configured."""

from __future__ import annotations

from flask import request

from impexmod import create_app


def _app(tmp_path, **config):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "SHOP_ID": "proxied",
            "TESTING": True,
            **config,
        }
    )
    app.add_url_rule("/_seen", "seen", lambda: f"{request.remote_addr} {request.scheme}")
    return app


def _seen(app) -> str:
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    return (
        app.test_client()
        .get("/_seen", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        .get_data(as_text=True)
    )


def test_forwarded_headers_are_ignored_by_default(tmp_path):
    assert _seen(_app(tmp_path)) == "10.0.0.2 http"


def test_one_trusted_proxy_gives_the_clients_address_and_scheme(tmp_path):
    assert _seen(_app(tmp_path, TRUSTED_PROXIES=1)) == "203.0.113.9 https"
