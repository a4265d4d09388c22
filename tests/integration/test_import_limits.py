"""Issue 12, items 4 and 5: a CSV whose quotes do not balance is a row error, never rows
silently swallowed into one cell; cells, archives and XLSX shared strings are bounded, and each
refusal names the limit and its setting. The hostile files are built here, small: the limits are
lowered in the app's config, except where a file at the default limits is cheap."""

from __future__ import annotations

import io
import json
import os
import tempfile
import tracemalloc
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing import Options, import_file
from impexmod.models import Language, Product, ProductLang
from impexmod.runs.feedstore import get_store

HEADER = "supplier_reference;name;price\n"


@pytest.fixture
def shop(app):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    return app


def keys() -> list[str]:
    """The supplier references of the products in the database."""
    from impexmod.models import Identity

    db.session.rollback()
    rows = db.session.execute(
        select(Identity.reference).where(Identity.entity_type == "product")
    ).scalars()
    return sorted(rows)


def product_count() -> int:
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(Product)).scalar()


def errors_of(report) -> list:
    """The report's errors (not warnings), printed: pytest shows them when a test fails."""
    found = [e for e in report.errors if e.severity == "error"]
    print(*found, sep="\n")
    return found


def rows(first: int, last: int) -> str:
    return "".join(f"P-{i};Product {i};{i},50\n" for i in range(first, last + 1))


# ------------------------------------------------------------------ CSV: unbalanced quotes


def test_an_unbalanced_quote_is_a_row_error_naming_its_line(shop, tmp_path):
    # Line 4 opens a quote it never closes; the quote that opens a cell on line 16 closes it,
    # so the csv module alone reads lines 4 to 16 as one row with a 13-line name: exit 0,
    # eleven products silently lost.
    path = tmp_path / "products.csv"
    path.write_text(
        HEADER
        + rows(1, 2)
        + 'P-3;"Product 3;3,50\n'
        + rows(4, 14)
        + 'P-15;"Fifteen";15\n'
        + rows(16, 18)
    )
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert (error.file, error.line, error.field) == ("products.csv", 4, "name")
    assert "line 4" in error.reason and "never closed" not in error.reason
    assert "13 lines" in error.reason and "11 rows" in error.reason, error.reason
    assert keys() == sorted(f"P-{i}" for i in (1, 2, 16, 17, 18))  # none imported wrongly
    assert not report.ok


