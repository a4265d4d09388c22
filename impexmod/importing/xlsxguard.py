"""XLSX checks before openpyxl opens a workbook: what it would read whole must be bounded.

An XLSX is a ZIP, so it first passes the archive checks of :func:`zipguard.check_zip` (entries,
expanded size, ratio). openpyxl streams the sheets in read-only mode but reads the rest whole,
the shared-strings table above all (a list of every string, about four times the XML's size in
memory, and a Python object per string). So, from the archive's directory, every part it reads
whole is held to ``IMPORT_MAX_XLSX_PART_BYTES`` of declared size (Python's zipfile stops at the
declared size, so a lying directory gains nothing), and the shared strings are counted by a
streaming pass that keeps nothing and stops at ``IMPORT_MAX_SHARED_STRINGS``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree

from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused
from impexmod.importing.zipguard import check_zip

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
CONTENT_TYPES = "[Content_Types].xml"


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _read_whole(info: zipfile.ZipInfo) -> bool:
    """Whether openpyxl (read-only) reads this part whole: XML outside the streamed sheets."""
    name = info.filename
    return name.endswith((".xml", ".rels")) and not name.startswith("xl/worksheets/")


def shared_strings_parts(archive: zipfile.ZipFile, label: str) -> list[str]:
    """The parts holding shared strings, found as openpyxl finds them (the content types)."""
    try:
        types = etree.fromstring(archive.read(CONTENT_TYPES), _safe_parser())
    except KeyError:
        return []  # openpyxl refuses it on its own, clearly enough
    except etree.XMLSyntaxError as exc:
        raise ImportRefused(f"{label}: not a readable XLSX file: {CONTENT_TYPES}: {exc}") from None
    return [
        override.get("PartName", "").lstrip("/")
        for override in types.iter(f"{{{TYPES}}}Override")
        if override.get("ContentType") == SHARED_STRINGS
    ]


def check_xlsx(path: Path, label: str) -> None:
    """Refuse an XLSX whose parts read whole, or whose shared strings, pass the limits."""
    infos = {info.filename: info for info in check_zip(path, label)}
    limit = int(setting("IMPORT_MAX_XLSX_PART_BYTES"))
    with zipfile.ZipFile(path) as archive:
        strings = shared_strings_parts(archive, label)
        for info in infos.values():
            if info.file_size > limit and (_read_whole(info) or info.filename in strings):
                what = (
                    f"its shared strings ({info.filename})"
                    if info.filename in strings
                    else f"{info.filename}, which is read whole,"
                )
                raise ImportRefused(
                    f"{label}: refused: {what} expand to {info.file_size:,} bytes, over the"
                    f" limit of {limit:,} bytes (IMPORT_MAX_XLSX_PART_BYTES)"
                )
        for name in strings:
            if name in infos:
                _count_strings(archive, name, label)


def _count_strings(archive: zipfile.ZipFile, name: str, label: str) -> None:
    limit = int(setting("IMPORT_MAX_SHARED_STRINGS"))
    count = 0
    with archive.open(name) as stream:
        events = etree.iterparse(
            stream,
            events=("end",),
            tag=f"{{{MAIN}}}si",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        try:
            for _, element in events:
                count += 1
                if count > limit:
                    raise ImportRefused(
                        f"{label}: refused: more than {limit:,} shared strings in {name}"
                        " (IMPORT_MAX_SHARED_STRINGS)"
                    )
                # Nothing is kept: the string and those before it are dropped from the tree.
                element.clear()
                parent = element.getparent()
                while element.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as exc:
            raise ImportRefused(
                f"{label}: not a readable XLSX file: its shared strings ({name}): {exc}"
            ) from None
        except zipfile.BadZipFile as exc:
            raise ImportRefused(f"{label}: not a readable XLSX file: {name}: {exc}") from None
