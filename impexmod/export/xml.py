"""The native Advanced Importer XML writer (streaming, through ``lxml.etree.xmlfile``)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import BinaryIO

from lxml import etree


class NativeXmlWriter:
    """Writes ``<advancedimporter>`` and its entity elements one by one, never the whole tree."""

    ext = "xml"
    OPTIONS: dict[str, str] = {}

    def __init__(self, fh: BinaryIO, setup):
        self._fh = fh
        self._root_attrs = {k: v for k, v in setup.root.items() if v is not None}
        self._stack = ExitStack()
        self._xf = None

    def __enter__(self) -> NativeXmlWriter:
        self._xf = self._stack.enter_context(etree.xmlfile(self._fh, encoding="utf-8"))
        self._xf.write_declaration()
        self._stack.enter_context(self._xf.element("advancedimporter", self._root_attrs))
        self._xf.write("\n")
        return self

    def write(self, element: etree._Element) -> None:
        """Write one entity element."""
        self._xf.write(element, pretty_print=True)

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one loaded entity as its native element."""
        self._xf.write(descriptor.build(ctx, record), pretty_print=True)

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write a native deletion: ``<delete supplier-reference=".." source=".." type=".."/>``."""
        attrs = {"supplier-reference": key[0], "source": key[1], "type": descriptor.element}
        self._xf.write(etree.Element("delete", attrs), pretty_print=True)

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)
