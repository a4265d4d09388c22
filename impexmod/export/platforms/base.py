"""What every platform template shares: feed language, options, warnings, deletions, CSV out.

A template writer is a ``FeedWriter`` (impexmod.export.writers). Subclasses set ``name``,
``title``, ``ext`` and ``OPTIONS`` and implement ``start`` (the header), ``load`` (what each
chunk needs beyond the native records) and ``write_record``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, BinaryIO, ClassVar

from flask import current_app, has_app_context

from impexmod.entities import Descriptor, ExportContext
from impexmod.export.formats.base import InvalidOption, WriterSetup
from impexmod.messages import msg

LANG_HELP = "language of the texts, an iso code of the shop (default: FEED_LANGUAGE, en, first)"
# Individual warnings kept per run; past it they are counted in a summary line, so that a
# catalog with a systematic gap does not hold one message per product.
WARNING_LIMIT = 200


def shop_languages() -> list[str] | None:
    """The iso codes of the shop's languages, or None outside an application context."""
    if not has_app_context():
        return None
    from impexmod.extensions import db
    from impexmod.models import Language

    return list(db.session.execute(db.select(Language.iso_code).order_by(Language.id)).scalars())


def check_language(value: str) -> str:
    """A ``lang`` option normalised, or InvalidOption if the shop has no such language."""
    iso = value.strip().lower()
    if not re.fullmatch(r"[a-z]{2}", iso):
        raise InvalidOption(
            "lang", msg("%(value)s is not a two-letter language code such as en", value=repr(value))
        )
    known = shop_languages()
    if known and iso not in known:
        raise InvalidOption(
            "lang",
            msg(
                "the shop has no language %(iso)s (it has: %(known)s)",
                iso=repr(iso),
                known=", ".join(known),
            ),
        )
    return iso


def feed_language(languages: Sequence[str], wanted: str | None, configured: str | None) -> str:
    """The language of a feed: the ``lang`` option, else FEED_LANGUAGE, else en, else the first."""
    if not languages:
        raise LookupError("the shop has no language: platform feeds need product names")
    for source, iso in (("option lang", wanted), ("FEED_LANGUAGE", configured)):
        iso = (iso or "").strip().lower()
        if iso:
            if iso not in languages:
                raise LookupError(
                    f"{source} {iso!r} is not a language of the shop "
                    f"(it has: {', '.join(languages)})"
                )
            return iso
    return "en" if "en" in languages else languages[0]


def check_choice(options: dict[str, str], key: str, choices: Sequence[str]) -> None:
    """Normalise option ``key`` to one of ``choices`` (case-insensitive) or raise InvalidOption."""
    if key in options:
        value = options[key].strip().lower()
        if value not in choices:
            raise InvalidOption(
                key,
                msg(
                    "choose one of %(choices)s, not %(value)s",
                    choices=", ".join(choices),
                    value=repr(options[key]),
                ),
            )
        options[key] = value


def check_tax_rate(options: dict[str, str]) -> None:
    """Normalise the ``tax_rate`` option (a percentage) or raise InvalidOption."""
    if "tax_rate" in options:
        text = options["tax_rate"].strip().rstrip("%").strip()
        try:
            rate = Decimal(text)
        except ArithmeticError:
            raise InvalidOption(
                "tax_rate", msg("%(value)s is not a number", value=repr(options["tax_rate"]))
            ) from None
        if not rate.is_finite() or not 0 <= rate < 100:
            raise InvalidOption("tax_rate", msg("a percentage from 0 to 100"))
        options["tax_rate"] = format(rate.normalize(), "f")


def tax_factor(options: dict[str, str]) -> Decimal:
    """What the ``tax_rate`` option multiplies prices by (1 without it)."""
    return 1 + Decimal(options.get("tax_rate") or 0) / 100


