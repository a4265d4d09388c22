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
        raise InvalidOutput("stylesheet", "choose a template or a stylesheet, not both")
    if stylesheet:
        if fmt not in (None, "", "xml"):
            raise InvalidOutput("format", "a stylesheet is applied to the native XML: use xml")
        try:
            xslt.resolve_stylesheet(stylesheet)
        except LookupError as exc:
            raise InvalidOutput("stylesheet", str(exc)) from None
        if options:
            raise InvalidOutput("option", "a stylesheet takes no format option")
        return "xml", {}
    platform = resolve_template(template) if template else None
    if platform is not None:
        if entity not in platform.entities:
            raise InvalidOutput(
                "entity",
                f"template {template} exports {', '.join(platform.entities)}, not {entity}",
            )
        if fmt not in (None, "", platform.ext):
            raise InvalidOutput("format", f"template {template} writes {platform.ext} files")
        cls = platform.load()
        _check_keys(cls, options, f"template {template}")
        check = getattr(cls, "check_options", None)
        try:
            return platform.ext, (check(entity, options) if check else options)
        except InvalidOption as exc:
            raise InvalidOutput("option", str(exc)) from None
    if template:
        try:
            saved = mapping.load_mapping(template)
        except ValueError as exc:  # a stored template that no longer validates
            raise InvalidOutput("template", f"template {template} is not valid: {exc}") from None
        if saved is None:
            known = ", ".join(template_names())
            raise InvalidOutput("template", f"no template named {template!r} (known: {known})")
        if saved.entity != entity:
            raise InvalidOutput(
                "template", f"template {template} maps {saved.entity}, not {entity}"
            )
        fmt = fmt or "csv"
        if fmt not in FLAT_FORMATS:
            raise InvalidOutput(
                "format", f"a field template writes {', '.join(FLAT_FORMATS)}, not {fmt}"
            )
    fmt = fmt or "xml"
    if fmt not in writers.FORMATS:
        raise InvalidOutput("format", f"choose one of {', '.join(writers.FORMATS)}")
    try:
        return fmt, writers.check_options(fmt, entity, options)
    except InvalidOption as exc:
        raise InvalidOutput("option", str(exc)) from None


def _check_keys(cls: type, options: dict, what: str) -> None:
    allowed = getattr(cls, "OPTIONS", {})
    for key in options:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidOutput("option", f"{what} takes no option {key!r} (it takes: {known})")


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
