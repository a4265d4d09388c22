"""Value rules shared by the platform templates: prices, numbers, text, handles, discounts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import lxml.html
from lxml import etree

# ISO 4217 currencies without minor unit: their prices are written without decimals.
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
# Elements after which a plain-text rendering starts a new line.
BLOCKS = frozenset(
    "p div br li ul ol tr table h1 h2 h3 h4 h5 h6 blockquote pre section article dd dt".split()
)
# A cell a spreadsheet would run as a formula starts with one of these.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def decimal(value: Any) -> Decimal:
    """A database number as a Decimal (0 for None)."""
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def amount(value: Any, currency: str) -> str:
    """A price as the platforms want it: dot decimal, the currency's decimals, no symbol."""
    places = Decimal(1) if currency in ZERO_DECIMAL else Decimal("0.01")
    return str(decimal(value).quantize(places, rounding=ROUND_HALF_UP))


def number(value: Any, blank_zero: bool = False) -> str:
    """A measure or quantity without trailing zeros (``2.5``, ``12``); blank for None."""
    if value is None:
        return ""
    d = decimal(value)
    if blank_zero and d == 0:
        return ""
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "") else text


def plain_text(html: str | None) -> str:
    """The text of an HTML fragment (tags gone, entities decoded, one line per block)."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(html.split())
    etree.strip_elements(root, "script", "style", etree.Comment, with_tail=False)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in BLOCKS:
            el.tail = "\n" + (el.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def slug(text: str | None) -> str:
    """Lowercase ASCII letters, digits and dashes (a Shopify handle, a URL segment)."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def neutralise(text: str | None) -> str:
    """Free text a spreadsheet would run as a formula, prefixed with ``'``."""
    text = text or ""
    return "'" + text if text.startswith(FORMULA_START) else text


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def day(value: datetime | None) -> str:
    """A date as ``yyyy-mm-dd`` (blank for None)."""
    return value.strftime("%Y-%m-%d") if value else ""


def iso_minute(value: datetime) -> str:
    """A stored (naive UTC) time as ISO 8601 to the minute: 2026-03-01T13:00+0000."""
    return value.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M%z")


def utcnow() -> datetime:
    """Now, naive UTC, as the catalog stores times."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


# ----------------------------------------------------------------------------- discounts


@dataclass(frozen=True)
class Discount:
    """A specific price that applies to everyone buying one unit: its price and window."""

    price: Decimal
    start: datetime | None
    end: datetime | None
    reduction: Decimal
    kind: str  # amount | percentage
    fixed_price: Decimal | None  # a specific price that replaces the base price

    def active(self, at: datetime) -> bool:
        """Whether the discount applies at ``at``."""
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


def _for_everyone(sp) -> bool:
    # Feeds show one public price: not a group's, a customer's, a country's or a quantity's.
    return (
        not sp.id_group
        and not sp.id_customer
        and not sp.id_country
        and not sp.id_currency
        and (sp.from_quantity or 1) <= 1
    )


def discount(
    specific_prices, base: Decimal, impact: Decimal, combination_id: int, at: datetime, future: bool
) -> Discount | None:
    """The discount on one item (a product, or one of its combinations) at ``at``.

    ``base`` is the product's price and ``impact`` the combination's. Among the discounts that
    apply now, the lowest price wins; with ``future``, a discount that starts later and has an
    end (a window a feed can announce) counts when none applies now. Tax is not modelled: an
    amount off is taken off the tax-excluded price.
    """
    now_found: list[Discount] = []
    later: list[Discount] = []
    for sp in specific_prices:
        if sp.id_product_attribute not in (0, combination_id) or not _for_everyone(sp):
            continue
        start, end = sp._mapping["from"], sp._mapping["to"]
        if end is not None and end <= at:
            continue
        fixed = decimal(sp.price) if decimal(sp.price) >= 0 else None
        price = (fixed if fixed is not None else base) + impact
        reduction = decimal(sp.reduction)
        if sp.reduction_type == "percentage":
            price = price * (1 - reduction)
        else:
            price = price - reduction
        if price <= 0 or price >= base + impact:
            continue
        found = Discount(price, start, end, reduction, sp.reduction_type, fixed)
        if found.active(at):
            now_found.append(found)
        elif future and end is not None:
            later.append(found)
    if now_found:
        return min(now_found, key=lambda d: d.price)
    if later:
        return min(later, key=lambda d: (d.start, d.price))
    return None