class PlatformWriter:
    """Base of the template writers: a text stream over the feed file, the feed language, the
    run's warnings about what was left out, and deletions counted rather than written."""

    name: ClassVar[str]  # the template name: "shopify"
    title: ClassVar[str]  # for messages: "Shopify product CSV"
    ext: ClassVar[str]
    textual: ClassVar[bool] = True  # written through a UTF-8 text stream (CSV, TSV)
    needs_language: ClassVar[bool] = True  # whether the file carries texts (names, ...)
    OPTIONS: ClassVar[dict[str, str]] = {"lang": LANG_HELP}
    # Why deletions cannot be sent, for the run's warning.
    deletion_note: ClassVar[str] = "delete or unpublish those products on the platform itself"

    def __init__(self, fh: BinaryIO, setup: WriterSetup):
        self.fh = fh
        self.setup = setup
        self.options = dict(setup.options or {})
        config = current_app.config
        self.currency = str(config.get("CURRENCY") or "EUR").upper()
        self.shop_url = str(config.get("SHOP_URL") or config.get("PUBLIC_URL") or "").rstrip("/")
        self.lang = (
            feed_language(setup.languages, self.options.get("lang"), config.get("FEED_LANGUAGE"))
            if self.needs_language
            else None
        )
        self.lang_id: int | None = None
        self.ctx: ExportContext | None = None
        self.text: io.TextIOWrapper | None = None
        self.left_out: Counter[str] = Counter()
        self.shown = 0
        self.hidden: Counter[str] = Counter()
        self.deleted = 0

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        """Validate the template's options; subclasses add theirs."""
        options = dict(options)
        if "lang" in options:
            options["lang"] = check_language(options["lang"])
        return options

    # ----------------------------------------------------------------------- context manager

    def __enter__(self) -> PlatformWriter:
        if self.textual:
            self.text = io.TextIOWrapper(self.fh, encoding="utf-8", newline="", write_through=True)
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.finish()
                self.summarise()
        finally:
            self.close(exc_type, exc, tb)

    def close(self, exc_type, exc, tb) -> None:
        """Release the output; the feed store owns the file, so it stays open."""
        if self.text is not None:
            self.text.flush()
            self.text.detach()  # a wrapper closes its file when collected: detach it first
            self.text = None

    def start(self) -> None:
        """Write what comes before the first record (a header row)."""

    def finish(self) -> None:
        """Write what comes after the last record."""

    # ------------------------------------------------------------------------------- records

    def prepare(self, descriptor: Descriptor, ctx: ExportContext, records: list) -> None:
        """Note the run's context and load what this chunk's records need."""
        if self.ctx is None:
            self.ctx = ctx
            self.lang_id = next((i for i, iso in ctx.languages.items() if iso == self.lang), None)
            self.begin_run(ctx)
        if records:
            self.load(descriptor, ctx, records)

    def load(self, descriptor: Descriptor, ctx: ExportContext, records: list) -> None:
        """Load, in a fixed number of queries, what the chunk's records need."""

    def begin_run(self, ctx: ExportContext) -> None:
        """Called once, with the run's context, before the first chunk is loaded."""

    def write_record(self, descriptor: Descriptor, ctx: ExportContext, record: Any) -> None:
        raise NotImplementedError

    def write_delete(self, descriptor: Descriptor, key: tuple[str, str]) -> None:
        """Platforms have no deletion row: count it, say so once in the run's warnings."""
        self.deleted += 1

    # ------------------------------------------------------------------------------ warnings

    def warn(self, ctx: ExportContext, message: str, kind: str) -> None:
        """Add a warning to the run (past WARNING_LIMIT, count it by ``kind`` instead)."""
        if self.shown < WARNING_LIMIT:
            ctx.warnings.append(message)
            self.shown += 1
        else:
            self.hidden[kind] += 1

    def leave_out(self, ctx: ExportContext, what: str, reason: str) -> None:
        """Warn that an item is left out of the file, and why."""
        self.left_out[reason] += 1
        self.warn(ctx, f"{what} left out of {self.name}: {reason}", reason)

    def summarise(self) -> None:
        """The run's closing warnings: what was left out in all, hidden warnings, deletions."""
        ctx = self.ctx
        if ctx is None:
            return
        if self.left_out:
            total = sum(self.left_out.values())
            reasons = ", ".join(f"{r}: {n}" for r, n in self.left_out.most_common())
            ctx.warnings.append(f"{self.name}: {total} item(s) left out ({reasons})")
        if self.hidden:
            total = sum(self.hidden.values())
            kinds = ", ".join(f"{k}: {n}" for k, n in self.hidden.most_common())
            ctx.warnings.append(
                f"{self.name}: {total} more warning(s) not listed one by one ({kinds})"
            )
        if self.deleted:
            ctx.warnings.append(
                f"{self.name}: {self.deleted} deletion(s) skipped: a {self.title} has no "
                f"deletion row; {self.deletion_note}"
            )

    # ------------------------------------------------------------------------------- helpers

    def csv_writer(self, delimiter: str = ",", lineterminator: str = "\r\n"):
        """A csv writer over the feed (standard quoting: ``""`` inside quoted cells)."""
        return csv.writer(
            self.text, delimiter=delimiter, lineterminator=lineterminator, quoting=csv.QUOTE_MINIMAL
        )

    def label(self, ctx: ExportContext, product, combination=None) -> str:
        """How a warning names an item: ``product REF-12 (shop:abc 12)``, plus its variant."""
        ref = product.reference or "(no reference)"
        text = f"product {ref} ({ctx.shop} {product.id})"
        if combination is not None:
            text += f" variant {combination.reference or '(no reference)'} (id {combination.id})"
        return text
