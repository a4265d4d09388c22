"""The CLI on long work: progress on stderr (plain lines, or a bar on a terminal) for exports,
imports and seeds, and one-line errors for a wrong entity, option, file or URL."""

from __future__ import annotations

import functools
import json
import os
import pty
import re
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from impexmod import create_app
from impexmod.cli import cli
from impexmod.cli import progress as cli_progress
from impexmod.export.definition import create_exporter
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.importing.definition import create_importer

PRODUCTS = 30
LINE = re.compile(r"^(?P<label>[^:\n]+): (?P<done>[\d,]+) / (?P<total>[\d,]+) \w+ \((\d+)%\), ")


@pytest.fixture
def every_update(monkeypatch):
    """A line (or a redraw) at each progress commit, from the start: no wait in tests."""
    monkeypatch.setattr(cli_progress, "INTERVAL", 0.0)
    monkeypatch.setattr(cli_progress, "DELAY", 0.0)
    monkeypatch.setattr(cli_progress, "REDRAW", 0.0)


@pytest.fixture
def catalog(app):
    """A small catalog exported in chunks of 5 products: 6 progress commits."""
    app.config["CHUNK_SIZE"] = 5
    seed_catalog(db.engine, PRODUCTS, seed=0)


def progress_lines(text: str, label: str) -> list[tuple[int, int]]:
    """(done, total) of each progress line of ``label``."""
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match["label"] == label:
            found.append(
                (int(match["done"].replace(",", "")), int(match["total"].replace(",", "")))
            )
    return found


def test_exporter_run_prints_progress_lines_then_its_summary(runner, catalog, every_update):
    task = create_exporter("Catalog", "products")
    result = runner.invoke(args=["exporter", "run", str(task.id)])
    assert result.exit_code == 0, result.output
    counts = progress_lines(result.stderr, f"Exporter {task.id} (products)")
    done = [d for d, _ in counts]
    assert done == sorted(done) and len(set(done)) >= 3, result.stderr
    assert counts[-1] == (PRODUCTS, PRODUCTS)
    end = result.stderr.strip().splitlines()[-1]
    assert re.search(r"\(100%\), [\d,]+/s in \d+\.\d s$", end), end
    # The result stays alone on stdout, for scripts.
    assert result.stdout.startswith(f"Run 1 of exporter {task.id}: succeeded, {PRODUCTS} entities")
    assert "entities (" not in result.stdout


def test_a_quick_run_prints_only_its_result(runner, catalog):
    task = create_exporter("Catalog", "products")
    result = runner.invoke(args=["exporter", "run", str(task.id)])
    assert result.exit_code == 0
    assert result.stderr == ""


def test_json_keeps_quiet_unless_lines_are_asked_for(runner, catalog, every_update):
    task = create_exporter("Catalog", "products")
    quiet = runner.invoke(args=["exporter", "run", str(task.id), "--json"])
    assert quiet.stderr == ""
    assert json.loads(quiet.output)["status"] == "succeeded"
    asked = runner.invoke(args=["exporter", "run", str(task.id), "--json", "--progress", "lines"])
    assert json.loads(asked.stdout)["status"] == "succeeded"
    assert progress_lines(asked.stderr, f"Exporter {task.id} (products)")[-1] == (30, 30)


def test_progress_none_and_the_environment(runner, catalog, every_update, monkeypatch):
    task = create_exporter("Catalog", "products")
    assert runner.invoke(args=["exporter", "run", str(task.id), "--progress", "none"]).stderr == ""
    monkeypatch.setenv("IMPEXMOD_PROGRESS", "none")
    assert runner.invoke(args=["exporter", "run", str(task.id)]).stderr == ""


def test_a_run_in_another_thread_is_followed_by_polling_its_row(app, catalog, every_update, capsys):
    """What ``--wait`` does for a run a worker performs: the meter reads the polled row."""
    from impexmod.dispatch import jobs
    from impexmod.runs import lifecycle

    task = create_exporter("Catalog", "products")

    def slowly(run):  # in the run's thread, at each progress commit
        time.sleep(0.05)

    with lifecycle.watching(slowly):
        run = jobs.start_run(task)  # no Redis, not inline: a background thread
        with cli_progress.Meter("Followed", "lines") as meter:
            ended = jobs.wait(run, timeout=60, poll=0.01, on_poll=meter.seen)
            meter.seen(ended)
    assert ended.status == "succeeded"
    counts = progress_lines(capsys.readouterr().err, "Followed")
    done = [d for d, _ in counts]
    assert len(set(done)) >= 2 and done == sorted(done), counts
    assert counts[-1] == (PRODUCTS, PRODUCTS)


