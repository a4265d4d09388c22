"""XSLT stylesheets: the shipped ones (``impexmod/xslt/``) and the ones merchants
upload (the ``stylesheet`` table), checked to be safe and to compile before they are saved.

A stylesheet is parsed without entities, DTDs or network access, may not import, include or
write other documents, and compiles and runs with ``XSLTAccessControl.DENY_ALL`` (no file or
network read or write) and no extension functions. See docs/xslt.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import Stylesheet, Task, TaskKind

# impexmod/xslt/, package data: found the same way in a checkout and in an installed wheel.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "xslt"
XSL = "http://www.w3.org/1999/XSL/Transform"
IMPEXMOD = "urn:impexmod:xslt"  # namespace of impexmod's attributes on xsl:stylesheet
MAX_BYTES = 1024 * 1024  # an uploaded stylesheet's size limit
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ACCESS = etree.XSLTAccessControl.DENY_ALL

# Elements that read or write other documents. Reads at compile time (xsl:import, xsl:include)
# go through no access control, so they must be refused here; writes are also refused at run
# time by ACCESS, but a merchant should hear about them when uploading.
FORBIDDEN = {
    (XSL, "import"): msg("xsl:import reads another file"),
    (XSL, "include"): msg("xsl:include reads another file"),
    (XSL, "result-document"): msg("xsl:result-document writes another file"),
    (XSL, "document"): msg("xsl:document writes another file"),
    ("http://exslt.org/common", "document"): msg("exsl:document writes another file"),
    ("http://icl.com/saxon", "output"): msg("saxon:output writes another file"),
    ("org.apache.xalan.xslt.extensions.Redirect", "write"): msg(
        "redirect:write writes another file"
    ),
    ("http://www.jclark.com/xt", "document"): msg("xt:document writes another file"),
}
# Output encodings the feed URL can announce (it serves feeds as UTF-8).
ENCODINGS = ("utf-8", "utf8", "us-ascii", "ascii")
TEXT_EXTS = {"text/csv": "csv", "text/tab-separated-values": "tsv"}


# What a stylesheet's errors call it when it has no name yet (an upload), said in the panel's
# language; a named one is called by its name.
STYLESHEET = msg("stylesheet")


class StylesheetError(ValueError):
    """A stylesheet that cannot be saved, used or deleted; ``message`` says why (in English; a
    Message the panel translates, impexmod.messages)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


class InvalidStylesheet(StylesheetError):
    """A stylesheet that is not safe, not well-formed or does not compile (``line`` if known)."""


class StylesheetInUse(StylesheetError):
    """A stylesheet that exporters still name."""


@dataclass(frozen=True)
class Declaration:
    """What a stylesheet says about itself: its output and how impexmod applies it."""

    method: str  # xml, text or html
    ext: str  # xml, csv, tsv, txt or html: the feed's extension, hence its content type
    record_wise: bool  # impexmod:record-wise="true" on xsl:stylesheet
    container: str | None  # impexmod:record-container as a Clark name ({ns}local), if given


@dataclass(frozen=True)
class StylesheetEntry:
    """One stylesheet an exporter may name, as listed to merchants."""

    name: str
    origin: str  # "shipped" or "uploaded"
    ext: str
    record_wise: bool
    used_by: tuple[int, ...]  # ids of the exporters that name it


