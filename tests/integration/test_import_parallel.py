# ruff: noqa: E501  (the feed below is written as a merchant would)
"""A native feed parsed by a second process (large feeds) imports exactly as one parsed
in-process: same report, same rows; the parser process's failures end the import clearly."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing import ImportRefused, import_file
from impexmod.importing.pipeline import ParsedFeed
from impexmod.runs.feedstore import get_store
from tests.e2e.test_stock_sync import _shop, sqlite_template  # noqa: F401 (a fixture)

# Bookkeeping that differs between two runs of the same import.
STAMPS = {"date_add", "date_upd", "changed_at"}

TRICKY = """<?xml version="1.0" encoding="UTF-8"?>
<advancedimporter source="Acme">
  <!-- a comment, and elements impexmod does not import -->
  <manufacturer>not an entity</manufacturer>
  <product supplier-reference="T-1" tax="include" remove-missing-tags="yes">
    <reference>T-REF-1</reference>
    <name lang="en">Chair</name>
    <name lang="de">Stuhl</name>
    <name>Everywhere</name>
    <price tax="include">12.5</price>
    <id_tax_rules_group>1</id_tax_rules_group>
    <active>oui</active>
    <colour>red</colour>
    <id_manufacturer identifier="name" type="manufacturer">Acme Corp</id_manufacturer>
    <categorypath separator="/">Home / Kids / Toys</categorypath>
    <tag lang="en">red</tag>
    <tag>everywhere</tag>
    <stock mode="delta"><quantity>-2</quantity></stock>
    <image><url>https://cdn.test/t1.jpg</url><legend lang="en">Front</legend><cover>1</cover></image>
    <combination supplier-reference="T-1-S">
      <reference>T-REF-1-S</reference>
      <price>13</price>
      <attributeGroup supplier-reference="G-SIZE"><name lang="en">Size</name>
        <attribute supplier-reference="A-S"><name lang="en">S</name></attribute>
      </attributeGroup>
      <stock><quantity>3</quantity></stock>
      <image><url>https://cdn.test/t1.jpg</url></image>
    </combination>
  </product>
  <product supplier-reference="T-2"><price>abc</price><name lang="en">Bad price</name></product>
  <product supplier-reference="T-3"><reference>X</reference></product>
  <product supplier-reference="T-4" mode="sometimes"><name lang="en">Bad mode</name></product>
  <stock mode="set"><quantity>5</quantity><product supplier-reference="product">T-1</product></stock>
  <stock><quantity>1</quantity><product supplier-reference="product">NOWHERE</product></stock>
  <delete supplier-reference="T-9" type="product"/>
  <delete type="nothing"/>
