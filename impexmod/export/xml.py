"""The native Advanced Importer XML writer: streams ``<advancedimporter>`` and its entities.

Entities come from their descriptors as text (:mod:`impexmod.entities.xmltext`), byte for byte
what lxml would serialise, and are written as they are: the whole tree is never held.
"""

from __future__ import annotations

from typing import BinaryIO

from impexmod.entities.xmltext import attributes, checked

DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>\n"
ROOT = "advancedimporter"


class NativeXmlWriter:
    """Writes ``<advancedimporter>`` and its entity elements one by one."""

    ext = "xml"
    OPTIONS: dict[str, str] = {}
    # Parts of a feed join byte for byte: one declaration and root, then their elements.
    SPLITTABLE = True

    def __init__(self, fh: BinaryIO, setup):
        self._fh = fh
        self._root_attrs = {k: v for k, v in setup.root.items() if v is not None}

    def __enter__(self) -> NativeXmlWriter:
        start = checked(f"<{ROOT}{attributes(self._root_attrs)}>\n", "the feed's root attributes")
        self._fh.write(DECLARATION + start)
        return self

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one loaded entity as its native element."""
        self._fh.write(descriptor.render_bytes(ctx, record))

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write a native deletion: ``<delete supplier-reference=".." source=".." type=".."/>``."""
        attrs = {"supplier-reference": key[0], "source": key[1], "type": descriptor.element}
        self._fh.write(checked(f"<delete{attributes(attrs)}/>\n", "a deletion"))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._fh.write(f"</{ROOT}>".encode())
        return False
