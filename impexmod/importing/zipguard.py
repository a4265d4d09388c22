"""The ZIP guard: archives (data groups, and every XLSX, which is one) checked before use.

Every archive is checked from its directory before anything is extracted: no absolute or ``..``
path, no link, not too many entries, not too large once expanded (in all, or an entry past the
limit of a file), no entry and no whole archive that expands suspiciously more than it weighs.
Each refusal names its limit and setting. Extraction counts the bytes it writes too, since a
directory can lie.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in path.parts


# Below this, an entry (or a whole archive) expanding many times is harmless: text compresses.
RATIO_FLOOR = 1024 * 1024


def check_zip(path: Path, label: str) -> list[zipfile.ZipInfo]:
    """The file entries of an archive, or ImportRefused naming what is wrong and which limit."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRefused(f"{label}: not a readable ZIP archive: {exc}") from None
    with archive:
        infos = archive.infolist()
    entries = int(setting("IMPORT_MAX_ZIP_ENTRIES"))
    if len(infos) > entries:
        raise ImportRefused(
            f"{label}: refused: {len(infos):,} entries, more than an archive may hold"
            f" ({entries:,}, IMPORT_MAX_ZIP_ENTRIES)"
        )
    total = packed = 0
    limit = int(setting("IMPORT_MAX_EXPANDED_BYTES"))
    per_file = int(setting("IMPORT_MAX_BYTES"))
    ratio = int(setting("IMPORT_MAX_RATIO"))
    for info in infos:
        if _unsafe(info.filename):
            raise ImportRefused(f"{label}: refused: unsafe path {info.filename!r} in the archive")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ImportRefused(f"{label}: refused: {info.filename!r} is a symbolic link")
        total += info.file_size
        packed += info.compress_size
        if total > limit:
            raise ImportRefused(
                f"{label}: refused: expands to more than {limit:,} bytes"
                " (IMPORT_MAX_EXPANDED_BYTES; zip bomb guard)"
            )
        if info.file_size > per_file:
            # An entry is imported as a file: the same limit as a file imported on its own.
            raise ImportRefused(
                f"{label}: refused: {info.filename!r} expands to {info.file_size:,} bytes, over"
                f" the limit of {per_file:,} bytes for one file (IMPORT_MAX_BYTES)"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > ratio * max(info.compress_size, 1):
            times = info.file_size // max(info.compress_size, 1)
            raise ImportRefused(
                f"{label}: refused: {info.filename!r} expands {times:,} times its size, more"
                f" than {ratio} (IMPORT_MAX_RATIO; zip bomb guard)"
            )
    # Entries each under the floor add up: 1,000 entries of 1 MiB of zeros weigh 1 MB in all.
    if total > RATIO_FLOOR and total > ratio * max(packed, 1):
        raise ImportRefused(
            f"{label}: refused: its {len(infos):,} entries expand {total // max(packed, 1):,}"
            f" times their size ({total:,} bytes from {packed:,}), more than {ratio}"
            " (IMPORT_MAX_RATIO; zip bomb guard)"
        )
    return [i for i in infos if not i.is_dir()]


def extract(path: Path, label: str, folder: Path) -> list[tuple[str, Path]]:
    """Extract a checked archive into ``folder``; (name in the archive, extracted path)."""
    infos = check_zip(path, label)
    limit = int(setting("IMPORT_MAX_EXPANDED_BYTES"))
    written = 0
    out = []
    with zipfile.ZipFile(path) as archive:
        for index, info in enumerate(infos):
            target = folder / f"{index:04d}-{PurePosixPath(info.filename).name}"
            with archive.open(info) as src, open(target, "wb") as dst:
                while block := src.read(1024 * 1024):
                    written += len(block)
                    if written > limit:
                        raise ImportRefused(
                            f"{label}: refused: expands past {limit:,} bytes"
                            " (IMPORT_MAX_EXPANDED_BYTES; zip bomb guard)"
                        )
                    dst.write(block)
            out.append((info.filename, target))
    return out
