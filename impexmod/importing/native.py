"""Native Advanced Importer elements -> entries (see docs/importing.md for what is read).

Field elements are named after the columns of the entity's table; a field that links to another
entity carries the target's key as text and its type in ``supplier-reference`` (or matches it
with ``identifier`` and ``type``), and a link with neither is a plain local id of this shop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree
from sqlalchemy import Table

from impexmod.importing.entry import KINDS, OWN, Entry, Ref, converter
from impexmod.importing.errors import EntryError, Origin, RowError
from impexmod.models import (
    Address,
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Category,
    CategoryLang,
    Combination,
    Customer,
    Order,
    OrderDetail,
    OrderHistory,
    Product,
    ProductLang,
    SpecificPrice,
    StockAvailable,
)

MODES = ("both", "create", "update")
PRICES = ("price", "wholesale_price")
REMOVE_MISSING = ("remove-missing-tags", "remove-missing-combinations", "remove-missing-categories")
# Second-level elements the importer reads; only these reach Python while streaming.
TOP_LEVEL = (
    "product",
    "category",
    "combination",
    "stock",
    "tag",
    "specificPrice",
    "customer",
    "order",
    "delete",
    "disable",
)
IGNORED = {"id", "date_add", "date_upd"}


@dataclass(frozen=True)
class Shape:
    """How one native element maps to tables: values, translated values, links, nesting."""

    kind: str
    table: Table | None
    lang: Table | None = None
    links: dict[str, str] = field(default_factory=dict)  # field -> target kind
    nested: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # non-column values (kept as text)
    dates: bool = False  # date_add is data here (when an order was placed), not bookkeeping

    def columns(self):
        if self.table is None:
            return {}
        skip = (IGNORED - ({"date_add"} if self.dates else set())) | set(self.links)
        skip |= {"id_" + self.kind}
        return {c.name: c for c in self.table.columns if c.name not in skip}

    def lang_columns(self):
        if self.lang is None:
            return {}
        return {c.name: c for c in self.lang.columns if not c.primary_key}


SHAPES = {
    "product": Shape(
        "product",
        Product.__table__,
        ProductLang.__table__,
        {"id_manufacturer": "manufacturer", "id_category_default": "category"},
        ("category", "categorypath", "tag", "stock", "image", "specificPrice", "combination"),
    ),
    "combination": Shape(
        "combination",
        Combination.__table__,
        links={"id_product": "product"},
        nested=("attributeGroup", "stock", "image"),
    ),
    "category": Shape(
        "category",
        Category.__table__,
        CategoryLang.__table__,
        {"id_parent": "category"},
        ("category",),
    ),
    "attributeGroup": Shape(
        "attribute_group",
        AttributeGroup.__table__,
        AttributeGroupLang.__table__,
        nested=("attribute",),
    ),
    "attribute": Shape("attribute", Attribute.__table__, AttributeLang.__table__),
    "specificPrice": Shape(
        "specific_price",
        SpecificPrice.__table__,
        links={"id_product": "product", "id_product_attribute": "combination"},
    ),
    "stock": Shape(
        "stock",
        StockAvailable.__table__,
        links={"product": "product", "combination": "combination"},
    ),
    "tag": Shape("tag", None, extra=("name",)),
    "customer": Shape(
        "customer", Customer.__table__, links={"id_lang": "language"}, nested=("address",)
    ),
    "address": Shape("address", Address.__table__, links={"id_customer": "customer"}),
    "order": Shape(
        "order",
        Order.__table__,
        links={"id_customer": "customer", "current_state": "order_state"},
        nested=("address", "order_detail", "order_history"),
        dates=True,
    ),
    "order_detail": Shape(
        "order_detail",
        OrderDetail.__table__,
        links={"product_id": "product", "product_attribute_id": "combination"},
    ),
    "order_history": Shape(
        "order_history", OrderHistory.__table__, links={"id_order_state": "order_state"}, dates=True
    ),
}
# Columns a feed must not set directly: they are links or computed.
SHAPES_SKIP = {
    "stock": {"id_product", "id_product_attribute"},
    "attribute": {"id_attribute_group"},
    "order": {"id_address_delivery", "id_address_invoice"},
    "order_detail": {"id_order"},
    "order_history": {"id_order"},
}


@dataclass(frozen=True)
class Compiled:
    """A shape with a converter per field, built once per element name."""

    kind: str
    values: dict
    langs: dict
    links: dict
    nested: frozenset
    extra: frozenset


_COMPILED: dict[str, Compiled] = {}


def compiled(tag: str) -> Compiled:
    """The compiled shape of an element name."""
    plan = _COMPILED.get(tag)
    if plan is None:
        shape = SHAPES[tag]
        columns = shape.columns()
        for name in SHAPES_SKIP.get(tag, ()):
            columns.pop(name, None)
        plan = Compiled(
            kind=shape.kind,
            values={n: converter(c) for n, c in columns.items()},
            langs={n: converter(c) for n, c in shape.lang_columns().items()},
            links=dict(shape.links),
            nested=frozenset(shape.nested),
            extra=frozenset(shape.extra),
        )
        _COMPILED[tag] = plan
    return plan


@lru_cache(maxsize=4096)
def normalise_source(source: str | None) -> str | None:
    """``Acme`` -> ``supplier:Acme``; ``shop:x`` and ``supplier:x`` are kept."""
    if not source:
        return None
    source = source.strip()
    return source if ":" in source else f"supplier:{source}"


class NativeParser:
    """Turns the second-level elements of one feed into entries."""

    def __init__(self, label: str, source: str, languages: set[str], warn, add_language=None):
        self.label = label
        self.source = source
        self.languages = languages
        self.warn = warn  # callable(RowError): warnings that do not reject the entry
        # A shop without any language takes those of its first feed.
        self.add_language = add_language if not languages else None
        self._warned: set[tuple[str, str]] = set()

    # -------------------------------------------------------------------------- keys

    def key(self, elem: etree._Element, kind: str) -> Ref | None:
        """The element's own key: ``supplier-reference`` (or ``external-reference``)."""
        reference = elem.get("supplier-reference") or elem.get("external-reference")
        if reference is None or reference.strip() == "":
            return None
        source = normalise_source(elem.get("source")) or self.source
        return Ref(kind, reference.strip(), source)

    def link(self, elem: etree._Element, default_kind: str) -> Ref | None:
        """A field that names another entity (by key, by identifier, or by local id)."""
        text = (elem.text or "").strip()
        if not text:
            return None
        type_name = elem.get("supplier-reference") or elem.get("external-reference")
        identifier = elem.get("identifier")
        if identifier:
            kind = KINDS.get(elem.get("type") or "", default_kind)
            return Ref(kind, field=identifier, value=text)
        if type_name is not None:
            kind = KINDS.get(type_name, default_kind)
            return Ref(kind, text, normalise_source(elem.get("source")) or self.source)
        return Ref(default_kind, text, OWN)

    # ------------------------------------------------------------------------ parsing

    def parse(self, elem: etree._Element, path: str) -> Entry | None:
        """One top-level element as an entry (None for an element we skip with a warning)."""
        tag = elem.tag
        origin = Origin(self.label, elem.sourceline, path)
        if tag in ("delete", "disable"):
            return self._operation(elem, origin)
        if tag not in SHAPES:
            self._warn_once(origin, tag, f"<{tag}> is not an entity impexmod imports; skipped")
            return None
        return self._entity(elem, tag, origin, None)

    def skipped(self, elem: etree._Element, path: str) -> None:
        """A second-level element that is no entity we import."""
        origin = Origin(self.label, elem.sourceline, path)
        self._warn_once(
            origin, elem.tag, f"<{elem.tag}> is not an entity impexmod imports; skipped"
        )

    def _operation(self, elem, origin: Origin) -> Entry:
        type_name = elem.get("type") or ""
        kind = KINDS.get(type_name)
        entry = Entry(kind or type_name, None, origin, mode=elem.tag)
        entry.flags["operation"] = elem.tag
        if kind is None:
            entry.errors.append(RowError.at(origin, "type", f"unknown entity type {type_name!r}"))
            return entry
        entry.ref = self.key(elem, kind)
        if entry.ref is None and elem.get("identifier"):
            entry.ref = Ref(kind, field=elem.get("identifier"), value=(elem.text or "").strip())
        if entry.ref is None:
            entry.errors.append(RowError.at(origin, "supplier-reference", "no key to find it by"))
        return entry

    def _entity(self, elem, tag: str, origin: Origin, parent: Entry | None) -> Entry:
        plan = compiled(tag)
        entry = Entry(plan.kind, self.key(elem, plan.kind), origin, parent=parent)
        attrib = elem.attrib
        if attrib:
            self._attributes(entry, tag, attrib, origin)
        elif tag == "stock":
            entry.flags["stock_mode"] = "set"
        values, langs, links = entry.values, entry.langs, entry.links
        counts: dict[str, int] = {}
        for child in elem:
            name = child.tag
            try:
                convert_value = plan.values.get(name)
                if convert_value is not None:
                    values[name] = convert_value(child.text, name)
                    if name in PRICES and child.get("tax") == "include":
                        entry.flags["tax_include"] = True
                    continue
                convert_lang = plan.langs.get(name)
                if convert_lang is not None:
                    lang = child.get("lang")
                    if lang is not None and lang not in self.languages:
                        if not self._language(child, name, lang, origin):
                            continue
                    langs.setdefault(name, {})[lang] = convert_lang(child.text, name)
                elif name in plan.links:
                    links[name] = self.link(child, plan.links[name])
                elif name in plan.nested:
                    counts[name] = counts.get(name, 0) + 1
                    where = Origin(
                        origin.file, child.sourceline, f"{origin.path}/{name}[{counts[name]}]"
                    )
                    self._nested(entry, child, name, where)
                elif name in plan.extra:
                    langs.setdefault(name, {})[child.get("lang")] = (child.text or "").strip()
                elif name in IGNORED or not isinstance(name, str):
                    continue
                else:
                    where = Origin(origin.file, child.sourceline, f"{origin.path}/{name}")
                    self._warn_once(where, name, f"<{name}> is not a field of {plan.kind}; ignored")
            except EntryError as exc:
                where = Origin(
                    origin.file, child.sourceline or origin.line, f"{origin.path}/{name}"
                )
                entry.errors.append(RowError.at(where, exc.field, exc.reason))
        return entry

    def _attributes(self, entry: Entry, tag: str, attrib, origin: Origin) -> None:
        mode = attrib.get("mode", "set" if tag == "stock" else "both")
        if tag == "stock":
            entry.flags["stock_mode"] = "delta" if mode == "delta" else "set"
            if mode not in ("set", "delta"):
                entry.errors.append(
                    RowError.at(origin, "mode", f"stock mode {mode!r}: set or delta")
                )
        elif mode not in MODES:
            entry.errors.append(RowError.at(origin, "mode", f"{mode!r}: create, update or both"))
        else:
            entry.mode = mode
        if attrib.get("identifier"):
            entry.flags["identifier"] = attrib.get("identifier")
        if attrib.get("tax") == "include":
            entry.flags["tax_include"] = True
        for name in REMOVE_MISSING:
            if (attrib.get(name) or "").lower() in ("yes", "1", "true"):
                entry.flags[name] = True

    def _language(self, child, name: str, lang: str, origin: Origin) -> bool:
        if self.add_language is not None and self.add_language(lang):
            self.languages.add(lang)
            return True
        where = Origin(origin.file, child.sourceline, f"{origin.path}/{name}")
        self._warn_once(where, name, f"language {lang!r} is not one of this shop's")
        return False

    def _nested(self, entry: Entry, child, name: str, where: Origin) -> None:
        if name == "tag":
            text = (child.text or "").strip()
            if text:
                entry.add("tag", (child.get("lang"), text[:32]))
        elif name == "categorypath":
            sep = child.get("separator") or ">"
            parts = [p.strip() for p in (child.text or "").split(sep) if p.strip()]
            if parts:
                entry.add("categorypath", parts)
        elif name == "image":
            entry.add("image", self._image(child, where))
        else:
            nested = self._entity(child, name, where, entry)
            if child.get("role"):
                nested.flags["role"] = child.get("role")
            entry.add(name, nested)
            entry.size += nested.size
            entry.errors.extend(nested.errors)
            nested.errors = []

    def _image(self, elem, where: Origin) -> dict:
        image: dict = {"url": None, "legend": {}, "position": None, "cover": None}
        for child in elem:
            text = (child.text or "").strip()
            if child.tag == "url":
                if len(text) > 512:
                    raise EntryError("url", "longer than 512 characters")
                image["url"] = text
            elif child.tag == "legend":
                image["legend"][child.get("lang")] = text[:128]
            elif child.tag == "position":
                image["position"] = int(text) if text.lstrip("-").isdigit() else None
            elif child.tag == "cover":
                image["cover"] = text.lower() in ("1", "true", "yes")
        if not image["url"]:
            raise EntryError("image", "an image needs a <url>")
        return image

    def _warn_once(self, origin: Origin, name: str, reason: str) -> None:
        if (origin.path.split("[")[0], name) in self._warned:
            return
        self._warned.add((origin.path.split("[")[0], name))
        self.warn(RowError.at(origin, name, reason, "warning"))
