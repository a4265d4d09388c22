"""GTIN (UPC, EAN, JAN, ISBN-13, ITF-14) checks: GS1 check digit and Google's restricted ranges."""

from __future__ import annotations

LENGTHS = (8, 12, 13, 14)


def gs1_check_digit(body: str) -> int:
    """The GS1 check digit of ``body`` (the digits before it): weights 3, 1, 3, ... from the end."""
    if not body.isdigit():
        raise ValueError(f"{body!r} is not a string of digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def normalise(value: str | None) -> str:
    """The digits of a GTIN as written (spaces and dashes dropped, as Google does)."""
    return "".join(ch for ch in (value or "") if ch not in " -").strip()


def gtin_problem(value: str | None) -> str | None:
    """Why ``value`` is not a GTIN Google accepts, or None if it is one."""
    digits = normalise(value)
    if not digits:
        return "empty"
    if not digits.isdigit():
        return "not only digits"
    if len(digits) not in LENGTHS:
        return f"{len(digits)} digits, not 8, 12, 13 or 14"
    if set(digits) == {"0"}:
        return "all zeros"
    if gs1_check_digit(digits[:-1]) != int(digits[-1]):
        return "bad check digit"
    # Compare on the 13 digits after the GTIN-14 indicator: UPC 2xx/4xx/5xx become 02/04/05.
    gtin13 = digits.zfill(14)[1:]
    if len(digits) != 8 and (gtin13.startswith(("2", "02", "04", "05", "98", "99"))):
        return "restricted or coupon range (prefix 02, 04, 05, 2, 98 or 99)"
    return None


def valid_gtin(value: str | None) -> bool:
    """Whether ``value`` is a GTIN with a valid check digit outside the restricted ranges."""
    return gtin_problem(value) is None


def isbn13(isbn: str) -> str:
    """An ISBN as the GTIN Google wants: an ISBN-10 becomes its ISBN-13 (978 prefix); anything
    else is returned as written, for the GTIN check to judge."""
    digits = normalise(isbn).upper()
    if (
        len(digits) != 10
        or not digits[:9].isdigit()
        or not (digits[9].isdigit() or digits[9] == "X")
    ):
        return isbn
    check = sum((10 - i) * int(d) for i, d in enumerate(digits[:9])) + (
        10 if digits[9] == "X" else int(digits[9])
    )
    if check % 11:
        return isbn  # not an ISBN-10: let the GTIN check say why
    body = "978" + digits[:9]
    return body + str(gs1_check_digit(body))
