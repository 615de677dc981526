"""Pure input rules for every route's parameters: ids, dates and text, bounded once, here.

No Flask, no database. Views read request values through these functions, so a value out of
range becomes "absent" (or a 400 on the JSON API) at the edge instead of an overflow, a
database error or a misleading 503 deep inside.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# Ids fit a 32-bit signed integer: the smallest integer column of both databases.
MAX_ID = 2**31 - 1
# Dates anyone can mean on this site. Wider than the booking horizon (views clamp further),
# narrow enough that date arithmetic (weeks, margins, time zones) can never overflow.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)
_DIGITS = re.compile(r"[0-9]{1,10}")
# Line breaks a textarea may send; kept (as "\n") in multi-line fields only.
_NEWLINES = re.compile(r"\r\n?")


def parse_id(raw: str | None) -> int | None:
    """A positive database id written in plain digits, or None for anything else."""
    value = (raw or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def parse_count(raw: str | None, low: int, high: int) -> int | None:
    """A whole number in [low, high] written in plain digits, or None."""
    value = (raw or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def parse_date(raw: str | None, earliest: date = EARLIEST_DATE, latest: date = LATEST_DATE):
    """An ISO date (YYYY-MM-DD) within [earliest, latest], or None."""
    value = (raw or "").strip()
    if len(value) != 10:  # fromisoformat also takes 20261130 and week dates; we don't
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if earliest <= day <= latest else None


def clean_text(value: str | None, *, multiline: bool = False) -> str:
    """Text without NUL or other control characters (PostgreSQL refuses NUL; nobody types one).

    Multi-line fields keep their line breaks as "\\n" and tabs; one-line fields lose both.
    Unicode format characters (category Cf, e.g. right-to-left marks) are kept: names need them.
    """
    if not value:
        return ""
    if value.isprintable():
        # Nothing to remove (no Cc, no line or paragraph separator; tabs and line breaks are
        # not printable either): the common case for every field, without a per-character walk.
        return value.strip()
    if multiline:
        value = _NEWLINES.sub("\n", value)
    keep = "\n\t" if multiline else ""
    return "".join(
        ch
        for ch in value
        if ch in keep or not (unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029")
    ).strip()


_MONTHS = [
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
]
_US_DATE = re.compile(r"([0-9]{1,2})\s*/\s*([0-9]{1,2})\s*/\s*([0-9]+)")
_ISO_DATE = re.compile(r"([0-9]+)-([0-9]{1,2})-([0-9]{1,2})")


class DateInputError(ValueError):
    """A date as a person typed it that is not one; the message says what to fix."""


def parse_typed_date(raw: str | None) -> date:
    """A date typed as MM/DD/YYYY (the clinic's usual way) or YYYY-MM-DD (a date picker).

    Raises DateInputError with a message a patient can act on: the format, a full year, or why
    a well-formed date is not a real one ("February 1985 has 28 days").
    """
    value = clean_text(raw)
    if match := _US_DATE.fullmatch(value):
        month, day, year = match.groups()
    elif match := _ISO_DATE.fullmatch(value):
        year, month, day = match.groups()
    else:
        raise DateInputError("Enter your date of birth as month/day/year, like 04/23/1985.")
    if len(year) != 4:
        raise DateInputError("Enter the year in full, like 1985.")
    year_n, month_n, day_n = int(year), int(month), int(day)
    if not 1 <= month_n <= 12:
        raise DateInputError(f"{value} is not a real date: the month must be 1 to 12.")
    try:
        return date(year_n, month_n, day_n)
    except ValueError:
        days_in_month = _days_in_month(year_n, month_n)
        raise DateInputError(
            f"{value} is not a real date: {_MONTHS[month_n - 1]} {year} has {days_in_month} days."
        ) from None


def _days_in_month(year: int, month: int) -> int:
    for day in (31, 30, 29, 28):
        try:
            date(max(year, 1), month, day)
        except ValueError:
            continue
        return day
    return 28
