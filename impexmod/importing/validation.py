"""Checking what an import is told to do (entity, format, modes, source, mapping, URL), for
recurring importers and uploads alike. Each refusal names the field it concerns."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from impexmod.entities import derived
from impexmod.importing.mappings import find_mapping
from impexmod.importing.native import normalise_source
from impexmod.importing.service import FORMATS
from impexmod.messages import msg

MODES = ("create", "update", "delete", "disable")
# What a flat file (or a whole importer) may hold; native feeds and ZIPs may hold several.
ENTITIES = derived.FLAT_IMPORTS
ANY_ENTITY = "any"
AUTO_FORMAT = "auto"
MAX_URL = 2048  # import_source_state.url
MAX_SOURCE = 128  # identity.source


class InvalidImporter(ValueError):
    """An import definition that cannot be used; ``field`` names the culprit, ``message`` says
    why (in English; a Message the panel translates, impexmod.messages)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_modes(text: str | list | tuple) -> tuple[str, ...]:
    """``create,update,delete`` -> a checked tuple of modes."""
    items = text.split(",") if isinstance(text, str) else list(text)
    modes = tuple(m.strip().lower() for m in items if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise InvalidImporter(
            "mode", msg("choose among %(modes)s (comma-separated)", modes=", ".join(MODES))
        )
    if "delete" in modes and "disable" in modes:
        raise InvalidImporter("mode", msg("delete and disable are mutually exclusive"))
    return modes


def check_url(url: str | None) -> str:
    """An http(s) URL with a host, or an absolute file path; the text kept, or InvalidImporter."""
    url = (url or "").strip()
    if len(url) > MAX_URL:
        raise InvalidImporter("url", msg("at most %(count)s characters", count=MAX_URL))
    if url.startswith("/"):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidImporter("url", msg("an http(s) URL or an absolute file path"))
    if parts.username is not None or parts.password is not None:
        # A URL is stored, listed and logged in clear; credentials are kept encrypted apart.
        raise InvalidImporter(
            "url", msg("no user or password in the URL: give them as the username and password")
        )
    return url


def check_name(name: str | None) -> str:
    """A task name of 1 to 128 characters, stripped."""
    if not name or not name.strip() or len(name.strip()) > 128:
        raise InvalidImporter("name", msg("a name of 1 to 128 characters is required"))
    return name.strip()


def check_options(
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list | tuple = "create,update",
    source: str | None = None,
    mapping: str | None = None,
) -> dict[str, Any]:
    """Entity, format, modes, source and mapping normalised, or InvalidImporter naming the field.

    Returns ``entity`` (``any`` when the file says), ``format`` (``auto``), ``modes`` (the
    canonical comma-separated text), ``source`` (``supplier:X``, or None) and ``mapping``.
    """
    entity = (entity or "").strip() or ANY_ENTITY
    if entity not in (ANY_ENTITY, *ENTITIES):
        raise InvalidImporter(
            "entity", msg("choose one of %(choices)s, or any", choices=", ".join(ENTITIES))
        )
    fmt = (fmt or "").strip().lower() or AUTO_FORMAT
    if fmt not in (AUTO_FORMAT, *FORMATS):
        raise InvalidImporter(
            "format", msg("choose one of %(choices)s", choices=", ".join(FORMATS))
        )
    chosen = parse_modes(modes)
    source = normalise_source(source)
    if source and len(source) > MAX_SOURCE:
        raise InvalidImporter("source", msg("at most %(count)s characters", count=MAX_SOURCE))
    mapping = (mapping or "").strip() or None
    if mapping:
        saved = find_mapping(mapping)
        if saved is None:
            raise InvalidImporter(
                "mapping", msg("no saved mapping is named %(name)s", name=repr(mapping))
            )
        if entity != ANY_ENTITY and saved.entity != entity:
            raise InvalidImporter(
                "mapping",
                msg(
                    "the mapping %(name)s maps %(mapped)s columns, not %(entity)s",
                    name=repr(mapping),
                    mapped=saved.entity,
                    entity=entity,
                ),
            )
    return {
        "entity": entity,
        "format": fmt,
        # In a fixed order, so that the same choice always reads the same.
        "modes": ",".join(m for m in MODES if m in chosen),
        "source": source,
        "mapping": mapping,
    }
