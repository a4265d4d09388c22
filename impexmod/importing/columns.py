"""The importer's reading of flat headers (CSV and XLSX), over the flat vocabulary that both
directions share (:mod:`impexmod.entities.flatvocab`) and the ``flat_columns`` of each entity
spec (here as ``FLAT_COLUMNS``, derived).
"""

from __future__ import annotations

from pathlib import Path

from impexmod.entities import derived
from impexmod.entities.derived import FLAT_COLUMNS
from impexmod.entities.flatvocab import KEY, LINK_FIELDS, SEPARATOR, FlatColumn  # noqa: F401
from impexmod.importing.errors import ImportRefused, RowError

# Unknown headers are named in warnings only when the file has a known column too (a file with
# none is not this entity's: its first line may be anything, a password file or a web page),
# and then no more of them than this, each cut to MAX_HEADER_SHOWN characters.
MAX_UNKNOWN_LISTED = 20
MAX_HEADER_SHOWN = 60


def column(entity: str, header: str) -> tuple[FlatColumn, str | None] | None:
    """The column a header names (with its language, for ``name[en]``), or None."""
    name, lang = header.strip(), None
    if name.endswith("]") and "[" in name:
        name, lang = name[:-1].split("[", 1)
    for col in FLAT_COLUMNS[entity]:
        # Links, and the category keys of ``categories``, may say whose keys they are.
        sourced = col.role == "link" or col.name == "categories"
        if col.name == name or (sourced and name == f"{col.name}_source"):
            if lang is not None and col.role not in ("lang", "list"):
                return None
            return col, lang
    return None


def headers(entity: str, languages: list[str]) -> list[str]:
    """Every canonical header of an entity, translated columns once per language."""
    out = []
    for col in FLAT_COLUMNS[entity]:
        if col.role == "lang" and languages:
            out.extend(f"{col.name}[{iso}]" for iso in languages)
        else:
            out.append(col.name)
    return out


def shown(header: str) -> str:
    """A header as a warning quotes it: on one line, at most ``MAX_HEADER_SHOWN`` characters."""
    text = " ".join(header.split())
    return text if len(text) <= MAX_HEADER_SHOWN else text[: MAX_HEADER_SHOWN - 1] + "…"


def check_header(entity: str, label: str, unknown: list[str], known: int) -> list[RowError]:
    """Warnings for the ``unknown`` headers of a file with ``known`` known columns, or
    ImportRefused, quoting nothing, when it has none (the file is not one of ``entity``)."""
    named = [c for c in unknown if c.strip()]
    if not known:
        kind = "XLSX file" if label.lower().endswith(".xlsx") else "CSV"
        raise ImportRefused(
            f"{label}: none of the {len(named)} columns of the first line is a column of "
            f"{entity}: is this a {entity} {kind}? (the columns are in docs/importing.md; other "
            f"headers need a saved mapping)"
        )
    warnings = [
        RowError(label, 1, "", shown(c), "unknown column; ignored", "warning")
        for c in named[:MAX_UNKNOWN_LISTED]
    ]
    if len(named) > MAX_UNKNOWN_LISTED:
        more = len(named) - MAX_UNKNOWN_LISTED
        warnings.append(
            RowError(label, 1, "", "", f"{more} more unknown columns; ignored", "warning")
        )
    return warnings


def entity_from_name(label: str) -> str | None:
    """The entity a file name suggests (``products.csv``, ``stock-2024.xlsx``...)."""
    stem = Path(label).name.lower().replace("-", "_")
    for entity in derived.FILE_PREFIXES:  # longest first
        if stem.startswith(entity) or stem.startswith(entity.rstrip("s")):
            return entity
    return None