def test_a_file_ending_inside_a_quoted_cell_is_a_row_error(shop, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(HEADER + rows(1, 3) + 'P-4;"Product 4;4\n' + rows(5, 9))
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert (error.line, error.field) == (5, "name")
    assert "never closed" in error.reason and "5 rows" in error.reason, error.reason
    assert keys() == ["P-1", "P-2", "P-3"]


def test_a_quote_opened_on_the_last_line_and_never_closed(shop, tmp_path):
    # Nothing after it to swallow: the csv module would take the cell as it is.
    path = tmp_path / "products.csv"
    path.write_text(HEADER + rows(1, 2) + 'P-3;"Product 3;3')
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert error.line == 4 and "never closed" in error.reason
    assert keys() == ["P-1", "P-2"]


def test_a_broken_field_count_after_a_multi_line_cell_is_a_row_error(shop, tmp_path):
    # The stray quote closes on a later row's quoted cell, which leaves the row with 5 cells.
    path = tmp_path / "products.csv"
    path.write_text(HEADER + 'P-1;"One\nstill one;1\nP-2;"Two;with;semicolons";2\n' + rows(3, 3))
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert error.line == 2 and "5 cells" in error.reason and "3 columns" in error.reason
    assert keys() == ["P-3"]


def test_delete_absent_is_refused_after_an_unbalanced_quote(shop, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(HEADER + rows(1, 10))
    assert import_file(path, Options(entity="products")).ok
    path.write_text(HEADER + rows(1, 2) + 'P-3;"Product 3;3\n' + rows(4, 10))
    report = import_file(path, Options(entity="products", delete=True))
    assert report.totals()["deleted"] == 0
    assert any("delete-absent refused" in e.reason for e in report.errors)
    assert len(keys()) == 10


def test_the_cli_exits_non_zero_and_names_the_line(shop, runner, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(HEADER + rows(1, 2) + 'P-3;"Product 3;3\n' + rows(4, 6))
    result = runner.invoke(args=["import", str(path), "--entity", "products", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["errors"] == 1 and data["created"] == 2
    (error,) = [e for e in data["error_list"] if e["severity"] == "error"]
    assert error["line"] == 4 and "quoted cell" in error["reason"]
    assert "Traceback" not in result.output


def test_legitimate_multi_line_cells_still_import(shop, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(
        b"supplier_reference;name;description[en];price\r\n"
        b'M-1;One;"First line\r\nsecond; with a semicolon\r\n\r\nfourth";1\r\n'
        b'M-2;"Two\nlines";"He said ""hi""\nthen left";2\r\n'
        b"M-3;Three;Plain;3\r\n"
    )
    report = import_file(path, Options(entity="products"))
    assert report.ok, [str(e) for e in report.errors]
    assert report.totals()["created"] == 3
    texts = db.session.execute(select(ProductLang.description).order_by(ProductLang.name)).all()
    assert [t for (t,) in texts] == [
        "First line\r\nsecond; with a semicolon\r\n\r\nfourth",
        "Plain",
        'He said "hi"\nthen left',
    ]


def test_our_own_csv_export_with_multi_line_descriptions_imports_back(shop, tmp_path):
    text = "Line one\nLine two; semicolon\n<p>Caf&eacute;</p>"
    product = Product(reference="ML-1", price=5)
    db.session.add(product)
    db.session.flush()
    db.session.add(
        ProductLang(
            id_product=product.id, id_lang=1, name="Multi", link_rewrite="multi", description=text
        )
    )
    db.session.commit()
    task = exporters.create_exporter("products csv", "products", "csv")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    store = get_store()
    exported = store.path(task.id, store.current(task.id).name).read_bytes()
    assert b"Line one\n" in exported or b"Line one\r\n" in exported
    db.session.execute(db.update(ProductLang).values(description="changed"))
    db.session.commit()
    path = tmp_path / "products.csv"
    path.write_bytes(exported)
    report = import_file(path, Options(entity="products"))
    assert report.ok, [str(e) for e in report.errors]
    assert report.totals()["updated"] == 1
    db.session.rollback()
    assert db.session.execute(select(ProductLang.description)).scalar_one() == text


# ------------------------------------------------------------------ CSV: cell size


DESCRIBED = "supplier_reference;description[en];price;name\n"


def described(first: int, last: int) -> str:
    return "".join(f"P-{i};About {i};{i};Product {i}\n" for i in range(first, last + 1))


def test_a_cell_over_the_size_limit_is_a_row_error(shop, tmp_path):
    shop.config["IMPORT_MAX_CELL_BYTES"] = 1000
    path = tmp_path / "products.csv"
    path.write_text(DESCRIBED + described(1, 2) + f"P-3;{'x' * 1001};3;Three\n" + described(4, 5))
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert error.line == 4  # the column is not known: the reader stopped inside the cell
    assert "IMPORT_MAX_CELL_BYTES" in error.reason and "1,000" in error.reason
    assert keys() == ["P-1", "P-2", "P-4", "P-5"]


def test_a_quoted_cell_over_the_size_limit_is_skipped_to_its_end(shop, tmp_path):
    shop.config["IMPORT_MAX_CELL_BYTES"] = 1000
    long = "\n".join(["text; more text"] * 200)
    path = tmp_path / "products.csv"
    path.write_text(DESCRIBED + described(1, 2) + f'P-3;"{long}";3;Three\n' + described(4, 5))
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert error.line == 4 and "IMPORT_MAX_CELL_BYTES" in error.reason
    assert keys() == ["P-1", "P-2", "P-4", "P-5"]


def test_a_cell_counts_bytes_not_characters(shop, tmp_path):
    shop.config["IMPORT_MAX_CELL_BYTES"] = 1000
    path = tmp_path / "products.csv"
    path.write_text(DESCRIBED + f"P-1;{'é' * 600};1;One\nP-2;{'e' * 600};2;Two\n", encoding="utf-8")
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert (error.line, error.field) == (2, "description[en]") and "1,200 bytes" in error.reason
    assert keys() == ["P-2"]


def test_a_cell_just_over_the_default_limit(shop, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(DESCRIBED + f"P-1;{'x' * (1024 * 1024 + 1)};1;One\nP-2;Two;2;Two\n")
    report = import_file(path, Options(entity="products"))
    (error,) = errors_of(report)
    assert "1,048,576" in error.reason and "IMPORT_MAX_CELL_BYTES" in error.reason
    assert keys() == ["P-2"]


def test_memory_stays_flat_on_a_quote_that_swallows_a_large_file(shop, tmp_path):
    # 40 MB after an unbalanced quote: the reader must give up at the cell limit, not hold it.
    shop.config["IMPORT_MAX_CELL_BYTES"] = 64 * 1024
    path = tmp_path / "products.csv"
    with open(path, "w") as fh:
        fh.write(HEADER + 'P-0;"Zero;0\n')
        line = "P-1;Product one with a long name to fill the file up;1,50\n"
        for _ in range(40 * 1024 * 1024 // len(line)):
            fh.write(line)
    tracemalloc.start()
    try:
        report = import_file(path, Options(entity="products", dry_run=True))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (error,) = errors_of(report)
    assert error.line == 2 and "never closed" in error.reason
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes"


# ------------------------------------------------------------------ ZIP data groups


def _zip(path, entries, level=9) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in entries:
            archive.writestr(name, data)


@pytest.fixture
def private_tmp(tmp_path):
    """Extraction goes to a folder of this test's, so that what is left there can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = saved


def refused(path, **options) -> str:
    report = import_file(path, Options(**options))
    assert report.refused, [str(e) for e in report.errors]
    assert product_count() == 0
    return report.refused[0]


def test_a_thousand_mebibyte_entries_are_refused_at_the_default_limits(shop, tmp_path, private_tmp):
    # About 1 MB on disk, 1 GiB expanded: each entry is exactly 1 MiB, under the per-entry
    # ratio guard, and the whole stays under IMPORT_MAX_EXPANDED_BYTES.
    path = tmp_path / "group.zip"
    block = b"0" * (1024 * 1024)
    _zip(path, [(f"stock-{i:04d}.csv", block) for i in range(1000)])
    assert os.path.getsize(path) < 3 * 1024 * 1024
    message = refused(path)
    assert "group.zip" in message and "IMPORT_MAX_RATIO" in message and "zip bomb" in message
    assert list(private_tmp.iterdir()) == []  # nothing was extracted


def test_too_many_entries_are_refused_naming_the_setting(shop, tmp_path, private_tmp):
    shop.config["IMPORT_MAX_ZIP_ENTRIES"] = 5
    path = tmp_path / "group.zip"
    _zip(path, [(f"stock-{i}.csv", b"reference;quantity\nA;1\n") for i in range(6)])
    message = refused(path)
    assert "6 entries" in message and "IMPORT_MAX_ZIP_ENTRIES" in message and "5" in message
    assert list(private_tmp.iterdir()) == []


def test_a_total_expansion_over_the_limit_names_the_setting(shop, tmp_path):
    shop.config["IMPORT_MAX_EXPANDED_BYTES"] = 100_000
    path = tmp_path / "group.zip"
    _zip(path, [(f"stock-{i}.csv", os.urandom(30_000).hex().encode()) for i in range(3)])
    message = refused(path)
    assert "IMPORT_MAX_EXPANDED_BYTES" in message and "100,000" in message


def test_an_entry_over_the_file_limit_is_refused(shop, tmp_path):
    # A file of the group is held to the limit of a file imported on its own.
    shop.config["IMPORT_MAX_BYTES"] = 50_000
    path = tmp_path / "group.zip"
    _zip(path, [("stock.csv", b"reference;quantity\n" + os.urandom(30_000).hex().encode())])
    assert os.path.getsize(path) < 50_000
    message = refused(path)
    assert "stock.csv" in message and "IMPORT_MAX_BYTES" in message


def test_a_small_data_group_still_imports(shop, tmp_path):
    path = tmp_path / "group.zip"
    _zip(path, [("products.csv", (HEADER + rows(1, 3)).encode())])
    report = import_file(path)
    assert report.ok and report.totals()["created"] == 3


# ------------------------------------------------------------------ XLSX


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _shared(strings) -> bytes:
    body = "".join(f"<si><t>{s}</t></si>" for s in strings)
    return f'<sst xmlns="{MAIN}">{body}</sst>'.encode()


def _styles() -> str:
    """The stylesheet openpyxl writes."""
    buffer = io.BytesIO()
    Workbook().save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return archive.read("xl/styles.xml").decode()


STYLES = _styles()


def _workbook(
    path, names: list[str], shared: bytes | None = None, styles: str = STYLES, extra=()
) -> None:
    """An XLSX as Excel writes it (openpyxl writes none): its text in a shared-strings table
    the cells point into; ``shared`` and ``styles`` replace those parts, ``extra`` are added."""
    table = ["supplier_reference", "name", *names]
    cells = ['<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>']
    for i in range(len(names)):
        n = i + 2
        cells.append(
            f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>X-{i}</t></is></c>'
            f'<c r="B{n}" t="s"><v>{i + 2}</v></c></row>'
        )
    parts = [
        (
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{TYPE}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{TYPE}.sharedStrings+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{TYPE}.styles+xml"/>'
            "</Types>",
        ),
        (
            "_rels/.rels",
            f'<Relationships xmlns="{PACKAGE}"><Relationship Id="r1" Target="xl/workbook.xml"'
            f' Type="{OFFICE}/officeDocument"/></Relationships>',
        ),
        (
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{OFFICE}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="r1"/></sheets></workbook>',
        ),
        (
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PACKAGE}">'
            f'<Relationship Id="r1" Target="worksheets/sheet1.xml" Type="{OFFICE}/worksheet"/>'
            f'<Relationship Id="r2" Target="sharedStrings.xml" Type="{OFFICE}/sharedStrings"/>'
            f'<Relationship Id="r3" Target="styles.xml" Type="{OFFICE}/styles"/>'
            "</Relationships>",
        ),
        (
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{MAIN}"><sheetData>{"".join(cells)}</sheetData></worksheet>',
        ),
        ("xl/sharedStrings.xml", shared if shared is not None else _shared(table)),
        ("xl/styles.xml", styles),
        *extra,
    ]
    _zip(path, parts, level=6)


def test_an_xlsx_within_the_limits_imports(shop, tmp_path):
    path = tmp_path / "products.xlsx"
    _workbook(path, [f"Name {i}" for i in range(20)])
    report = import_file(path)
    assert report.ok, [str(e) for e in report.errors]
    assert report.totals()["created"] == 20
    assert db.session.execute(select(ProductLang.name).filter_by(name="Name 7")).scalar()


def test_too_many_shared_strings_are_refused_before_openpyxl_reads_them(shop, tmp_path):
    shop.config["IMPORT_MAX_SHARED_STRINGS"] = 100
    path = tmp_path / "products.xlsx"
    _workbook(path, [f"Name {i}" for i in range(150)])
    message = refused(path)
    assert "products.xlsx" in message and "shared strings" in message
    assert "IMPORT_MAX_SHARED_STRINGS" in message and "100" in message


def test_a_million_shared_strings_at_the_default_limits(shop, tmp_path):
    # openpyxl would spend half a minute on them; the count stops at the limit, memory flat.
    path = tmp_path / "products.xlsx"
    _workbook(path, ["one"], shared=_shared(f"s{i}" for i in range(1_000_000)))
    tracemalloc.start()
    try:
        message = refused(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "shared strings" in message and "IMPORT_MAX_SHARED_STRINGS" in message
    assert peak < 32 * 1024 * 1024, f"{peak:,} bytes"


def test_shared_strings_too_large_are_refused_from_their_declared_size(shop, tmp_path):
    shop.config["IMPORT_MAX_XLSX_PART_BYTES"] = 100_000
    path = tmp_path / "products.xlsx"
    table = ["supplier_reference", "name", os.urandom(60_000).hex()]
    _workbook(path, ["one"], shared=_shared(table))
    message = refused(path)
    assert "shared strings" in message and "xl/sharedStrings.xml" in message
    assert "IMPORT_MAX_XLSX_PART_BYTES" in message and "100,000" in message


def test_another_part_read_whole_is_bounded_too(shop, tmp_path):
    shop.config["IMPORT_MAX_XLSX_PART_BYTES"] = 100_000
    path = tmp_path / "products.xlsx"
    padded = STYLES.replace("<numFmts", f"<!-- {os.urandom(60_000).hex()} --><numFmts", 1)
    _workbook(path, ["one"], styles=padded)
    message = refused(path)
    assert "xl/styles.xml" in message and "IMPORT_MAX_XLSX_PART_BYTES" in message


def test_an_xlsx_bomb_of_small_entries_is_refused_by_the_archive_ratio(shop, tmp_path):
    path = tmp_path / "products.xlsx"
    padding = [(f"xl/media/pad{i}.bin", b"\0" * (1024 * 1024)) for i in range(300)]
    _workbook(path, ["one"], extra=padding)
    message = refused(path)
    assert "IMPORT_MAX_RATIO" in message


def test_a_damaged_shared_strings_part_is_a_clear_refusal(shop, tmp_path):
    path = tmp_path / "products.xlsx"
    _workbook(path, ["one"], shared=f'<sst xmlns="{MAIN}"><si><t>cut'.encode())
    message = refused(path)
    assert "products.xlsx" in message and "shared strings" in message
