"""Value generators shared by the factories: prices, dates, EAN-13 codes, slugs, keys.

They draw from factory-boy's random generator, which ``factory.random.reseed_random`` seeds, so
the same seed gives the same values; dates are offsets from a fixed epoch, never the clock.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from factory.random import randgen

# Every seeded date is EPOCH plus an offset: the same seed gives the same dates on any day.
EPOCH = datetime(2024, 1, 1, 9, 0, 0)
CATALOG_DAYS = 730  # seeded products were created over the two years after EPOCH

ZERO = Decimal("0")
CENT = Decimal("0.01")
VAT = Decimal("1.20")  # French standard rate

# GS1 prefixes of a few countries (France, Germany, UK, Italy, Spain), as found on real goods.
GS1_PREFIXES = [f"{p:03d}" for p in (*range(300, 380), *range(400, 441), 500, 501, 506, 800, 840)]

# A multiplier prime to 10 makes n -> (n * M + k) mod 10**9 a bijection: unique codes per id
# that still look random, with no lookup of the codes already used.
_SCRAMBLE = 387_420_489
_DIGITS36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def money(low: float, high: float) -> Decimal:
    """A price between ``low`` and ``high``, ending in .90 or .99 as shop prices do."""
    euros = randgen.randrange(int(low), int(high) + 1)
    return Decimal(euros) + (Decimal("0.99") if randgen.random() < 0.6 else Decimal("0.90"))


def catalog_price() -> Decimal:
    """A retail price: mostly cheap, a long tail of expensive products."""
    band = randgen.random()
    if band < 0.55:
        return money(3, 40)
    if band < 0.9:
        return money(40, 150)
    return money(150, 900)


def wholesale_of(price: Decimal) -> Decimal:
    """A wholesale price: 40 to 70 % of the retail price."""
    return (price * Decimal(randgen.randrange(40, 71)) / 100).quantize(CENT)


def measure(low: float, high: float, places: int = 3) -> Decimal:
    """A dimension or weight, with ``places`` decimals."""
    return Decimal(f"{randgen.uniform(low, high):.{places}f}")


def stock_quantity() -> int:
    """A stock level; one in ten is sold out, as feeds must carry zeros too."""
    return 0 if randgen.random() < 0.1 else randgen.randrange(1, 500)


def date_in_catalog() -> datetime:
    """A creation date within the catalog's two years, to the minute."""
    return EPOCH + timedelta(minutes=randgen.randrange(CATALOG_DAYS * 24 * 60))


def later(start: datetime, max_days: int = 120) -> datetime:
    """A date up to ``max_days`` after ``start``."""
    return start + timedelta(minutes=randgen.randrange(max_days * 24 * 60 + 1))


class Weighted:
    """A random choice among weighted values: ``Weighted(("new", 96), ("used", 4))()``."""

    def __init__(self, *choices: tuple[object, int]):
        self.values = [value for value, _ in choices]
        self.cumulative = list(accumulate(weight for _, weight in choices))

    def __call__(self) -> object:
        """One of the values."""
        return randgen.choices(self.values, cum_weights=self.cumulative)[0]


def with_tax(amount: Decimal) -> Decimal:
    """``amount`` with VAT, to the cent."""
    return (amount * VAT).quantize(CENT)


def email_for(firstname: str, lastname: str, n: int) -> str:
    """A unique address at example.com (``n`` makes it unique)."""
    return f"{slugify(firstname)}.{slugify(lastname)}.{n}@example.com"


def ean13_check_digit(body: str) -> str:
    """The check digit of a 12-digit EAN-13 body."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return str(-total % 10)


def is_valid_ean13(code: str | None) -> bool:
    """Whether ``code`` is 13 digits with a correct check digit."""
    return (
        code is not None
        and len(code) == 13
        and code.isdigit()
        and ean13_check_digit(code[:12]) == code[12]
    )


def scramble(n: int, key: int) -> int:
    """A 9-digit number unique to ``n`` (below 10**9) for a given ``key``."""
    return (n * _SCRAMBLE + key) % 1_000_000_000


def ean13_for(n: int, key: int) -> str:
    """A valid EAN-13 unique to ``n``: a GS1 prefix and a scrambled item number."""
    body = GS1_PREFIXES[n % len(GS1_PREFIXES)] + f"{scramble(n, key):09d}"
    return body + ean13_check_digit(body)


def random_ean13() -> str:
    """A valid EAN-13 with random digits (for test rows, where uniqueness is by luck)."""
    body = randgen.choice(GS1_PREFIXES) + f"{randgen.randrange(10**9):09d}"
    return body + ean13_check_digit(body)


def base36(n: int, width: int) -> str:
    """``n`` in base 36, upper case, left-padded with zeros to ``width``."""
    out = ""
    while n:
        n, digit = divmod(n, 36)
        out = _DIGITS36[digit] + out
    return out.rjust(width, "0")


def slugify(text: str) -> str:
    """A PrestaShop link_rewrite: ASCII, lower case, words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
