"""CSV rows without silent loss: what the csv module takes in its stride is reported here.

Left alone, the csv module reads an unbalanced quote as a cell that runs on to the next quote,
or to the end of the file, and swallows the rows in between without a word. Each row is
therefore read with its lines counted, and a row is rejected (a row error naming its line) when:

* a quoted cell in it spans lines and holds lines that look like rows (as many delimiters as
  the header, less one), or leaves the row with more cells than the header has columns;
* the file ends inside a quoted cell (an end marker after the last line tells: the csv module
  reads it into the open cell);
* a cell is over ``IMPORT_MAX_CELL_BYTES``. The csv module is held to that many characters per
  cell, and the row to as many cells as the header at that size, so memory stays bounded
  whatever the file; the rest of an oversized row is skipped by counting its quotes.

Legitimate multi-line cells (descriptions with line breaks, as our own CSV export writes them)
hold no line with a whole row's delimiters, and are read as they are.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator
from typing import NamedTuple, TextIO

from impexmod.importing.errors import ImportRefused

field_size_limit = csv.field_size_limit
BREAK = re.compile(r"\r\n|\r|\n")
SKIP_PIECE = 1024 * 1024  # characters read at a time while skipping an oversized row


class Row(NamedTuple):
    """A row: its first line, its cells, and why it is rejected (column index, reason)."""

    line: int
    cells: list[str]
    problem: tuple[int | None, str] | None = None


class _Overflow(Exception):
    """The row being read is longer than its cells could be."""


class _Lines:
    """The lines of a text file for ``csv.reader``, with what it does not keep: line numbers,
    the size and quote count of the row being read, and an end marker after the last line."""

    def __init__(self, fh: TextIO):
        self.fh = fh
        self.readline = fh.readline
        self.marker = f"impexmod-end-of-file-{uuid.uuid4().hex}"
        self.line = 0  # line breaks read so far
        self.partial = False  # the last text read did not end with a line break
        self.ended = False  # the end marker has been given (or the end skipped to)
        self.chars = self.quotes = 0
        self.budget = 0

    def start_row(self, budget: int) -> int:
        """Begin a row allowed ``budget`` characters; its first line."""
        self.chars = self.quotes = 0
        self.budget = budget
        return self.line + 1

    def last_line(self) -> int:
        """The line the row read so far ends on."""
        return self.line + 1 if self.partial else self.line

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.ended:
            raise StopIteration
        text = self.readline(self.budget - self.chars + 1)
        if not text:
            self.ended = True
            return self.marker
        self._took(text)
        if self.chars > self.budget:
            raise _Overflow
        return text

    def _took(self, text: str) -> None:
        self.chars += len(text)
        if '"' in text:
            self.quotes += text.count('"')
        self.partial = text[-1] not in "\r\n"
        if not self.partial:
            self.line += 1

    def skip_row(self) -> bool:
        """Read on to the end of the row, judged by its quotes (an even count closes every
        quoted cell); False if the file ends inside a quoted cell."""
        while self.partial or self.quotes % 2:
            text = self.fh.readline(SKIP_PIECE)
            if not text:
                self.ended = True
                return not self.quotes % 2
            self._took(text)
        return True


def _oversized(cells: list[str], limit: int) -> tuple[int, int] | None:
    """(column, bytes) of the first cell over ``limit`` bytes in UTF-8."""
    shortest = limit // 4  # a character is at most 4 bytes: fewer cannot be too many
    if not cells or max(map(len, cells)) <= shortest:
        return None  # the usual case, decided without a Python loop
    for index, cell in enumerate(cells):
        if len(cell) > shortest:
            size = len(cell.encode("utf-8", "surrogatepass"))
            if size > limit:
                return index, size
    return None


def oversized_problem(cells: list[str], line: int, limit: int) -> tuple[int, str] | None:
    """A row error for a cell over ``limit`` bytes (``IMPORT_MAX_CELL_BYTES``), if any."""
    found = _oversized(cells, limit)
    if found is None:
        return None
    index, size = found
    return index, (
        f"line {line}: a cell of {size:,} bytes is over the limit of {limit:,} bytes"
        " (IMPORT_MAX_CELL_BYTES); the row is not imported"
    )


def _rows_in(parts: list[str], delimiter: str, width: int) -> int:
    """How many of these lines look like a whole row of the file."""
    return sum(1 for p in parts if p.strip() and p.count(delimiter) == width - 1)


def _spanning(
    cells: list[str], start: int, end: int, delimiter: str, width: int, unclosed: bool
) -> tuple[int, str] | None:
    """A row error for a row whose quoted cell spans lines and looks like swallowed rows."""
    line, opened, rows = start, None, 0
    for index, cell in enumerate(cells):
        if "\n" not in cell and "\r" not in cell:
            continue
        parts = BREAK.split(cell)
        if opened is None:
            opened = (index, line)
        # A cell's first line ends a row's beginning and its last one starts a row's end:
        # only the lines between are whole, unless the file ended inside the cell.
        rows += _rows_in(parts[1:] if unclosed else parts[1:-1], delimiter, width)
        line += len(parts) - 1
    if opened is None:
        if not unclosed:
            return None
        opened = (len(cells) - 1, end)
    index, where = opened
    holds = f" and holds what look like {rows:,} rows" if rows else ""
    if unclosed:
        return index, (
            f"line {where}: a quoted cell opened here is never closed: it runs to the end of"
            f" the file (line {end}){holds}; the row is not imported"
        )
    if rows:
        return index, (
            f"line {where}: a quoted cell opened here runs over {end - where + 1:,} lines (to"
            f" line {end}){holds}: its quote is probably unbalanced; the row is not imported"
        )
    if len(cells) > width:
        return index, (
            f"line {where}: a quoted cell opened here runs over {end - where + 1:,} lines (to"
            f" line {end}) and leaves its row with {len(cells)} cells where the header has"
            f" {width} columns: a quote is probably unbalanced; the row is not imported"
        )
    return None


def read_rows(fh: TextIO, label: str, delimiter: str, limit: int) -> Iterator[Row]:
    """The rows of an open CSV text file, header first, each with its problem if any."""
    lines = _Lines(fh)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"')
    width = 0  # the header's columns, once read
    while True:
        # A row may not be longer than its cells, each at the limit, quotes doubled.
        start = lines.start_row(max(width, 1) * (2 * limit + 3) + 2)
        failed = False
        # The csv module's cell limit is process-wide: set for this one read (others in the
        # process, and this generator while suspended, read as they would), in characters,
        # never more than the bytes they take.
        previous = field_size_limit(limit)
        try:
            cells = next(reader, None)
        except (_Overflow, csv.Error) as exc:
            failed = True
            one_cell = "field limit" in str(exc)
            if isinstance(exc, csv.Error) and not one_cell:
                raise ImportRefused(f"{label}:{lines.last_line()}: not valid CSV: {exc}") from None
            if not width:
                raise ImportRefused(
                    f"{label}: the header row is over the limit of {limit:,} bytes for a cell"
                    " (IMPORT_MAX_CELL_BYTES)"
                ) from None
            cells = None
        finally:
            field_size_limit(previous)
        if failed:
            yield _skipped(lines, start, limit, width, one_cell)
            if lines.ended:
                return
            reader = csv.reader(lines, delimiter=delimiter, quotechar='"')  # a fresh state
            continue
        if cells is None:
            return
        unclosed = lines.ended
        if unclosed:
            if cells == [lines.marker]:
                return  # the file ended between rows, as it should
            cells[-1] = cells[-1].removesuffix(lines.marker)
        end = lines.last_line()
        if not width:
            if unclosed:
                raise ImportRefused(f"{label}: a quoted cell of the header is never closed")
            width = len(cells)
            yield Row(start, cells)
            continue
        problem = oversized_problem(cells, start, limit)
        if problem is None and (end > start or unclosed):
            problem = _spanning(cells, start, end, delimiter, width, unclosed)
        yield Row(start, cells, problem)
        if unclosed:
            return


def _skipped(lines: _Lines, start: int, limit: int, width: int, one_cell: bool) -> Row:
    """The row error for a row read no further than the limit allows, the rest skipped."""
    closed = lines.skip_row()
    end = lines.last_line()
    what = (
        f"a cell longer than the limit of {limit:,} bytes"
        if one_cell
        else f"the row is longer than its {width} cells can be at {limit:,} bytes each"
    )
    if not closed:
        reason = (
            f"line {start}: a quoted cell opened here is never closed: it runs to the end of"
            f" the file (line {end}), {what} (IMPORT_MAX_CELL_BYTES); the rest of the file"
            " is not imported"
        )
    else:
        reason = (
            f"line {start}: {what} (IMPORT_MAX_CELL_BYTES); the row (lines {start} to {end})"
            " is not imported"
        )
    return Row(start, [], (None, reason))
