"""Native Advanced Importer elements -> entries (see docs/importing.md for what is read).

Field elements are named after the columns of the entity's table; a field that links to another
entity carries the target's key as text and its type in ``supplier-reference`` (or matches it
with ``identifier`` and ``type``), and a link with neither is a plain local id of this shop.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from impexmod.entities import derived
from impexmod.importing.entry import KINDS, OWN, Entry, Ref
from impexmod.importing.errors import EntryError, Origin, RowError
from impexmod.importing.readings import (
    EXTRA,
    LANG,
    LANG_TEXT,
    LINK,
    NESTED,
    PRICE,
    TEXT,
    VALUE,
    Compiled,
    compiled,
)

MODES = ("both", "create", "update")
REMOVE_MISSING = ("remove-missing-tags", "remove-missing-combinations", "remove-missing-categories")
# Second-level elements the importer reads; only these reach Python while streaming.
TOP_LEVEL = derived.TOP_LEVEL
PLAIN_NESTED = frozenset(("tag", "categorypath", "image"))  # nested items that are no entries
_MISSING = object()
CACHED_TEXT = 24  # the longest text whose converted value is kept
CACHE_SIZE = 4096  # values kept per field, at most
REPEATED = frozenset(("attributeGroup",))  # nested elements that repeat verbatim (``_repeated``)
REPEATED_KEPT = 1024  # distinct ones remembered per feed, at most
# Ref(kind, reference, source, None, None) and Origin(file, line, path) without their __new__
_ref = _origin = tuple.__new__
# Element -> shape, and the columns a feed must not set directly (links or computed): from the
# entity specs (``shape``, ``nested_shapes``).
SHAPES = derived.SHAPES
SHAPES_SKIP = derived.SHAPES_SKIP


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
        self._lang_keys: dict[str, str] = {}  # one string object per language code
        self._templates: dict[bytes, Entry] = {}  # ``_repeated``: element bytes -> entry

    # -------------------------------------------------------------------------- keys

    def key(self, elem: etree._Element, kind: str) -> Ref | None:
        """The element's own key: ``supplier-reference`` (or ``external-reference``)."""
        return self._key(elem.attrib, kind)

    def _key(self, attrs, kind: str) -> Ref | None:
        reference = attrs.get("supplier-reference") or attrs.get("external-reference")
        if reference is None:
            return None
        reference = reference.strip()
        if not reference:
            return None
        source = attrs.get("source")
        source = (normalise_source(source) if source else None) or self.source
        return _ref(Ref, (kind, reference, source, None, None))

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
        origin = _origin(Origin, (self.label, elem.sourceline, path))
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
        entry = Entry(plan.kind, None, origin, parent=parent)
        self._head(entry, elem, tag, origin, parent)
        self._fields(entry, elem, plan, origin)
        return entry

    def _head(self, entry: Entry, elem, tag: str, origin: Origin, parent: Entry | None) -> None:
        """What the element's attributes say: its key, mode and flags."""
        kind = entry.kind
        attrs = elem.items()
        if len(attrs) == 2 and attrs[0][0] == "supplier-reference" and attrs[1][0] == "source":
            # What nearly every element carries, a key and whose it is: read as ``_key`` does,
            # and nothing else to look at (default mode).
            reference, source = attrs[0][1].strip(), attrs[1][1]
            if reference:
                source = (normalise_source(source) if source else None) or self.source
                entry.ref = _ref(Ref, (kind, reference, source, None, None))
            if tag == "stock":
                entry.flags["stock_mode"] = "set"
        elif attrs:
            attrs = dict(attrs)  # one copy: the lookups below stay in Python
            entry.ref = self._key(attrs, kind)
            self._attributes(entry, tag, attrs, origin)
            if parent is not None and attrs.get("role"):
                entry.flags["role"] = attrs["role"]
        elif tag == "stock":
            entry.flags["stock_mode"] = "set"

    def _fields(self, entry: Entry, elem, plan: Compiled, origin: Origin) -> None:
        """The element's children: values, translations, links and nested entities."""
        kind = plan.kind
        fields = plan.fields
        languages = self.languages
        known = self._lang_keys
        values, langs, links = entry.values, entry.langs, entry.links
        counts: dict[str, int] = {}
        for child in elem:
            name = child.tag
            reading = fields.get(name)
            if reading is None:
                if isinstance(name, str):  # not a comment or a processing instruction
                    where = Origin(origin.file, child.sourceline, f"{origin.path}/{name}")
                    self._warn_once(where, name, f"<{name}> is not a field of {kind}; ignored")
                continue
            code, arg, name = reading  # how it is read, its converter or link kind, its name
            try:
                if code == TEXT or code == LANG_TEXT or code == LANG:
                    if code == TEXT:
                        target, key = values, name
                    else:
                        key = child.get("lang")
                        if key is not None:
                            if key in known:
                                key = known[key]
                            elif key in languages or self._language(child, name, key, origin):
                                known[key] = key
                            else:
                                continue
                        target = langs.get(name)
                        if target is None:
                            target = langs[name] = {}
                    if code == LANG:
                        target[key] = arg(child.text, name)
                        continue
                    # ``converter``'s rule for text, inline: most fields are text.
                    max_length, nullable = arg
                    text = child.text
                    if text is not None:
                        text = text.strip()
                        if not text:
                            text = None if nullable else ""
                        elif max_length and len(text) > max_length:
                            raise EntryError(
                                name, f"longer than {max_length} characters ({len(text)})"
                            )
                    target[key] = text
                elif code == VALUE or code == PRICE:
                    text = child.text
                    convert, cache = arg
                    value = cache.get(text, _MISSING)
                    if value is _MISSING:
                        value = convert(text, name)
                        if text is not None and len(text) <= CACHED_TEXT:
                            if len(cache) >= CACHE_SIZE:
                                cache.clear()
                            cache[text] = value
                    values[name] = value
                    if code == PRICE and child.get("tax") == "include":
                        entry.flags["tax_include"] = True
                elif code == NESTED:
                    counts[name] = number = counts.get(name, 0) + 1
                    if name in PLAIN_NESTED:  # no entry of their own: no origin either
                        self._nested(entry, child, name, None)
                    else:
                        where = _origin(
                            Origin,
                            (origin.file, child.sourceline, f"{origin.path}/{name}[{number}]"),
                        )
                        self._nested(entry, child, name, where)
                elif code == LINK:
                    links[name] = self.link(child, arg)
                elif code == EXTRA:
                    langs.setdefault(name, {})[child.get("lang")] = (child.text or "").strip()
            except EntryError as exc:
                where = Origin(
                    origin.file, child.sourceline or origin.line, f"{origin.path}/{name}"
                )
                entry.errors.append(RowError.at(where, exc.field, exc.reason))

    def _attributes(self, entry: Entry, tag: str, attrs: dict, origin: Origin) -> None:
        flags = entry.flags
        if tag == "stock":
            mode = attrs.get("mode", "set")
            flags["stock_mode"] = "delta" if mode == "delta" else "set"
            if mode not in ("set", "delta"):
                entry.errors.append(
                    RowError.at(origin, "mode", f"stock mode {mode!r}: set or delta")
                )
        else:
            mode = attrs.get("mode", "both")
            if mode not in MODES:
                entry.errors.append(
                    RowError.at(origin, "mode", f"{mode!r}: create, update or both")
                )
            else:
                entry.mode = mode
        if attrs.get("identifier"):
            flags["identifier"] = attrs["identifier"]
        if attrs.get("tax") == "include":
            flags["tax_include"] = True
        for name in REMOVE_MISSING:
            if (attrs.get(name) or "").lower() in ("yes", "1", "true"):
                flags[name] = True

    def _language(self, child, name: str, lang: str, origin: Origin) -> bool:
        if self.add_language is not None and self.add_language(lang):
            self.languages.add(lang)
            return True
        where = Origin(origin.file, child.sourceline, f"{origin.path}/{name}")
        self._warn_once(where, name, f"language {lang!r} is not one of this shop's")
        return False

    def _nested(self, entry: Entry, child, name: str, where: Origin | None) -> None:
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
            if name in REPEATED:
                nested = self._repeated(child, name, where, entry)
            else:
                nested = self._entity(child, name, where, entry)  # it reads its ``role`` too
            entry.add(name, nested)
            entry.size += nested.size
            entry.errors.extend(nested.errors)
            nested.errors = []

    def _repeated(self, child, name: str, where: Origin, parent: Entry) -> Entry:
        """An element that every combination repeats word for word (its attribute group, with
        the attribute) is read once per feed: the same bytes give a copy of the same entry,
        with this occurrence's place. Serialising it is C work, reading it is Python work on
        a dozen elements."""
        key = etree.tostring(child, with_tail=False)
        template = self._templates.get(key)
        if template is None:
            nested = self._entity(child, name, where, parent)
            if nested.errors:
                return nested  # reported where it is; not worth remembering
            if len(self._templates) >= REPEATED_KEPT:
                self._templates.clear()
            template = self._templates[key] = _copy(nested, nested.origin, None)
            return nested
        return _copy(template, where, parent)

    def _image(self, elem, where: Origin | None) -> dict:
        image: dict = {"url": None, "legend": {}, "position": None, "cover": None}
        for child in elem:
            text = (child.text or "").strip()
            tag = child.tag
            if tag == "url":
                if len(text) > 512:
                    raise EntryError("url", "longer than 512 characters")
                image["url"] = text
            elif tag == "legend":
                image["legend"][child.get("lang")] = text[:128]
            elif tag == "position":
                image["position"] = int(text) if text.lstrip("-").isdigit() else None
            elif tag == "cover":
                image["cover"] = text.lower() in ("1", "true", "yes")
        if not image["url"]:
            raise EntryError("image", "an image needs a <url>")
        return image

    def _warn_once(self, origin: Origin, name: str, reason: str) -> None:
        if (origin.path.split("[")[0], name) in self._warned:
            return
        self._warned.add((origin.path.split("[")[0], name))
        self.warn(RowError.at(origin, name, reason, "warning"))


def _copy(entry: Entry, origin: Origin, parent: Entry | None) -> Entry:
    """A fresh entry with what ``entry`` read (its values are shared: nothing changes them
    in place), at ``origin``; nested entries keep their place relative to it."""
    copy = Entry(
        entry.kind,
        entry.ref,
        origin,
        entry.mode,
        entry.values,
        entry.langs,
        entry.links,
        {},
        dict(entry.flags),
        [],
        parent,
        size=entry.size,
    )
    if entry.children:
        base = len(entry.origin.path)
        for name, items in entry.children.items():
            copy.children[name] = [
                _copy(item, _moved(item.origin, entry.origin, origin, base), copy)
                if item.__class__ is Entry
                else item
                for item in items
            ]
    return copy


def _moved(inner: Origin, old: Origin, new: Origin, base: int) -> Origin:
    """Where a nested entry of ``old`` is, once that entry is found again at ``new``."""
    line = new.line
    if line is not None and inner.line is not None and old.line is not None:
        line += inner.line - old.line
    return _origin(Origin, (new.file, line, new.path + inner.path[base:]))
