# ruff: noqa: E501  (fixtures are feeds and command lines)
"""Importers as tasks: the CLI, HTTP sources (conditional GET, Basic auth, size limits), run
results and downloadable row errors, dry runs, and delete-absent with its guards."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
from flask import Flask, Response, request, send_file
from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.models import ImportResult, ImportRowError, Language, Product, Run
from tests.support import live_server

FEED = """<advancedimporter>
<product supplier-reference="P-1"><reference>R1</reference><name>One</name></product>
<product supplier-reference="P-2"><reference>R2</reference><name>Two</name></product>
<product supplier-reference="P-3"><reference>R3</reference><name>Three</name><price>oops</price></product>
</advancedimporter>"""


@pytest.fixture
def files(app, tmp_path):
    """A small file server on loopback with ETags and an optional Basic auth."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    folder = tmp_path / "served"
    folder.mkdir()
    server = Flask("files")
    hits = []

    @server.get("/<name>")
    def serve(name):
        hits.append(request.headers.get("If-None-Match"))
        if name.startswith("private"):
            expected = "Basic " + base64.b64encode(b"shop:secret").decode()
            if request.headers.get("Authorization") != expected:
                return Response("no", status=401)
        # From memory: a client that hangs up early must not leave a file open here.
        data = (folder / name).read_bytes()
        etag = hashlib.sha256(data).hexdigest()[:16]
        return send_file(io.BytesIO(data), mimetype="application/xml", conditional=True, etag=etag)

    with live_server(server) as base:
        yield {"folder": folder, "base": base, "hits": hits}


def count(model) -> int:
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model)).scalar()


