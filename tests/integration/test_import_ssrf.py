"""Issue 12 item 3: server-side request forgery. A download reaches public addresses only
(the loopback servers here play the internal ones), checked when connecting, on every redirect
hop, unless the operator allow-lists a network; and what a source says is echoed back only when
it is recognised (header names of a flat file that has known columns, element names of XML).

The app of these tests has no allow-list (the production default); the suite's loopback
allow-list (tests/conftest.py) is removed for them.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.importing import ImportRefused, Options, errors_csv, import_file, sources
from impexmod.importing.definition import create_importer
from impexmod.importing.outcomes import run_errors
from impexmod.models import Language, Product, Run, Task
from tests.integration.test_admin_auth import signed_in
from tests.integration.test_admin_imports import errors_of, importer_form

FEED = b"""<advancedimporter>
<product supplier-reference="P-1"><reference>R1</reference><name>One</name></product>
</advancedimporter>"""
INTERNAL = "impexmod does not fetch from internal addresses (see IMPEXMOD_IMPORT_ALLOWED_NETWORKS)"
PARTNER = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to loopback: our "external" partner


class Served:
    """A real HTTP server on ``host`` answering ``routes`` (path -> (status, headers, body))."""

    def __init__(self, host: str, routes: dict, port: int = 0, tls: ssl.SSLContext | None = None):
        self.routes, self.hits = routes, []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                served.hits.append(self.path)
                status, headers, body = served.routes.get(self.path.split("?")[0], (404, {}, b"no"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls else "http"
        self.base = f"{scheme}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@contextmanager
def serving(host: str, routes: dict, **kwargs) -> Iterator[Served]:
    """A Served server for the duration of the block."""
    server = Served(host, routes, **kwargs)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def guarded(app):
    """The app without any allow-list, as deployed by default; a language for the feeds."""
    app.config["IMPORT_ALLOWED_NETWORKS"] = ""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    return app


@pytest.fixture
def internal(guarded):
    """An "internal" server on 127.0.0.1 holding a feed and a secret."""
    routes = {
        "/feed.xml": (200, {"Content-Type": "application/xml"}, FEED),
        "/stock.csv": (200, {}, b"reference;quantity\nR1;4\n"),
    }
    with serving("127.0.0.1", routes) as server:
        yield server


def count(model) -> int:
    """Rows of a table, as committed."""
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def run_importer(url: str, **kwargs) -> Run:
    """Save an importer of ``url`` (the service, as a script would) and run it to its end."""
    task = create_importer("Partner", url, **kwargs)
    return jobs.wait(jobs.start_run(task, trigger="manual", inline=True), timeout=60)


def everything_said(run: Run) -> str:
    """All a merchant can read of a run: its error, warnings, log and errors CSV."""
    db.session.refresh(run)
    rows = errors_csv(run_errors(run.id))
    return "\n".join([run.error or "", json.dumps(run.warnings or []), run.log or "", rows])


# ------------------------------------------------------------------ internal addresses refused


@pytest.mark.parametrize(
    "host, says",
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),  # decimal
        ("0177.0.0.1", "0177.0.0.1 resolves to 127.0.0.1, a loopback address"),  # octal
        ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),  # hex, short form
        ("[::ffff:127.0.0.1]", "is the IPv6 form of 127.0.0.1, a loopback address"),
    ],
)
def test_an_importer_of_an_internal_address_fails_with_nothing_imported(internal, host, says):
    run = run_importer(f"http://{host}:{internal.port}/feed.xml")
    assert run.status == "failed"
    assert says in run.error and INTERNAL in run.error, run.error
    assert "Traceback" not in everything_said(run)
    assert count(Product) == 0
    assert internal.hits == []  # not even a connection reached the internal server


def test_the_command_line_import_of_an_internal_url_is_refused(internal, runner):
    result = runner.invoke(args=["import", f"http://localhost:{internal.port}/feed.xml"])
    assert result.exit_code == 1
    assert "localhost resolves to 127.0.0.1, a loopback address" in result.output
    assert INTERNAL in result.output and "Traceback" not in result.output
    assert count(Product) == 0 and internal.hits == []


def test_fetch_url_refuses_the_metadata_and_private_addresses_before_connecting(guarded):
    # Nothing listens there: the refusal is the guard's, not a failed connection.
    for url, says in [
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "the IPv6 form of 169.254.169.254"),
        ("http://10.1.2.3/feed.xml", "10.1.2.3 is a private address"),
        ("http://0.0.0.0/feed.xml", "0.0.0.0 is an unspecified address"),
        ("http://[::1]/feed.xml", "::1 is a loopback address"),
        ("http://[fe80::1]/feed.xml", "a link-local address"),
        ("http://224.0.0.1/feed.xml", "a multicast address"),
        ("http://240.0.0.1/feed.xml", "a reserved address"),
    ]:
        with pytest.raises(ImportRefused) as caught:
            sources.fetch_url(url)
        assert says in str(caught.value) and INTERNAL in str(caught.value), (url, caught.value)


def test_a_redirect_from_an_allowed_server_to_an_internal_one_is_refused(guarded, internal):
    guarded.config["IMPORT_ALLOWED_NETWORKS"] = f"{PARTNER}/32"  # the partner, not 127.0.0.1
    internal_url = f"http://127.0.0.1:{internal.port}/feed.xml"
    routes = {"/feed.xml": (302, {"Location": internal_url}, b"")}
    with serving(PARTNER, routes) as partner:
        run = run_importer(f"{partner.base}/feed.xml")
        assert partner.hits == ["/feed.xml"]  # the partner was reached: it is allowed
    assert run.status == "failed"
    assert "127.0.0.1 is a loopback address" in run.error and "after a redirect" in run.error
    assert count(Product) == 0
    assert internal.hits == []  # the redirect's target never got a request


def test_the_connect_time_lookup_is_the_one_checked(guarded, internal, monkeypatch, runner):
    """DNS rebinding: a name that answers the partner's address to the first lookup (an early
    check) and 127.0.0.1 afterwards gets nothing; each connection resolves once and connects to
    the address it checked."""
    guarded.config["IMPORT_ALLOWED_NETWORKS"] = f"{PARTNER}/32"
    real = socket.getaddrinfo
    answers = iter([PARTNER])

    def rebinding(host, *args, **kwargs):
        if host != "partner.test":
            return real(host, *args, **kwargs)
        return real(next(answers, "127.0.0.1"), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    routes = {"/feed.xml": (200, {}, FEED)}
    with serving(PARTNER, routes, port=internal.port) as partner:
        result = runner.invoke(args=["import", f"http://partner.test:{internal.port}/feed.xml"])
    assert result.exit_code == 1, result.output
    assert "partner.test resolves to 127.0.0.1, a loopback address" in result.output
    assert count(Product) == 0
    assert internal.hits == [] and partner.hits == []


# ------------------------------------------------------------------------------ the allow-list


def test_the_allow_list_lets_a_partner_on_a_private_network_through(guarded):
    with serving(PARTNER, {"/feed.xml": (200, {}, FEED)}) as partner:
        refused = run_importer(f"{partner.base}/feed.xml")
        assert refused.status == "failed" and "127.0.0.2 is a loopback address" in refused.error
        assert partner.hits == []
        guarded.config["IMPORT_ALLOWED_NETWORKS"] = f"10.0.0.0/8, {PARTNER}/32"
        run = run_importer(f"{partner.base}/feed.xml")
        assert partner.hits == ["/feed.xml"]
    assert run.status == "succeeded", run.error
    assert count(Product) == 1


def test_a_bad_allow_list_is_reported_by_its_name(guarded):
    guarded.config["IMPORT_ALLOWED_NETWORKS"] = "10.0.0.0/8,intranet"
    run = run_importer(f"http://{PARTNER}:9/feed.xml")  # refused before any connection
    assert run.status == "failed"
    assert "IMPEXMOD_IMPORT_ALLOWED_NETWORKS: 'intranet' is not a network" in run.error


def _tls(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for ``name`` from a test CA, and the CA's file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, key, signer, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", "test CA", ca_key, ca_key, True)
    leaf = cert(name, "test CA", key, ca_key, False, san=name)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    return context, tmp_path / "ca.pem"


@pytest.mark.parametrize("certified, works", [("partner.test", True), ("other.test", False)])
def test_https_still_verifies_the_certificate_of_the_host_name(
    guarded, tmp_path, monkeypatch, certified, works
):
    """Connecting to the checked address does not lose the name: SNI and the certificate check
    use partner.test (a certificate for another name is refused)."""
    guarded.config["IMPORT_ALLOWED_NETWORKS"] = f"{PARTNER}/32"
    context, ca = _tls(tmp_path, certified)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    real = socket.getaddrinfo

    def partner_dns(host, *args, **kwargs):
        return real(PARTNER if host == "partner.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", partner_dns)
    with serving(PARTNER, {"/feed.xml": (200, {}, FEED)}, tls=context) as partner:
        run = run_importer(f"https://partner.test:{partner.port}/feed.xml")
    if works:
        assert run.status == "succeeded", run.error
        assert count(Product) == 1
    else:
        assert run.status == "failed" and "certificate" in run.error.lower(), run.error
        assert count(Product) == 0


# ---------------------------------------------------------------------------- early validation


def test_the_panel_refuses_an_internal_url_next_to_the_field(guarded, internal):
    panel = signed_in(guarded)
    url = f"http://localhost:{internal.port}/feed.xml"
    response = panel.post("/admin/tasks/importers/new/", data=importer_form(url=url))
    assert response.status_code == 200
    errors = errors_of(response)
    assert list(errors) == ["url"], errors
    assert "localhost resolves to 127.0.0.1, a loopback address" in errors["url"]
    assert INTERNAL in errors["url"]
    assert count(Task) == 0


def test_the_command_line_refuses_an_internal_url_when_adding_or_editing(guarded, runner):
    added = runner.invoke(
        args=["importer", "add", "--name", "Metadata", "--url", "http://169.254.169.254/x"]
    )
    assert added.exit_code == 2
    assert "169.254.169.254 is a cloud metadata address" in added.output
    assert INTERNAL in added.output and count(Task) == 0
    task = create_importer("Partner", "https://shop-a.test/feeds/t/stock.xml")
    edited = runner.invoke(
        args=["importer", "edit", str(task.id), "--url", "http://[::ffff:10.0.0.1]/feed.xml"]
    )
    assert edited.exit_code == 2
    assert "the IPv6 form of 10.0.0.1, a private address" in edited.output
    db.session.expire_all()
    assert db.session.get(Task, task.id).options["url"] == "https://shop-a.test/feeds/t/stock.xml"


# ------------------------------------------------------------- unrecognised content not echoed


PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def test_a_local_file_that_is_no_flat_file_is_refused_without_quoting_it(guarded, runner):
    """From the command line a path is a source: the instance's secret key read as a stock CSV
    must not come back in the run's warnings, its error or its errors CSV."""
    secret_file = Path(guarded.instance_path) / "secret_key"
    secret = secret_file.read_text().strip()
    added = runner.invoke(
        args=[
            "importer",
            "add",
            "--name",
            "Key",
            "--url",
            str(secret_file),
            "--entity",
            "stock",
            "--json",
        ]  # fmt: skip
    )
    assert added.exit_code == 0, added.output
    ran = runner.invoke(args=["importer", "run", str(json.loads(added.output)["id"]), "--wait"])
    assert ran.exit_code == 1
    run = db.session.query(Run).one()
    said = everything_said(run) + ran.output
    assert "secret_key: none of the 1 columns of the first line is a column of stock" in said
    assert "is this a stock CSV?" in said
    assert secret not in said and secret[:8] not in said


