"""What a merchant reads about a refused upload names the file they uploaded, never where the
shop keeps it: no stored (random) name, no temporary ``.upload-`` name, no instance folder."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from impexmod.extensions import db
from impexmod.importing import safexml, sources
from impexmod.importing.errors import ImportRefused
from impexmod.importing.service import import_file
from impexmod.models import Run, Task
from tests.integration.test_admin_imports import STAGE, panel, upload  # noqa: F401  (fixture)

STORED = re.compile(r"[0-9a-f]{32}\.\w+")


def leaks(text: str, app) -> list[str]:
    """The parts of ``text`` that say where the shop keeps files."""
    found = STORED.findall(text)
    found += [s for s in (".upload-", ".download-", app.instance_path) if s in text]
    return found


@pytest.mark.parametrize(
    "name, content",
    [
        ("broken.xml", "<advancedimporter><product>"),
        ("mismatch.xml", "<advancedimporter><product></x></advancedimporter>"),
        ("doctype.xml", '<!DOCTYPE a [<!ENTITY e "x">]><advancedimporter/>'),
        ("garbage.xml", "<advancedimporter>\x00</advancedimporter>"),
    ],
)
def test_a_refused_upload_names_the_uploaded_file_only(panel, app, name, content):  # noqa: F811
    task_id = upload(panel, content, name)
    page = panel.text(f"/admin/import/{task_id}/")
    assert STAGE.search(page).group(1) == "refused"
    refused = re.search(r'id="refused">(.*?)</div>', page, re.S).group(1)
    assert f"The file cannot be imported: {name}: " in refused
    assert leaks(page, app) == []
    db.session.rollback()
    run = db.session.query(Run).filter(Run.task_id == task_id).one()
    assert run.error.startswith(f"{name}: ") and leaks(run.error, app) == []
    assert leaks(run.log or "", app) == []
    assert db.session.get(Task, task_id) is not None


def test_the_temporary_copy_of_an_upload_does_not_carry_the_clients_name(app):
    fetched = sources.from_stream(io.BytesIO(b"<a/>"), "../../Secret Stock.xml")
    try:
        assert fetched.name == "Secret Stock.xml"
        assert "Secret" not in fetched.path.name and fetched.path.name.startswith(".upload-")
    finally:
        fetched.cleanup()


def test_a_file_that_cannot_be_read_is_named_by_its_label(tmp_path):
    missing = tmp_path / "d1cc18e738875f1b71554b5fca6c9190.xml"
    with pytest.raises(ImportRefused) as refused:
        safexml.root(missing, "stock.xml")
    assert str(refused.value).startswith("stock.xml: cannot be read")
    assert str(tmp_path) not in str(refused.value) and missing.name not in str(refused.value)


def test_a_syntax_error_is_reported_with_its_line_but_not_the_path(tmp_path):
    path: Path = tmp_path / "d1cc18e738875f1b71554b5fca6c9190.xml"
    path.write_text("<advancedimporter>\n<product></x>\n</advancedimporter>")
    with pytest.raises(ImportRefused) as refused:
        safexml.Check(path, "stock.xml").result()
    message = str(refused.value)
    assert message.startswith("stock.xml: not well-formed XML: ") and "line 2" in message
    assert path.name not in message and str(tmp_path) not in message


def test_a_library_message_naming_the_stored_file_names_the_label_instead(app, tmp_path):
    # zipfile's OSError carries the full path of what it opened (here a folder, so it fails).
    stored = tmp_path / "instance-like" / "d1cc18e738875f1b71554b5fca6c9190.zip"
    stored.mkdir(parents=True)
    report = import_file(stored, fmt="zip", label="stock.zip")
    assert len(report.refused) == 1
    message = report.refused[0]
    assert message.startswith("stock.zip: not a readable ZIP archive: ")
    assert str(tmp_path) not in message and stored.name not in message