_PARSER_OPTIONS = dict(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


def safe_parser() -> etree.XMLParser:
    """The parser of stylesheets and of the documents they are applied to."""
    return etree.XMLParser(**_PARSER_OPTIONS)


def parse(content: bytes, where: str = STYLESHEET) -> etree._ElementTree:
    """Parse a stylesheet safely and refuse what could read or write files; InvalidStylesheet."""
    try:
        root = etree.fromstring(content, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidStylesheet(
            msg("%(where)s is not well-formed XML: %(error)s", where=where, error=str(exc)),
            exc.lineno,
        ) from None
    tree = root.getroottree()
    if (tree.docinfo.encoding or "utf-8").lower() not in ENCODINGS:
        raise InvalidStylesheet(
            msg("%(where)s: the stylesheet must be UTF-8, declared as such", where=where), 1
        )
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InvalidStylesheet(
            msg(
                "%(where)s: a stylesheet may not have a DOCTYPE (no DTDs or entities)", where=where
            ),
            1,
        )
    if root.tag not in (f"{{{XSL}}}stylesheet", f"{{{XSL}}}transform"):
        raise InvalidStylesheet(
            msg("%(where)s: the root element is not xsl:stylesheet", where=where), root.sourceline
        )
    for el in root.iter(etree.Element):
        qname = etree.QName(el)
        why = FORBIDDEN.get((qname.namespace, qname.localname))
        if why:
            raise InvalidStylesheet(
                msg(
                    "%(where)s: line %(line)s: %(why)s, which stylesheets may not do",
                    where=where,
                    line=el.sourceline,
                    why=why,
                ),
                el.sourceline,
            )
    return tree


def compile_tree(tree: etree._ElementTree, where: str = STYLESHEET) -> etree.XSLT:
    """Compile a parsed stylesheet in the sandbox; InvalidStylesheet with the first error's line."""
    etree.clear_error_log()  # lxml reports compile errors through the thread's global log
    try:
        return etree.XSLT(tree, access_control=ACCESS)
    except etree.XSLTParseError as exc:
        line, message = first_error(exc.error_log, str(exc))
        if line:
            said = msg(
                "%(where)s does not compile: line %(line)s: %(error)s",
                where=where,
                line=line,
                error=message,
            )
        else:
            said = msg("%(where)s does not compile: %(error)s", where=where, error=message)
        raise InvalidStylesheet(said, line) from None


def first_error(log, fallback: str) -> tuple[int | None, str]:
    """The line of the first located error of an XSLT error log and what it says."""
    entries = [e for e in log if e.level >= etree.ErrorLevels.ERROR]
    located = [i for i, e in enumerate(entries) if e.line > 0]
    if not located:
        return None, fallback
    first = located[0]
    end = located[1] if len(located) > 1 else len(entries)
    details = [e.message for e in entries[:first] + entries[first + 1 : end] if e.line <= 0]
    messages = list(dict.fromkeys(details or [entries[first].message]))
    more = len(located) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return entries[first].line, "; ".join(messages) + tail


def declaration(tree: etree._ElementTree, where: str = STYLESHEET) -> Declaration:
    """Read a parsed stylesheet's output method and impexmod attributes."""
    root = tree.getroot()
    output: dict[str, str] = {}
    for el in root.iterchildren(f"{{{XSL}}}output"):
        output.update(el.attrib)  # several xsl:output elements merge, the last one winning
    method = (output.get("method") or "xml").strip().lower()
    if method not in ("xml", "text", "html", "xhtml"):
        raise InvalidStylesheet(
            msg(
                "%(where)s: xsl:output method %(method)s is not supported",
                where=where,
                method=repr(method),
            )
        )
    encoding = (output.get("encoding") or "UTF-8").strip().lower()
    if encoding not in ENCODINGS:
        raise InvalidStylesheet(
            msg(
                "%(where)s: xsl:output encoding %(encoding)s: feeds are served as UTF-8, "
                'write encoding="UTF-8"',
                where=where,
                encoding=repr(output["encoding"]),
            )
        )
    media = (output.get("media-type") or "").split(";")[0].strip().lower()
    if method == "text":
        ext = TEXT_EXTS.get(media, "txt")
    elif method in ("html", "xhtml"):
        method, ext = "html", "html"
    else:
        ext = "xml"
    flag = (root.get(f"{{{IMPEXMOD}}}record-wise") or "false").strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidStylesheet(
            msg(
                "%(where)s: impexmod:record-wise is true or false, not %(flag)s",
                where=where,
                flag=repr(flag),
            )
        )
    container = root.get(f"{{{IMPEXMOD}}}record-container")
    if container:
        prefix, _, local = container.strip().rpartition(":")
        if prefix and prefix not in root.nsmap:
            raise InvalidStylesheet(
                msg(
                    "%(where)s: impexmod:record-container %(container)s: prefix %(prefix)s is "
                    "not declared",
                    where=where,
                    container=repr(container),
                    prefix=prefix,
                )
            )
        container = etree.QName(root.nsmap.get(prefix or None), local).text
    record_wise = flag in ("true", "1", "yes")
    check_mode(method, record_wise, where)
    return Declaration(method, ext, record_wise, container)


def check_mode(method: str, record_wise: bool, where: str = STYLESHEET) -> None:
    """Refuse a record-wise stylesheet whose output cannot be joined chunk by chunk."""
    if record_wise and method == "html":
        # libxml2 indents HTML by what surrounds each element, so chunks would not join into
        # the bytes of a whole-document run.
        raise InvalidStylesheet(
            msg(
                "%(where)s: a record-wise stylesheet writes xml or text; HTML runs on the whole "
                'document (or write XHTML with method="xml")',
                where=where,
            )
        )


def check(content: bytes | str, where: str = STYLESHEET) -> Declaration:
    """Check that content is a safe stylesheet that compiles: its declaration, or
    InvalidStylesheet."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    tree = parse(data, where)
    found = declaration(tree, where)
    compile_tree(tree, where)
    return found


# ---------------------------------------------------------------------------- storage


def shipped_names() -> list[str]:
    """The names of the stylesheets shipped in xslt/ (file names without ``.xsl``)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.xsl"))


def load_source(name: str) -> tuple[str, bytes, bool] | None:
    """(origin, content, record_wise flag of the upload) of a stylesheet, or None."""
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        return None
    path = SHIPPED_DIR / f"{name}.xsl"
    if path.is_file():
        return "shipped", path.read_bytes(), False
    row = db.session.query(Stylesheet).filter(Stylesheet.name == name).one_or_none()
    if row is None:
        return None
    return "uploaded", row.content.encode("utf-8"), bool(row.record_wise)


def known_names() -> list[str]:
    """Every stylesheet name an exporter may use: shipped ones, then uploaded ones."""
    uploaded = db.session.query(Stylesheet.name).order_by(Stylesheet.name)
    shipped = shipped_names()
    return shipped + [n for (n,) in uploaded if n not in shipped]


def users_of(name: str) -> list[Task]:
    """The exporters that apply this stylesheet (one-off manual exports do not count)."""
    query = db.session.query(Task).filter(Task.stylesheet == name, Task.kind == TaskKind.EXPORT)
    return query.order_by(Task.id).all()


def save_stylesheet(name: str, content: bytes | str, record_wise: bool = False) -> Stylesheet:
    """Check and save an uploaded stylesheet (replacing one of that name); InvalidStylesheet."""
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise InvalidStylesheet(
            msg(
                "a stylesheet name is 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or a digit"
            )
        )
    if name in shipped_names():
        raise InvalidStylesheet(
            msg("%(name)s is a shipped stylesheet: choose another name", name=name)
        )
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            raise InvalidStylesheet(msg("a stylesheet is at most %(count)s bytes", count=MAX_BYTES))
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidStylesheet(
                msg("the stylesheet is not UTF-8 (byte %(byte)s): save it as UTF-8", byte=exc.start)
            ) from None
    content = content.removeprefix("\ufeff")
    if len(content.encode("utf-8")) > MAX_BYTES:
        raise InvalidStylesheet(msg("a stylesheet is at most %(count)s bytes", count=MAX_BYTES))
    found = check(content.encode("utf-8"))
    check_mode(found.method, record_wise)
    row = db.session.query(Stylesheet).filter(Stylesheet.name == name).one_or_none()
    if row is None:
        row = Stylesheet(name=name)
        db.session.add(row)
    row.content = content
    row.record_wise = bool(record_wise or found.record_wise)
    db.session.commit()
    return row


def list_stylesheets() -> list[StylesheetEntry]:
    """Every stylesheet an exporter may name: the shipped ones, then the uploaded ones."""
    used: dict[str, list[int]] = {}
    rows = db.session.query(Task.id, Task.stylesheet).filter(
        Task.stylesheet.isnot(None), Task.kind == TaskKind.EXPORT
    )
    for task_id, name in rows.order_by(Task.id):
        used.setdefault(name, []).append(task_id)
    entries = []
    for name in known_names():
        origin, content, flag = load_source(name)
        found = declaration(parse(content, name), name)
        entries.append(
            StylesheetEntry(
                name, origin, found.ext, flag or found.record_wise, tuple(used.get(name, ()))
            )
        )
    return entries


def stylesheet_names() -> list[str]:
    """The names of every stylesheet an exporter may name (for choice lists)."""
    return known_names()


def delete_stylesheet(name: str) -> None:
    """Delete an uploaded stylesheet; refused for shipped ones and while an exporter uses it."""
    if name in shipped_names():
        raise StylesheetError(
            msg("%(name)s is a shipped stylesheet: it cannot be deleted", name=name)
        )
    row = db.session.query(Stylesheet).filter(Stylesheet.name == name).one_or_none()
    if row is None:
        raise LookupError(f"no uploaded stylesheet named {name!r}")
    tasks = users_of(name)
    if tasks:
        said = dict(name=name, exporters=", ".join(f"{t.id} ({t.name})" for t in tasks))
        if len(tasks) > 1:
            raise StylesheetInUse(
                msg(
                    "stylesheet %(name)s is used by exporters %(exporters)s: "
                    "change or delete them first",
                    **said,
                )
            )
        raise StylesheetInUse(
            msg(
                "stylesheet %(name)s is used by exporter %(exporters)s: "
                "change or delete them first",
                **said,
            )
        )
    db.session.delete(row)
    db.session.commit()
