"""What goes wrong in an import: a refused input (nothing is read or written) and row errors."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import NamedTuple


class ImportRefused(Exception):
    """The whole input is refused (hostile, too large, unreadable); nothing was written."""


class Origin(NamedTuple):
    """Where an entry comes from: file, line, and element path or CSV column.

    A named tuple: a feed makes one per nested entry, built without a Python ``__init__``
    where it is hot (``tuple.__new__(Origin, (file, line, path))``)."""

    file: str
    line: int | None = None
    path: str = ""


@dataclass(slots=True)
class RowError:
    """One bad row or element, or a warning about one."""

    file: str
    line: int | None
    path: str
    field: str
    reason: str
    severity: str = "error"

    @classmethod
    def at(cls, origin: Origin, field: str, reason: str, severity: str = "error") -> RowError:
        """An error located at ``origin``."""
        return cls(origin.file, origin.line, origin.path, field, reason, severity)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" [{self.field}]" if self.field else ""
        return f"{where} {self.path}{field}: {self.reason}"


class EntryError(ValueError):
    """A value that cannot be used; ``field`` names it."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


COLUMNS = ("severity", "file", "line", "path", "field", "reason")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    # A reason may quote the input: a spreadsheet must not run it as a formula.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def errors_csv(errors) -> str:
    """Row errors as a CSV document (what the panel and the CLI offer for download)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for error in errors:
        row = (
            asdict(error)
            if isinstance(error, RowError)
            else {c: getattr(error, c) for c in COLUMNS}
        )
        writer.writerow({c: _cell(row.get(c)) for c in COLUMNS})
    return out.getvalue()
