"""What an exporter writes: a format, a predefined template, a saved field mapping or an XSLT
stylesheet, resolved in one place for the runner, the task services and the manual export.

An output spec is anything with ``entity``, ``format``, ``options``, ``template`` and
``stylesheet`` attributes: a Task, or a manual export's form.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from impexmod.export import writers
from impexmod.export.formats.base import FeedWriter, InvalidOption, WriterSetup
from impexmod.export.platforms import TEMPLATES, resolve_template
from impexmod.messages import msg

# Formats a saved field mapping can be written as.
FLAT_FORMATS = ("csv", "xlsx", "json", "jsonl")


class OutputSpec(Protocol):
    entity: str
    format: str
    options: dict | None
    template: str | None
    stylesheet: str | None


class InvalidOutput(ValueError):
    """An output choice that cannot work; ``field`` names the culprit (format, option, ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def template_names() -> list[str]:
    """Every template an exporter may name: the predefined ones, then the saved ones."""
    from impexmod.export import mapping

    return list(TEMPLATES) + [n for n in mapping.saved_names() if n not in TEMPLATES]


def validate_output(
    entity: str,
    fmt: str | None,
    options: dict[str, str] | None,
    template: str | None = None,
    stylesheet: str | None = None,
) -> tuple[str, dict[str, str]]:
    """Check an output choice; return (format, options) normalised, or raise InvalidOutput.

    A predefined template implies its format; a stylesheet reads the native XML.
    """
    from impexmod.export import mapping, xslt

    options = dict(options or {})
    template = (template or "").strip() or None
    stylesheet = (stylesheet or "").strip() or None
    if template and stylesheet:
        raise InvalidOutput("stylesheet", msg("choose a template or a stylesheet, not both"))
    if stylesheet:
        if fmt not in (None, "", "xml"):
            raise InvalidOutput("format", msg("a stylesheet is applied to the native XML: use xml"))
        try:
            xslt.resolve_stylesheet(stylesheet)
        except LookupError as exc:
            raise InvalidOutput("stylesheet", exc.args[0]) from None  # a Message
        if options:
            raise InvalidOutput("option", msg("a stylesheet takes no format option"))
        return "xml", {}
    platform = resolve_template(template) if template else None
    if platform is not None:
        if entity not in platform.entities:
            raise InvalidOutput(
                "entity",
                msg(
                    "template %(template)s exports %(entities)s, not %(entity)s",
                    template=template,
                    entities=", ".join(platform.entities),
                    entity=entity,
                ),
            )
        if fmt not in (None, "", platform.ext):
            raise InvalidOutput(
                "format",
                msg(
                    "template %(template)s writes %(ext)s files",
                    template=template,
                    ext=platform.ext,
                ),
            )
        cls = platform.load()
        _check_keys(cls, options, template)
        check = getattr(cls, "check_options", None)
        try:
            return platform.ext, (check(entity, options) if check else options)
        except InvalidOption as exc:
            raise InvalidOutput("option", exc.args[0]) from None  # a Message
    if template:
        try:
            saved = mapping.load_mapping(template)
        except ValueError as exc:  # a stored template that no longer validates
            raise InvalidOutput(
                "template",
                msg(
                    "template %(template)s is not valid: %(error)s",
                    template=template,
                    error=str(exc),
                ),
            ) from None
        if saved is None:
            known = ", ".join(template_names())
            raise InvalidOutput(
                "template",
                msg(
                    "no template named %(template)s (known: %(known)s)",
                    template=repr(template),
                    known=known,
                ),
            )
        if saved.entity != entity:
            raise InvalidOutput(
                "template",
                msg(
                    "template %(template)s maps %(mapped)s, not %(entity)s",
                    template=template,
                    mapped=saved.entity,
                    entity=entity,
                ),
            )
        fmt = fmt or "csv"
        if fmt not in FLAT_FORMATS:
            raise InvalidOutput(
                "format",
                msg(
                    "a field template writes %(formats)s, not %(format)s",
                    formats=", ".join(FLAT_FORMATS),
                    format=fmt,
                ),
            )
    fmt = fmt or "xml"
    if fmt not in writers.FORMATS:
        raise InvalidOutput(
            "format", msg("choose one of %(choices)s", choices=", ".join(writers.FORMATS))
        )
    try:
        return fmt, writers.check_options(fmt, entity, options)
    except InvalidOption as exc:
        raise InvalidOutput("option", exc.args[0]) from None  # a Message


def _check_keys(cls: type, options: dict, template: str) -> None:
    allowed = getattr(cls, "OPTIONS", {})
    for key in options:
        if key not in allowed:
            said = dict(template=template, key=repr(key), known=", ".join(sorted(allowed)))
            if not allowed:
                raise InvalidOutput(
                    "option",
                    msg("template %(template)s takes no option %(key)s (it takes: none)", **said),
                )
            raise InvalidOutput(
                "option",
                msg("template %(template)s takes no option %(key)s (it takes: %(known)s)", **said),
            )


def output_ext(spec: OutputSpec) -> str:
    """The extension of the file the spec produces (hence its feed URL and content type)."""
    if spec.stylesheet:
        from impexmod.export import xslt

        try:
            return xslt.resolve_stylesheet(spec.stylesheet).ext
        except LookupError:
            return "xml"
    platform = resolve_template(spec.template) if spec.template else None
    if platform is not None:
        return platform.ext
    return spec.format


def open_output(spec: OutputSpec, fh: BinaryIO, setup: WriterSetup) -> FeedWriter:
    """The writer of a spec over ``fh`` (a template's, a stylesheet's, or the format's)."""
    if spec.stylesheet:
        from impexmod.export import xslt

        return xslt.XsltWriter(fh, setup, xslt.resolve_stylesheet(spec.stylesheet))
    platform = resolve_template(spec.template) if spec.template else None
    if platform is not None:
        return platform.load()(fh, setup)
    if spec.template:
        from impexmod.export import mapping

        setup.mapping = mapping.load_mapping(spec.template)
        if setup.mapping is None:
            raise LookupError(f"the field template {spec.template!r} no longer exists")
    return writers.resolve_writer(spec.format, fh, setup)
