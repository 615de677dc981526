"""Helpers for tests that go through the booking pages like a patient without JavaScript."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from live_server import PATIENT
from tests_support import csrf_token

# The same patient the real-process tests and benchmarks send, with a note filled in.
VALID_DETAILS = {**PATIENT, "note": "I have tried three antidepressants."}
HIDDEN_RE = re.compile(r'<input[^>]*name="(\w+)"[^>]*type="hidden"[^>]*value="([^"]*)"')
HIDDEN_RE_ALT = re.compile(r'<input[^>]*type="hidden"[^>]*name="(\w+)"[^>]*value="([^"]*)"')
INPUT_RE = re.compile(r"<input\b[^>]*>")
ATTRIBUTE_RE = re.compile(r'([\w-]+)="([^"]*)"')


def input_attributes(html: str, name: str) -> dict[str, str]:
    """The attributes of the page's input of this name, as written (still HTML-escaped)."""
    for tag in INPUT_RE.findall(html):
        attributes = dict(ATTRIBUTE_RE.findall(tag))
        if attributes.get("name") == name:
            return attributes
    raise AssertionError(f"no input named {name!r}")


def birth_date_boxes(month: str, day: str, year: str) -> dict[str, str]:
    """The date of birth as the form's three boxes send it."""
    return {"birth_date-month": month, "birth_date-day": day, "birth_date-year": year}


def slot_key_for(start: datetime, clinician_id: int | None = None) -> str:
    who = "any" if clinician_id is None else str(clinician_id)
    return f"{who}-{start.astimezone(UTC):%Y%m%dT%H%MZ}"


def hidden_fields(html: str) -> dict[str, str]:
    fields = dict(HIDDEN_RE.findall(html))
    fields.update(HIDDEN_RE_ALT.findall(html))
    return fields


def open_form(client, type_id: int, key: str):
    """GET the details page; returns (response, hidden form fields)."""
    response = client.get(f"/book/details?type={type_id}&slot={key}")
    html = response.get_data(as_text=True)
    return response, hidden_fields(html) if 'name="csrf_token"' in html else {}


def submit(client, type_id: int, key: str, **overrides):
    """Open the form for a slot and submit it with valid details (changed by overrides)."""
    response, hidden = open_form(client, type_id, key)
    assert hidden, f"no form for {key}: {response.status_code}"
    data = {**hidden, **VALID_DETAILS, "csrf_token": csrf_token(response.get_data(as_text=True))}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/book/details", data=data)
