"""ZIP data groups: several files imported as one run, in dependency order.

Every archive is checked and extracted by :mod:`impexmod.importing.zipguard`; the files are
then imported parents first (the ``parents`` of the entity specs), each by the importer of its
format (``import_one``, given by the caller: :mod:`impexmod.importing.service`).
"""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from impexmod.entities import derived
from impexmod.importing.columns import entity_from_name
from impexmod.importing.errors import ImportRefused
from impexmod.importing.fileformat import detect_format
from impexmod.importing.zipguard import extract

# Files of a group are imported parents first.
ORDER = derived.FILE_ORDER  # from the ``parents`` of the entity specs


def plan(files: list[tuple[str, Path]], group: list[dict] | None) -> list[tuple[str, Path, dict]]:
    """Each file with its descriptor (entity, format, mapping), parents first; files no
    descriptor names are skipped by the caller with a warning."""
    planned = []
    for name, path in files:
        base = PurePosixPath(name).name
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        descriptor = next(
            (d for d in group or () if fnmatch.fnmatch(base.lower(), d["pattern"].lower())), None
        )
        fmt = (descriptor or {}).get("format") or detect_format(path, base)
        entity = (descriptor or {}).get("entity") or entity_from_name(base)
        planned.append(
            (
                name,
                path,
                {
                    "format": fmt,
                    "entity": entity,
                    "mapping": (descriptor or {}).get("mapping") or {},
                },
            )
        )

    def rank(item):
        entity = item[2]["entity"]
        if item[2]["format"] == "xml" and entity is None:
            return (-1, item[0])  # a native feed may hold anything: first
        return (ORDER.index(entity) if entity in ORDER else len(ORDER), item[0])

    return sorted(planned, key=rank)


def import_zip(importer, path: Path, label: str, import_one: Callable, progress=None) -> None:
    """Import every file of a data group with one importer (one run, results per file), each
    with ``import_one(importer, path, label, fmt, progress)``."""
    folder = Path(tempfile.mkdtemp(prefix="impexmod-group-"))
    options = importer.options
    try:
        files = extract(path, label, folder)
        for name, extracted, descriptor in plan(files, getattr(options, "group", None)):
            file_label = f"{label}/{name}"
            if descriptor["format"] not in ("xml", "csv", "xlsx"):
                importer.report.file = file_label
                importer.report.refuse(f"{file_label}: not a file a data group can hold")
                continue
            saved = (options.entity, options.mapping)
            options.entity = descriptor["entity"] or options.entity
            options.mapping = descriptor["mapping"] or options.mapping
            try:
                import_one(importer, extracted, file_label, descriptor["format"], progress)
            except ImportRefused as exc:
                importer.report.refuse(str(exc))
            finally:
                options.entity, options.mapping = saved
    finally:
        shutil.rmtree(folder, ignore_errors=True)
