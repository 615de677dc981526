"""Every input gets a clear answer: extreme ids, dates, slot keys, NUL bytes, typed dates of
birth and phone numbers. Never a 5xx, never a 503 that blames the database for bad input."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import pytest
from booking_helpers import VALID_DETAILS, birth_date_boxes, input_attributes, open_form, submit
from sqlalchemy import func, select

from microsite.extensions import db
from microsite.models import Booking

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
HUGE_IDS = [str(2**31), str(2**31 - 1), str(2**63), str(2**63 - 1), str(2**64), "9" * 40]
EXTREME_DATES = ["9999-12-31", "0001-01-01", "9999-12-25", "0001-01-07", "2026-02-30"]
EXTREME_KEYS = ["any-99991231T2359Z", "any-00010101T0000Z", "1-99991231T2300Z", "1-00010101T0000Z"]


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(), make_consultation_type()


def stored() -> list[Booking]:
    db.session.rollback()
    return list(db.session.scalars(select(Booking)))


def key_at_9am(clinician_id: int | None = None) -> str:
    who = "any" if clinician_id is None else str(clinician_id)
    return f"{who}-20261201T1400Z"


def assert_clear_answer(response, allowed=(200, 303, 400, 404, 409, 422)) -> None:
    assert response.status_code in allowed, (response.status_code, response.get_data()[:300])


# --- ids and dates at the edge ----------------------------------------------------------------


@pytest.mark.parametrize("huge", HUGE_IDS)
def test_ids_beyond_the_databases_integers_get_a_clear_answer(client, clinic, huge):
    _, consultation_type = clinic
    type_id = consultation_type.id
    assert client.get(f"/book/?type={huge}").status_code == 404
    assert client.get(f"/book/first-available?type={huge}").status_code == 404
    assert client.get(f"/book/details?type={huge}&slot={key_at_9am()}").status_code == 404
    picker = client.get(f"/book/?type={type_id}&clinician={huge}")
    assert picker.status_code == 200  # "any clinician", as for an unknown one
    jump = client.get(f"/book/first-available?type={type_id}&clinician={huge}")
    assert jump.status_code == 303
    assert huge not in jump.headers["Location"]
    details = client.get(f"/book/details?type={type_id}&slot={huge}-20261201T1400Z")
    assert details.status_code == 422
    for query in (
        f"type={huge}",
        f"type={type_id}&clinician={huge}",
        f"type={type_id}&days={huge}",
    ):
        answer = client.get(f"/api/slots?{query}")
        assert answer.status_code == 400, query
        assert answer.get_json()["error"]


@pytest.mark.parametrize("day", EXTREME_DATES)
def test_dates_far_outside_the_horizon_get_a_clear_answer(client, clinic, day):
    _, consultation_type = clinic
    page = client.get(f"/book/?type={consultation_type.id}&week={day}&day={day}")
    assert page.status_code == 200
    assert "December" in page.get_data(as_text=True)  # clamped to the bookable weeks
    answer = client.get(f"/api/slots?type={consultation_type.id}&from={day}")
    assert answer.status_code == 400
    assert "'from' must be a date" in answer.get_json()["error"]


@pytest.mark.parametrize("key", EXTREME_KEYS)
def test_slot_keys_in_year_1_or_9999_are_not_offered(client, clinic, key):
    clinician, consultation_type = clinic
    key = key.replace("1-", f"{clinician.id}-", 1) if key.startswith("1-") else key
    page = client.get(f"/book/details?type={consultation_type.id}&slot={key}")
    assert page.status_code == 422
    assert "not one we offer" in page.get_data(as_text=True)
    _, hidden = open_form(client, consultation_type.id, key_at_9am())
    posted = client.post("/book/details", data={**hidden, **VALID_DETAILS, "slot": key})
    assert posted.status_code == 422
    assert stored() == []


# --- NUL bytes and control characters ---------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["full_name", "email", "phone", "note", "birth_date-month", "birth_date-year"]
)
def test_a_nul_byte_in_a_field_is_never_a_database_outage(client, clinic, field):
    _, consultation_type = clinic
    value = VALID_DETAILS[field]
    response = submit(client, consultation_type.id, key_at_9am(), **{field: value + "\x00"})
    assert_clear_answer(response, (303, 422))
    assert "unavailable" not in response.get_data(as_text=True)
    for booking in stored():
        assert "\x00" not in booking.patient_name + booking.patient_email + booking.patient_note


def test_nul_bytes_in_hidden_fields_and_query_strings_get_a_clear_answer(client, clinic):
    _, consultation_type = clinic
    response = submit(
        client,
        consultation_type.id,
        key_at_9am(),
        idempotency_key=uuid.uuid4().hex + "\x00",
        slot=key_at_9am() + "\x00",
        consultation_type=f"{consultation_type.id}\x00",
    )
    assert_clear_answer(response, (303, 422))
    for url in (
        "/book/?type=%00",
        f"/book/?type={consultation_type.id}&week=%00&clinician=%00",
        "/book/details?type=%00&slot=%00",
        "/api/slots?type=%00",
        f"/api/slots?type={consultation_type.id}&from=%00",
    ):
        assert_clear_answer(client.get(url))


def test_control_characters_are_removed_and_the_notes_line_breaks_kept(client, clinic):
    _, consultation_type = clinic
    response = submit(
        client,
        consultation_type.id,
        key_at_9am(),
        full_name="Jane\x07 Q.\x1b Patient",
        note="First line\r\nSecond\x00 line\x0b",
    )
    assert response.status_code == 303
    [booking] = stored()
    assert booking.patient_name == "Jane Q. Patient"
    assert booking.patient_note == "First line\nSecond line"


# --- the date of birth as people type it ------------------------------------------------------

BOX_LABEL_RE = re.compile(r'<label for="birth_date-(\w+)">(\w+)</label>')
DATE_EXAMPLE_RE = re.compile(r'id="birth_date-hint">For example, ([0-9]+) ([0-9]+) ([0-9]+)\.')


@pytest.mark.parametrize(
    "typed",
    [
        ("04", "23", "1985"),
        ("4", "23", "1985"),
        (" 04 ", " 23 ", " 1985 "),
        ("Apr", "23", "1985"),
        ("april", "23", "1985"),
    ],
)
def test_a_date_of_birth_is_accepted_as_people_type_it_into_the_boxes(client, clinic, typed):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, key_at_9am(), **birth_date_boxes(*typed))
    assert response.status_code == 303
    assert stored()[0].patient_birth_date == date(1985, 4, 23)


def test_the_date_example_typed_into_the_boxes_in_order_is_the_date_it_means(client, clinic):
    _, consultation_type = clinic
    page = open_form(client, consultation_type.id, key_at_9am())[0].get_data(as_text=True)
    boxes = BOX_LABEL_RE.findall(page)
    assert boxes == [("month", "Month"), ("day", "Day"), ("year", "Year")]
    example = DATE_EXAMPLE_RE.search(page).groups()
    typed = dict(zip((part for part, _ in boxes), example, strict=True))
    response = submit(client, consultation_type.id, key_at_9am(), **birth_date_boxes(**typed))
    assert response.status_code == 303
    assert stored()[0].patient_birth_date == date(1985, 4, 23)


ALL_BOXES = ("month", "day", "year")


@pytest.mark.parametrize(
    ("typed", "message", "boxes"),
    [
        (("", "", ""), "Enter your date of birth.", ALL_BOXES),
        (("04", "23", ""), "Date of birth must include a year.", ("year",)),
        (("", "23", "1985"), "Date of birth must include a month.", ("month",)),
        (("", "23", ""), "Date of birth must include a month and a year.", ("month", "year")),
        (
            ("02", "30", "1985"),
            "Date of birth must be a real date: February 1985 has 28 days.",
            ("day",),
        ),
        (("04", "31", "1985"), "April 1985 has 30 days.", ("day",)),
        (("13", "01", "1985"), "the month must be a number from 1 to 12.", ("month",)),
        (("Smarch", "01", "1985"), "the month must be a number from 1 to 12.", ("month",)),
        (("04", "32", "1985"), "the day must be a number from 1 to 31.", ("day",)),
        (("04", "0", "1985"), "the day must be a number from 1 to 31.", ("day",)),
        (("04", "23", "85"), "Enter the year in full, like 1985.", ("year",)),
        (("04", "23", "١٩٨٥"), "Enter the year in full, like 1985.", ("year",)),
        (("04", "23", "2099"), "Date of birth must be in the past.", ALL_BOXES),
        (("12", "01", "2026"), "Date of birth must be in the past.", ALL_BOXES),  # tomorrow
        (("01", "01", "1850"), "Check the year of your date of birth.", ("year",)),
    ],
)
def test_a_date_of_birth_that_is_not_a_real_one_says_what_to_fix(
    client, clinic, typed, message, boxes
):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, key_at_9am(), **birth_date_boxes(*typed))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert stored() == []
    # The message, beside the boxes and in the summary, which links to the first box to fix.
    assert message in page.split('id="birth_date-error"', 1)[1].split("</p>", 1)[0]
    summary = page.split('id="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert f'<a href="#birth_date-{boxes[0]}">' in summary
    assert message in summary
    for part, value in zip(ALL_BOXES, typed, strict=True):
        box = input_attributes(page, f"birth_date-{part}")
        assert box["value"] == value.strip()  # what they typed is kept to correct
        assert (box.get("aria-invalid") == "true") == (part in boxes), part


@pytest.mark.parametrize(
    "typed", [("02", "29", "1984"), ("11", "30", "2026"), ("01", "01", "1906")]
)
def test_a_leap_day_a_baby_born_today_and_the_oldest_year_are_accepted(client, clinic, typed):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, key_at_9am(), **birth_date_boxes(*typed))
    assert response.status_code == 303
    month, day, year = (int(n) for n in typed)
    assert stored()[0].patient_birth_date == date(year, month, day)


# --- phone numbers ----------------------------------------------------------------------------

PHONE_EXAMPLE_RE = re.compile(r"like (\+?[0-9][0-9 ()-]+[0-9]|\([0-9]{3}\) [0-9 -]+[0-9])")


def test_every_phone_example_the_site_shows_is_accepted(client, clinic, app):
    _, consultation_type = clinic
    refused = submit(client, consultation_type.id, key_at_9am(), phone="12")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    examples = set(PHONE_EXAMPLE_RE.findall(page))
    assert len(examples) >= 2, examples  # a local and an international example
    for n, example in enumerate(sorted(examples)):
        key = f"any-20261201T{14 + n:02d}00Z"  # one free hour each
        response = submit(client, consultation_type.id, key, phone=example)
        assert response.status_code == 303, (example, response.status_code)
    assert len(stored()) == len(examples)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+61 4 1234 5678", "+61412345678"),
        ("(207) 555-0123", "+12075550123"),
        ("207.555.0123", "+12075550123"),
    ],
)
def test_international_numbers_with_a_plus_are_accepted(client, clinic, typed, e164):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, key_at_9am(), phone=typed)
    assert response.status_code == 303
    assert stored()[0].patient_phone == e164


def test_nothing_is_stored_for_a_refused_form(client, clinic):
    _, consultation_type = clinic
    submit(client, consultation_type.id, key_at_9am(), phone="not a phone")
    submit(client, consultation_type.id, key_at_9am(), email="nope")
    count = db.session.scalar(select(func.count()).select_from(Booking))
    assert count == 0


def test_a_statement_the_database_refuses_is_not_reported_as_an_outage(client, clinic, monkeypatch):
    from sqlalchemy.exc import DataError

    from microsite.services import booking as booking_service

    def refused(**_kwargs):
        raise DataError("INSERT ...", {}, ValueError("invalid byte sequence"))

    _, consultation_type = clinic
    monkeypatch.setattr(booking_service, "book_slot", refused)
    response = submit(client, consultation_type.id, key_at_9am())
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert "unavailable" not in response.get_data(as_text=True)
