"""Hostile input: entities, DTDs, archive paths, zip bombs and oversized files are refused with
a clear message, and a refused input writes nothing."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.importing import Options, import_file
from impexmod.models import EntityChange, Language, Product

XXE = """<?xml version="1.0"?>
<!DOCTYPE advancedimporter [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<advancedimporter><product supplier-reference="X"><name>&secret;</name></product>
</advancedimporter>"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE advancedimporter [
 <!ENTITY a "lollollollollollollollollollol">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<advancedimporter><product supplier-reference="X"><name>&d;</name></product>
</advancedimporter>"""
GOOD = (
    '<advancedimporter><product supplier-reference="OK"><name>Fine</name></product>'
    "</advancedimporter>"
)


@pytest.fixture
def empty(app):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    return app


def nothing_written() -> bool:
    db.session.rollback()
    products = db.session.execute(select(func.count()).select_from(Product)).scalar()
    changes = db.session.execute(select(func.count()).select_from(EntityChange)).scalar()
    return products == 0 and changes == 0


def refused(path, **options) -> str:
    report = import_file(path, Options(**options))
    assert report.refused, [str(e) for e in report.errors]
    assert report.totals()["created"] == 0
    assert nothing_written()
    return report.refused[0]


@pytest.mark.parametrize("document", [XXE, LAUGHS], ids=["external entity", "billion laughs"])
def test_entities_and_dtds_are_refused(empty, tmp_path, document):
    path = tmp_path / "feed.xml"
    path.write_text(document)
    message = refused(path)
    assert "feed.xml" in message and "DOCTYPE" in message


def test_a_truncated_feed_writes_nothing(empty, tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text(GOOD.replace("</advancedimporter>", "") + '<product supplier-reference="Y">')
    assert "not well-formed" in refused(path)


def _many(n: int) -> str:
    products = "".join(
        f'<product supplier-reference="P{i}"><name>Product {i}</name></product>\n' for i in range(n)
    )
    return f"<advancedimporter>\n{products}"


@pytest.mark.parametrize("parallel", [0, 1], ids=["in-process", "parser process"])
def test_a_feed_truncated_after_many_chunks_writes_nothing(empty, tmp_path, parallel):
    # Chunks are written while the whole file is being checked; none is committed before the
    # check has passed, so the forty chunks before the truncation are rolled back.
    empty.config.update(IMPORT_CHUNK=5, IMPORT_PARALLEL_BYTES=parallel)
    path = tmp_path / "feed.xml"
    path.write_text(_many(200) + '<product supplier-reference="cut"><name>Cu')
    assert "not well-formed" in refused(path)


def test_chunks_held_for_a_failed_check_are_rolled_back(empty, tmp_path):
    # The check and the entries come from different files here, so that it is the check (not
    # the streaming parser, which reads the same bytes) that refuses.
    from impexmod.importing.engine import Importer, open_connection
    from impexmod.importing.errors import ImportRefused
    from impexmod.importing.native import TOP_LEVEL, NativeParser
    from impexmod.importing.report import Report
    from impexmod.importing.safexml import Check, elements

    empty.config["IMPORT_CHUNK"] = 5
    good, bad = tmp_path / "good.xml", tmp_path / "bad.xml"
    good.write_text(_many(50) + "</advancedimporter>")
    bad.write_text(_many(3) + "<product")
    conn = open_connection()
    report = Report()
    importer = Importer(conn, Options(), report)
    parser = NativeParser("good.xml", "supplier:acme", {"en"}, report.add_error)
    importer.hold(Check(bad, "bad.xml"))
    stream = elements(good, "good.xml", TOP_LEVEL)
    with pytest.raises(ImportRefused, match="bad.xml: not well-formed"):
        importer.feed(parser.parse(e, w) for e, w in stream)
    stream.close()
    importer.close()
    conn.close()
    assert nothing_written()
    assert report.totals()["created"] == 0  # held chunks are counted only once committed


def test_a_file_failing_while_its_check_runs_writes_nothing(empty, tmp_path):
    # The check reads a named pipe that nobody writes yet, so it is still running (for sure)
    # when the streaming parser reaches the truncation.
    import os
    import threading

    from impexmod.importing.engine import Importer, open_connection
    from impexmod.importing.errors import ImportRefused
    from impexmod.importing.native import TOP_LEVEL, NativeParser
    from impexmod.importing.report import Report
    from impexmod.importing.safexml import Check, elements

    empty.config["IMPORT_CHUNK"] = 5
    truncated, pipe = tmp_path / "feed.xml", tmp_path / "check.pipe"
    truncated.write_text(_many(50) + "<product")
    os.mkfifo(pipe)
    conn = open_connection()
    report = Report(file="feed.xml")
    importer = Importer(conn, Options(), report)
    parser = NativeParser("feed.xml", "supplier:acme", {"en"}, report.add_error)
    check = Check(pipe, "feed.xml")
    importer.hold(check)
    stream = elements(truncated, "feed.xml", TOP_LEVEL)
    with pytest.raises(ImportRefused, match="not well-formed"):
        importer.feed(parser.parse(e, w) for e, w in stream)
    assert not check.done()
    stream.close()
    importer.close()
    conn.close()
    release = threading.Thread(target=pipe.write_text, args=("<advancedimporter/>",))
    release.start()
    check.result()
    release.join()
    assert nothing_written()
    assert report.totals()["created"] == 0


def test_chunks_held_for_a_passing_check_are_committed_and_counted(empty, tmp_path):
    empty.config["IMPORT_CHUNK"] = 5
    path = tmp_path / "feed.xml"
    path.write_text(_many(50) + "</advancedimporter>")
    report = import_file(path)
    assert report.ok and report.totals()["created"] == 50
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(Product)).scalar() == 50


def _zip(path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)  # as given: zipfile would clean a name it is passed
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


@pytest.mark.parametrize(
    "name", ["../evil.xml", "/etc/evil.xml", "a/../../evil.xml", "C:\\evil.xml"]
)
def test_archive_paths_that_escape_are_refused(empty, tmp_path, name):
    path = tmp_path / "group.zip"
    _zip(path, {"products.xml": GOOD.encode(), name: GOOD.encode()})
    assert "unsafe path" in refused(path)  # and nothing of products.xml either


def test_archives_expanding_past_the_limit_are_refused(empty, tmp_path):
    empty.config["IMPORT_MAX_EXPANDED_BYTES"] = 1_000_000
    path = tmp_path / "bomb.zip"
    _zip(path, {"products.xml": GOOD.encode(), "padding.csv": b"0" * 2_000_000})
    assert "zip bomb" in refused(path)


def test_an_entry_with_a_suspicious_ratio_is_refused(empty, tmp_path):
    path = tmp_path / "bomb.zip"
    _zip(path, {"stock.csv": b"reference;quantity\n" + b"\n" * 5_000_000})
    assert "times its size" in refused(path)


def test_files_over_the_limit_are_refused_before_reading(empty, tmp_path):
    path = tmp_path / "huge.xml"
    with open(path, "wb") as fh:  # a sparse 20 GB file: reading it would take minutes
        fh.truncate(20 * 1024**3)
    message = refused(path)
    assert "over the import limit" in message


def test_xlsx_is_checked_like_an_archive(empty, tmp_path):
    empty.config["IMPORT_MAX_EXPANDED_BYTES"] = 100_000
    buffer = io.BytesIO()
    _zip(buffer, {"[Content_Types].xml": b"<x/>", "xl/worksheets/sheet1.xml": b" " * 200_000})
    path = tmp_path / "products.xlsx"
    path.write_bytes(buffer.getvalue())
    assert "zip bomb" in refused(path, entity="products")


def test_a_good_feed_still_imports(empty, tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text(GOOD)
    assert import_file(path).totals()["created"] == 1
