"""Pure input rules for every route's parameters: ids, dates and text, bounded once, here.

No Flask, no database. Views read request values through these functions, so a value out of
range becomes "absent" (or a 400 on the JSON API) at the edge instead of an overflow, a
database error or a misleading 503 deep inside.
"""

from __future__ import annotations

import calendar
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
# The boxes of a date as the clinic (in the US) writes it: month, day, year.
DATE_PARTS = ("month", "day", "year")
OLDEST_AGE_YEARS = 120
_ONE_OR_TWO_DIGITS = re.compile(r"[0-9]{1,2}")
_FOUR_DIGITS = re.compile(r"[0-9]{4}")


class DateInputError(ValueError):
    """A date as a person typed it that is not one; the message says what to fix, and `parts`
    which of the boxes it is about (in DATE_PARTS order)."""

    def __init__(self, message: str, parts: tuple[str, ...] = DATE_PARTS) -> None:
        super().__init__(message)
        self.parts = parts


def parse_birth_date(month: str, day: str, year: str, *, today: date) -> date:
    """A date of birth typed into three boxes: month (a number, or a name like "Apr"), day and a
    four-digit year; at most OLDEST_AGE_YEARS years back and not after `today`.

    Raises DateInputError with a message a patient can act on, naming the boxes to fix: a box
    left empty, a month or day that cannot be, a short year, or why a date is not a real one
    ("February 1985 has 28 days").
    """
    month, day, year = (clean_text(value) for value in (month, day, year))
    typed = dict(zip(DATE_PARTS, (month, day, year), strict=True))
    missing = tuple(part for part, value in typed.items() if not value)
    if len(missing) == len(DATE_PARTS):
        raise DateInputError("Enter your date of birth.")
    if missing:
        names = " and ".join(f"a {part}" for part in missing)
        raise DateInputError(f"Date of birth must include {names}.", missing)
    month_n = _month_number(month)
    if month_n is None:
        raise DateInputError(
            "Date of birth must be a real date: the month must be a number from 1 to 12.",
            ("month",),
        )
    day_n = int(day) if _ONE_OR_TWO_DIGITS.fullmatch(day) else 0
    if not 1 <= day_n <= 31:
        raise DateInputError(
            "Date of birth must be a real date: the day must be a number from 1 to 31.",
            ("day",),
        )
    if not _FOUR_DIGITS.fullmatch(year):
        raise DateInputError("Enter the year in full, like 1985.", ("year",))
    year_n = int(year)
    if year_n < today.year - OLDEST_AGE_YEARS:
        raise DateInputError("Check the year of your date of birth.", ("year",))
    if year_n > today.year:
        raise DateInputError("Date of birth must be in the past.")
    days_in_month = calendar.monthrange(year_n, month_n)[1]
    if day_n > days_in_month:
        raise DateInputError(
            f"Date of birth must be a real date: {_MONTHS[month_n - 1]} {year_n} has "
            f"{days_in_month} days.",
            ("day",),
        )
    born = date(year_n, month_n, day_n)
    if born > today:
        raise DateInputError("Date of birth must be in the past.")
    return born


def _month_number(typed: str) -> int | None:
    """1 to 12 from "4", "04", "Apr" or "april" (GOV.UK's advice: accept a month's name)."""
    if _ONE_OR_TWO_DIGITS.fullmatch(typed):
        number = int(typed)
        return number if 1 <= number <= 12 else None
    if len(typed) >= 3:
        for number, name in enumerate(_MONTHS, start=1):
            if name.lower().startswith(typed.lower()):
                return number
    return None
