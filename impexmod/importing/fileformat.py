"""The formats an import reads, and a file's format from its name or its first bytes."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("xml", "csv", "xlsx", "zip")


def detect_format(path: Path, name: str | None = None) -> str:
    """The format of a file, from its name, else from its first bytes."""
    suffix = Path(name or path.name).suffix.lower().lstrip(".")
    if suffix in ("xml", "csv", "xlsx", "zip"):
        return suffix
    if suffix in ("tsv", "txt"):
        return "csv"
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK"):
        return "xlsx" if b"[Content_Types].xml" in head or b"xl/" in head else "zip"
    stripped = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \r\n\t")
    if stripped.startswith(b"<"):
        return "xml"
    return "csv"