def test_passwd_read_as_csv_is_refused_without_quoting_it(guarded, tmp_path, runner):
    path = tmp_path / "passwd"
    path.write_text(PASSWD)
    report = import_file(path, Options(entity="stock"))
    assert report.refused == [
        "passwd: none of the 1 columns of the first line is a column of stock: is this a stock "
        "CSV? (the columns are in docs/importing.md; other headers need a saved mapping)"
    ]
    assert [e for e in report.errors if e.severity == "warning"] == []  # none quoting it
    errors = tmp_path / "errors.csv"
    result = runner.invoke(args=["import", str(path), "--entity", "stock", "--errors", str(errors)])
    assert result.exit_code == 1
    assert "root:x" not in result.output and "root:x" not in errors.read_text()


def test_unknown_columns_are_listed_only_beside_known_ones_truncated_and_capped(guarded, tmp_path):
    unknown = [f"extra-{i:02d}-" + "x" * 100 for i in range(30)]
    path = tmp_path / "stock.csv"
    path.write_text(";".join(["reference", "quantity", *unknown]) + "\nR1;4\n")
    report = import_file(path, Options(entity="stock"))
    warnings = [e for e in report.errors if e.severity == "warning"]
    listed = [w for w in warnings if w.reason == "unknown column; ignored"]
    assert [w.field for w in listed] == [name[:59] + "…" for name in unknown[:20]]
    assert all(len(w.field) <= 60 for w in listed)
    assert [w.reason for w in warnings if w not in listed] == ["10 more unknown columns; ignored"]
    assert report.refused == []


def test_an_html_page_or_text_given_as_a_native_feed_is_not_echoed(guarded):
    guarded.config["IMPORT_ALLOWED_NETWORKS"] = f"{PARTNER}/32"
    html = (
        b"<html><head><meta charset='utf-8'><title>Router admin</title></head>"
        b"<body><p>password=hunter2</p></body></html>"
    )
    routes = {
        "/page.xml": (200, {"Content-Type": "text/html"}, html),
        "/text.xml": (200, {}, b"token hunter2 is the admin's\n"),
        "/stock.csv": (200, {}, html),
    }
    with serving(PARTNER, routes) as partner:
        for path, says in [
            ("/page.xml", "the root element is <html>"),
            ("/text.xml", "not well-formed XML"),
            ("/stock.csv", "none of the 1 columns of the first line is a column of stock"),
        ]:
            db.session.query(Run).delete()
            db.session.query(Task).delete()
            db.session.commit()
            run = run_importer(f"{partner.base}{path}", entity="stock")
            said = everything_said(run)
            assert run.status == "failed" and says in run.error, (path, run.error)
            assert "hunter2" not in said and "Router admin" not in said, said
    assert count(Product) == 0