</advancedimporter>
"""


def _rows(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows, without timestamps and change-log ids, sorted."""
    out = {}
    with sqlite3.connect(path) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for name in names:
            columns = [
                r[1]
                for r in conn.execute(f'PRAGMA table_info("{name}")')
                if r[1] not in STAMPS and not (name == "entity_change" and r[1] == "id")
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(f'SELECT {select} FROM "{name}"').fetchall()
            out[name] = sorted(rows, key=repr)
    return out


def _report(report) -> dict:
    data = report.to_dict()
    data.pop("diffs")
    return data


def _export_products(shop) -> bytes:
    with shop.app_context():
        from impexmod.factories.seed import seed_catalog

        seed_catalog(db.engine, 40, seed=7)
        task = exporters.create_exporter("products", "products")
        run = jobs.start_run(task, inline=True)
        assert run.status == "succeeded", run.error
        store = get_store()
        return store.path(task.id, store.current(task.id).name).read_bytes()


def test_a_feed_parsed_by_a_second_process_imports_the_same(sqlite_template, tmp_path):  # noqa: F811
    feeds = {"products.xml": _export_products(_shop(sqlite_template, tmp_path / "a", "shopa"))}
    feeds["tricky.xml"] = TRICKY.encode()
    for name, data in feeds.items():
        (tmp_path / name).write_bytes(data)
    results = {}
    for mode, threshold in (("in-process", 0), ("parser process", 1)):
        # Both shops start without languages: the first feed gives them theirs.
        shop = _shop(sqlite_template, tmp_path / mode, "shopb")
        shop.config["IMPORT_PARALLEL_BYTES"] = threshold
        with shop.app_context():
            with db.engine.begin() as conn:
                assert conn.execute(text("SELECT count(*) FROM language")).scalar() == 0
            reports = [_report(import_file(tmp_path / name)) for name in feeds]
            reports.append(_report(import_file(tmp_path / "products.xml")))  # unchanged now
            db.engine.dispose()
        results[mode] = reports, _rows(tmp_path / mode / "shop.sqlite3")
    (in_process, rows), (parallel, parallel_rows) = results["in-process"], results["parser process"]
    assert in_process[0]["created"] > 100 and in_process[2]["unchanged"] > 100
    tricky = in_process[1]
    assert tricky["errors"] >= 4 and tricky["warnings"] >= 3, tricky["error_list"]
    assert any("T-2" in e["path"] or e["field"] == "price" for e in tricky["error_list"])
    assert parallel == in_process
    assert rows["product"] and parallel_rows == rows


def test_a_feed_the_parser_process_cannot_read_is_refused(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<advancedimporter><product supplier-reference='X'><name>")
    with ParsedFeed(broken, "broken.xml", "supplier:x", {"en"}) as feed:
        with pytest.raises(ImportRefused, match="broken.xml: not well-formed XML"):
            list(feed.entries(lambda error: None, lambda iso: True))


def test_a_failing_parser_process_ends_the_import_with_its_traceback(tmp_path):
    with ParsedFeed(tmp_path / "missing.xml", "missing.xml", "supplier:x", {"en"}) as feed:
        with pytest.raises(RuntimeError, match="parsing process failed(.|\n)*missing.xml"):
            list(feed.entries(lambda error: None, lambda iso: True))


def test_a_parser_process_that_dies_is_an_error_not_a_hang(tmp_path):
    feed_file = tmp_path / "feed.xml"
    feed_file.write_text(TRICKY)
    with ParsedFeed(feed_file, "feed.xml", "supplier:x", {"en"}) as feed:
        feed.process.kill()
        feed.process.wait()
        with pytest.raises(RuntimeError, match="ended unexpectedly"):
            list(feed.entries(lambda error: None, lambda iso: True))


def test_stopping_early_stops_the_parser_process(tmp_path):
    feed_file = tmp_path / "big.xml"
    products = "".join(
        f'<product supplier-reference="P-{i}"><name lang="en">Product {i}</name></product>'
        for i in range(20_000)
    )
    feed_file.write_text(f"<advancedimporter>{products}</advancedimporter>")
    feed = ParsedFeed(feed_file, "big.xml", "supplier:x", {"en"})
    first = next(feed.entries(lambda error: None, lambda iso: True))
    assert first.ref.reference == "P-0"
    feed.close()
    assert feed.process.returncode is not None  # ended, and reaped: no zombie left


def _long_feed(path: Path, products: int, length: int = 10_000) -> None:
    """Products with a long description each: about ``length`` bytes each down the pipe."""
    with open(path, "w") as out:
        out.write("<advancedimporter>\n")
        for i in range(products):
            out.write(
                f'<product supplier-reference="L-{i}"><name lang="en">Long {i}</name>'
                f'<description lang="en">{"x" * length}</description></product>\n'
            )
        out.write("</advancedimporter>\n")


def test_the_parser_runs_ahead_of_a_busy_writer_by_more_than_a_pipe(tmp_path):
    # 3 MB of messages: a pipe holds 1 MiB, so without the inbox thread the parser process
    # would wait for the writer to read.
    feed_file = tmp_path / "long.xml"
    _long_feed(feed_file, 300)
    with ParsedFeed(feed_file, "long.xml", "supplier:x", {"en"}) as feed:
        assert feed.process.wait(60) == 0  # done before anything was asked of it
        entries = [e for e in feed.entries(lambda error: None, lambda iso: True) if e]
    assert [e.ref.reference for e in entries] == [f"L-{i}" for i in range(300)]
    assert len(entries[-1].langs["description"]["en"]) == 10_000


def test_the_parser_waits_once_the_inbox_is_full(tmp_path, monkeypatch):
    from impexmod.importing import pipeline

    monkeypatch.setattr(pipeline, "INBOX_BYTES", 64 * 1024)
    feed_file = tmp_path / "long.xml"
    _long_feed(feed_file, 5000, 1000)  # batches of 100 KB, 5 MB in all
    with ParsedFeed(feed_file, "long.xml", "supplier:x", {"en"}) as feed:
        # 1 MiB in the pipe and 64 KiB in the inbox, of 5 MB: it cannot have finished.
        with pytest.raises(subprocess.TimeoutExpired):
            feed.process.wait(3)
        assert 0 < feed.inbox._queued <= 64 * 1024 + 110_000  # the limit, one batch past it
        entries = [e for e in feed.entries(lambda error: None, lambda iso: True) if e]
        assert len(entries) == 5000
        assert feed.process.wait(60) == 0


def test_a_cut_or_garbled_message_from_the_parser_ends_the_stream_not_hangs():
    import os
    import struct

    from impexmod.importing.pipeline import _Inbox

    read_fd, write_fd = os.pipe()
    os.write(write_fd, struct.pack("!Q", 5) + b"whole" + struct.pack("!Q", 100) + b"cut")
    os.close(write_fd)
    inbox = _Inbox(read_fd, 1024)
    assert inbox.get() == b"whole"
    assert inbox.get() is None  # the second one ends before its 100 bytes
    inbox.close()

    read_fd, write_fd = os.pipe()
    os.write(write_fd, struct.pack("!Q", 2**62))  # no buffer that large: the thread fails
    os.close(write_fd)
    inbox = _Inbox(read_fd, 1024)
    with pytest.raises(MemoryError):
        inbox.get()
    inbox.close()