def _products_csv(path, rows: int):
    lines = ["reference,name"] + [f"REF-{i},Product {i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_prints_progress_lines(app, runner, tmp_path, every_update):
    app.config["IMPORT_CHUNK"] = 1  # a chunk (and a progress call) per row
    path = _products_csv(tmp_path / "products.csv", 12)
    result = runner.invoke(args=["import", str(path), "--entity", "products"])
    counts = progress_lines(result.stderr, "Import of products.csv")
    assert len({d for d, _ in counts}) >= 3, result.output
    assert counts[-1] == (12, 12)
    assert result.stdout.startswith("12 created"), result.output


def test_importer_run_follows_the_run_row(app, runner, tmp_path, every_update):
    app.config["IMPORT_CHUNK"] = 1
    path = _products_csv(tmp_path / "products.csv", 12)
    task = create_importer("Stock", str(path), "products", "csv")
    result = runner.invoke(args=["importer", "run", str(task.id)])
    assert result.exit_code == 0, result.output
    counts = progress_lines(result.stderr, f"Importer {task.id}")
    assert len({d for d, _ in counts}) >= 3, result.output
    assert counts[-1] == (12, 12)
    assert f"of importer {task.id}: succeeded" in result.stdout


def test_seed_prints_progress_lines(runner, every_update, monkeypatch):
    from impexmod.factories import seed

    monkeypatch.setattr(seed, "seed_catalog", functools.partial(seed_catalog, batch_size=10))
    result = runner.invoke(args=["seed", "--products", "40"])
    assert result.exit_code == 0, result.output
    assert progress_lines(result.stderr, "Seeding") == [(10, 40), (20, 40), (30, 40), (40, 40)]
    assert result.stdout.startswith("Seeded 40 products")


def test_exporter_run_on_a_terminal_draws_a_bar(app, catalog, every_update, monkeypatch):
    """Under a pseudo-terminal (stderr a tty), the bar with counts, percent and rate."""
    task = create_exporter("Catalog", "products")
    main, follower = pty.openpty()
    received = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    terminal = os.fdopen(follower, "w", buffering=1)
    monkeypatch.setattr(sys, "stderr", terminal)
    cli.main(
        ["exporter", "run", str(task.id)],
        prog_name="impexmod",
        obj=ScriptInfo(create_app=lambda: app),
        standalone_mode=False,
    )
    terminal.close()
    reader.join(timeout=5)
    os.close(main)
    drawn = received.decode()
    assert "\r" in drawn  # redrawn in place
    assert re.search(r"Exporter \d+ \(products\)\s+\[#+-*\]\s+\d+/30\s+\d+%", drawn), drawn
    assert re.search(rf"\[#+\]\s+{PRODUCTS}/{PRODUCTS}\s+100%\s+[\d,]+/s", drawn), drawn
    assert "Traceback" not in drawn


# ------------------------------------------------------------------------------ errors


def impexmod(app, *args: str):
    """Run ``impexmod ARGS`` as its entry point does (the errors of its group)."""
    return CliRunner().invoke(
        cli, list(args), obj=ScriptInfo(create_app=lambda: app), prog_name="impexmod"
    )


@pytest.mark.parametrize(
    "args, code, said",
    [
        (
            ["exporter", "add", "--name", "x", "--entity", "prodcts"],
            2,
            "Error: Invalid value for '--entity': 'prodcts' is not one of 'products', "
            "'combinations'",
        ),
        (
            ["exporter", "add", "--name", "x"],
            2,
            "Error: Missing option '--entity'. Choose from: products, combinations",
        ),
        (
            ["exporter", "add", "--name", "x", "--entity", "products", "--option", "foo=1"],
            2,
            "format xml takes no option 'foo'",
        ),
        (
            ["exporter", "add", "--name", "x", "--entity", "products", "--option", "foo"],
            2,
            "'foo' is not KEY=VALUE",
        ),
        (
            ["exporter", "add", "--name", "x", "--entity", "products", "--format", "pdf"],
            2,
            "'pdf' is not one of 'xml', 'csv'",
        ),
        (["exporter", "run", "999"], 1, "Error: no task with id 999"),
        (["exportr", "list"], 2, "Error: No such command 'exportr'"),
        (["import", "/nonexistent/a.csv"], 1, "Error: /nonexistent/a.csv: no such file"),
        (["import", "products.csv", "--entity", "stok"], 2, "'stok' is not one of"),
        (["import", "products.csv", "--mode", "upsert"], 2, "choose among create, update, delete"),
        (
            ["import", "ftp://shop.test/products.csv"],
            2,
            "ftp:// is not supported; give a file path or an http(s) URL",
        ),
        (["import", "http://"], 2, "'http://' is not a valid URL"),
        (["import", "https://shop.test:99999/f.xml"], 2, "not a valid URL: Port out of range"),
        (
            ["import", "products.csv", "--errors", "/nonexistent/dir/errors.csv"],
            2,
            "Invalid value for --errors: /nonexistent/dir/errors.csv: no folder",
        ),
        (["importer", "add", "--name", "a", "--url", "notaurl"], 2, "an http(s) URL or an abs"),
        (["importer", "add", "--name", "a", "--url", "https://[::1/f.xml"], 2, "Invalid IPv6"),
        (["importer", "run", "999"], 1, "Error: no task with id 999"),
        (["importer", "errors", "999"], 1, "Error: no run with id 999"),
        (["template", "add", "--name", "t", "--entity", "prdcts"], 2, "'prdcts' is not one of"),
        (["template", "import", "/nonexistent.json"], 2, "No such file or directory"),
        (["stylesheet", "add", "/nonexistent.xsl"], 2, "'/nonexistent.xsl' does not exist"),
        (["seed", "--products", "0"], 2, "0 is not in the range x>=1"),
    ],
)
def test_errors_are_one_line(app, tmp_path, monkeypatch, args, code, said):
    monkeypatch.chdir(tmp_path)
    _products_csv(tmp_path / "products.csv", 1)
    result = impexmod(app, *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert said in lines[0]


def test_a_group_file_that_is_not_json(app, tmp_path):
    group = tmp_path / "group.json"
    group.write_text("pattern,entity\n")
    result = impexmod(
        app, "importer", "add", "--name", "a", "--url", "/x.zip", "--group", str(group)
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert (
        "Invalid value for --group: " in result.output
        and "not JSON: Expecting value" in result.output
    )


def test_a_database_without_schema(tmp_path):
    empty = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "SHOP_ID": "testshop",
            "TESTING": True,
            "REDIS_URL": None,
        }
    )
    try:
        result = impexmod(empty, "exporter", "list")
        assert result.exit_code == 1
        assert result.output == (
            "Error: the database has no impexmod schema: run `impexmod db upgrade` "
            "(or `impexmod demo`) first\n"
        )
    finally:
        with empty.app_context():
            db.engine.dispose()
