"""Pure CSV building for staff exports: spreadsheet-safe cells, UTF-8 with a BOM. No Flask.

A cell that starts with = + - @, a tab or a carriage return could run as a formula when the
file is opened in Excel or LibreOffice (OWASP "CSV injection"); such cells get a leading
apostrophe, which spreadsheets show as text and never evaluate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def build_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The rows as CSV bytes, UTF-8 with a byte-order mark so Excel reads names correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")