def test_importer_from_the_cli_with_conditional_get_and_errors(files, runner):
    (files["folder"] / "feed.xml").write_text(FEED)
    url = f"{files['base']}/feed.xml"
    added = runner.invoke(args=["importer", "add", "--name", "Supplier", "--url", url, "--json"])
    assert added.exit_code == 0, added.output
    task_id = json.loads(added.output)["id"]
    first = runner.invoke(args=["importer", "run", str(task_id), "--wait", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["status"] == "succeeded" and data["entity_count"] == 2
    assert data["results"][0]["created"] == 2 and data["results"][0]["errors"] == 1
    errors = runner.invoke(args=["importer", "errors", str(data["id"])])
    lines = errors.output.splitlines()
    assert lines[0] == "severity,file,line,path,field,reason"
    assert lines[1].startswith("error,feed.xml,4,/advancedimporter/product[3]/price,price,")
    # Unchanged on the server: the second run sends the ETag back and imports nothing.
    second = runner.invoke(args=["importer", "run", str(task_id), "--json"])
    assert json.loads(second.output)["results"] == []
    assert files["hits"][-1] is not None
    run = db.session.get(Run, json.loads(second.output)["id"])
    assert "Not modified" in run.log
    listed = json.loads(runner.invoke(args=["importer", "list", "--json"]).output)
    assert [i["url"] for i in listed] == [url]
    assert count(ImportResult) == 1 and count(ImportRowError) == 1


def test_basic_auth_and_refusals_fail_the_run(files, runner):
    (files["folder"] / "private.xml").write_text(FEED)
    url = f"{files['base']}/private.xml"
    anonymous = json.loads(
        runner.invoke(args=["importer", "add", "--name", "a", "--url", url, "--json"]).output
    )
    failed = runner.invoke(args=["importer", "run", str(anonymous["id"]), "--json"])
    assert failed.exit_code == 1 and "401" in json.loads(failed.output)["error"]
    assert count(Product) == 0
    added = runner.invoke(
        args=[
            "importer",
            "add",
            "--name",
            "b",
            "--url",
            url,
            "--username",
            "shop",
            "--password",
            "secret",
            "--json",
        ]
    )
    ok = runner.invoke(args=["importer", "run", str(json.loads(added.output)["id"]), "--json"])
    assert json.loads(ok.output)["status"] == "succeeded" and count(Product) == 2


def test_downloads_over_the_limit_are_refused(files, runner, app):
    app.config["IMPORT_MAX_BYTES"] = 100
    (files["folder"] / "feed.xml").write_text(FEED)
    result = runner.invoke(args=["import", f"{files['base']}/feed.xml", "--json"])
    assert result.exit_code == 1 and "over the import limit" in result.output
    assert count(Product) == 0


def test_dry_run_json_and_delete_absent(app, runner, tmp_path):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED.replace("<price>oops</price>", ""))
    dry = runner.invoke(args=["import", str(feed), "--dry-run", "--json"])
    data = json.loads(dry.output)
    assert dry.exit_code == 0 and data["created"] == 3 and data["dry_run"] and count(Product) == 0
    assert {d["key"] for d in data["diffs"]} == {
        f"product 'P-{i}' of supplier:default" for i in (1, 2, 3)
    }
    runner.invoke(args=["import", str(feed)])
    smaller = tmp_path / "smaller.xml"
    smaller.write_text(
        FEED.replace(
            '<product supplier-reference="P-3"><reference>R3</reference><name>Three</name><price>oops</price></product>',
            "",
        )
    )
    # An incremental feed is partial: delete-absent is refused and says why.
    partial = tmp_path / "partial.xml"
    partial.write_text(
        smaller.read_text().replace(
            "<advancedimporter>",
            '<advancedimporter strategy="incremental" window-from="3" window-to="4">',
        )
    )
    result = json.loads(
        runner.invoke(args=["import", str(partial), "--mode", "update,delete", "--json"]).output
    )
    assert result["deleted"] == 0 and "partial" in result["error_list"][0]["reason"]
    # A run with row errors may be incomplete: refused too.
    broken = tmp_path / "broken.xml"
    broken.write_text(
        smaller.read_text().replace("<name>Two</name>", "<name>Two</name><price>x</price>")
    )
    result = json.loads(
        runner.invoke(args=["import", str(broken), "--mode", "update,delete", "--json"]).output
    )
    assert result["deleted"] == 0 and count(Product) == 3
    done = json.loads(
        runner.invoke(args=["import", str(smaller), "--mode", "update,delete", "--json"]).output
    )
    assert done["deleted"] == 1 and count(Product) == 2
    bad = runner.invoke(args=["import", str(smaller), "--mode", "delete,disable"])
    assert bad.exit_code == 2 and "mutually exclusive" in bad.output


def test_a_missing_file_is_a_clear_error(app, runner):
    result = runner.invoke(args=["import", str(Path("/nonexistent/feed.xml"))])
    assert result.exit_code == 1 and "no such file" in result.output


def test_an_importer_of_a_data_group_with_descriptors(files, runner, tmp_path):
    import zipfile

    from impexmod.models import CategoryLang

    with zipfile.ZipFile(files["folder"] / "export.zip", "w") as archive:
        archive.writestr("p.txt", "Ref;Nom;Cat\nX-1;Chaise;c1\n")
        archive.writestr("c.txt", "Code;Libellé\nc1;Sièges\n")
    descriptors = tmp_path / "group.json"
    descriptors.write_text(
        json.dumps(
            [
                {
                    "pattern": "c.txt",
                    "entity": "categories",
                    "format": "csv",
                    "mapping": {"Code": "supplier_reference", "Libellé": "name"},
                },
                {
                    "pattern": "p.txt",
                    "entity": "products",
                    "format": "csv",
                    "mapping": {"Ref": "supplier_reference", "Nom": "name", "Cat": "categories"},
                },
            ]
        )
    )
    url = f"{files['base']}/export.zip"
    added = runner.invoke(
        args=["importer", "add", "--name", "g", "--url", url, "--group", str(descriptors), "--json"]
    )
    assert added.exit_code == 0, added.output
    run = json.loads(
        runner.invoke(
            args=["importer", "run", str(json.loads(added.output)["id"]), "--json"]
        ).output
    )
    assert run["status"] == "succeeded", run
    assert [r["file"] for r in run["results"] if r["created"]][:2] == [
        "export.zip/c.txt",
        "export.zip/p.txt",
    ]
    assert count(Product) == 1
    assert db.session.execute(select(CategoryLang.name)).scalar() == "Sièges"
