"""Retention purge and a patient's access and erasure requests, through the commands."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from microsite.extensions import db
from microsite.models import Booking
from microsite.services.history import booking_history

NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # the frozen clock's instant
PATIENT_EMAIL = "Robin.Archer@example.com"


@pytest.fixture
def run(app):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        db.session.rollback()  # the command's own transactions must see every committed row
        result = runner.invoke(app.cli, list(args), input=input)
        db.session.expire_all()
        return result

    return invoke


@pytest.fixture
def book(frozen_clock, make_clinician, make_consultation_type, make_booking):
    clinician, consultation_type = make_clinician(), make_consultation_type()

    def make(starts_at: datetime, **overrides) -> Booking:
        return make_booking(clinician, consultation_type, starts_at, **overrides)

    return make


def patient_fields(booking: Booking) -> tuple:
    return (
        booking.patient_name,
        booking.patient_email,
        booking.patient_phone,
        booking.patient_birth_date,
        booking.patient_note,
    )


ERASED = ("[erased]", "[erased]", "[erased]", date(1900, 1, 1), "[erased]")


def test_purge_refuses_to_run_until_the_clinic_sets_a_retention_period(app, book, run):
    old = book(NOW - timedelta(days=4000))
    result = run("retention", "purge")
    assert result.exit_code != 0
    assert "RETENTION_DAYS is not set, so nothing was erased" in result.output
    assert old.patient_name == "Pat Example"


@pytest.mark.parametrize("value", ["a year", 0, -30, 365.5, True])
def test_purge_refuses_a_retention_period_that_is_not_whole_days(app, book, run, value):
    old = book(NOW - timedelta(days=4000))
    app.config["RETENTION_DAYS"] = value
    result = run("retention", "purge")
    assert result.exit_code != 0
    assert "must be a whole number of days" in result.output
    assert old.erased_at is None


def test_purge_erases_patient_fields_of_long_past_bookings_and_keeps_the_rest(app, book, run):
    app.config["RETENTION_DAYS"] = "365"  # as a string, the way instance config may hold it
    old = book(NOW - timedelta(days=400), patient_note="Side effects last time")
    kept = {
        "uid": old.uid,
        "reference": old.reference,
        "starts_at": old.starts_at,
        "ends_at": old.ends_at,
        "clinician_id": old.clinician_id,
        "consultation_type_id": old.consultation_type_id,
        "status": old.status,
    }
    recent = book(NOW - timedelta(days=300), reference="RECENT")
    upcoming = book(NOW + timedelta(days=2), reference="COMING")

    result = run("retention", "purge")
    assert result.exit_code == 0, result.output
    assert "Erased the patient details of 1 booking(s) that ended before 2025-11-30" in (
        result.output
    )
    assert patient_fields(old) == ERASED
    assert {name: getattr(old, name) for name in kept} == kept
    assert old.erased_at == NOW
    assert patient_fields(recent)[0] == "Pat Example"
    assert patient_fields(upcoming)[0] == "Pat Example"
    assert [(e.kind, e.actor, e.detail) for e in booking_history(old.id)] == [
        ("erased", "system", "retention period")
    ]


def test_a_dry_run_counts_and_changes_nothing(app, book, run):
    app.config["RETENTION_DAYS"] = 30
    old = book(NOW - timedelta(days=31))
    result = run("retention", "purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: 1 booking(s)" in result.output
    assert "Nothing was changed." in result.output
    assert old.erased_at is None
    assert booking_history(old.id) == []


def test_purging_again_changes_nothing_more(app, book, run):
    app.config["RETENTION_DAYS"] = 30
    old = book(NOW - timedelta(days=60))
    assert run("retention", "purge").exit_code == 0
    first_erased_at = old.erased_at
    again = run("retention", "purge")
    assert again.exit_code == 0
    assert "Erased the patient details of 0 booking(s)" in again.output
    assert old.erased_at == first_erased_at
    assert len(booking_history(old.id)) == 1


def test_purge_works_through_many_batches(app, book, run):
    app.config["RETENTION_DAYS"] = 30
    olds = [book(NOW - timedelta(days=60 + day)) for day in range(5)]
    result = run("retention", "purge", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "of 5 booking(s)" in result.output
    assert all(b.erased_at is not None for b in olds)


# --- a patient's access and erasure requests ----------------------------------------------


def test_export_prints_every_booking_for_the_address_with_its_history(book, run, frozen_clock):
    first = book(NOW - timedelta(days=20), patient_email=PATIENT_EMAIL, patient_name="Robin A")
    second = book(NOW + timedelta(days=3), patient_email=PATIENT_EMAIL.lower())
    book(NOW + timedelta(days=4), patient_email="someone.else@example.com")
    assert run("bookings", "cancel", second.reference).exit_code == 0

    result = run("patient", "export", " ROBIN.archer@EXAMPLE.com ")
    assert result.exit_code == 0, result.output
    export = json.loads(result.output)
    assert [b["reference"] for b in export["bookings"]] == [first.reference, second.reference]
    record = export["bookings"][0]
    assert record["patient"] == {
        "name": "Robin A",
        "email": PATIENT_EMAIL,
        "phone": "+12025550143",
        "birth_date": "1980-01-02",
        "note": "",
    }
    assert record["starts_at"] == "2026-11-10T13:00:00Z"
    assert record["clinician"] == "Dr. Test Clinician"
    assert export["bookings"][1]["status"] == "cancelled"
    assert [(e["kind"], e["actor"]) for e in export["bookings"][1]["history"]] == [
        ("cancelled", "cli")
    ]
    assert "someone.else" not in result.output


def test_erase_refuses_while_a_booking_is_still_to_come(book, run):
    past = book(NOW - timedelta(days=20), patient_email=PATIENT_EMAIL)
    coming = book(NOW + timedelta(days=3), patient_email=PATIENT_EMAIL)
    result = run("patient", "erase", PATIENT_EMAIL, "--yes")
    assert result.exit_code != 0
    assert f"upcoming booking(s) ({coming.reference})" in result.output
    assert "Nothing was erased" in result.output
    assert past.erased_at is None
    assert coming.status == "confirmed"


def test_erase_with_upcoming_cancels_them_then_erases_everything(book, run):
    past = book(NOW - timedelta(days=20), patient_email=PATIENT_EMAIL)
    coming = book(NOW + timedelta(days=3), patient_email=PATIENT_EMAIL)
    other = book(NOW + timedelta(days=4), patient_email="someone.else@example.com")
    result = run("patient", "erase", PATIENT_EMAIL, "--include-upcoming", "--yes")
    assert result.exit_code == 0, result.output
    assert f"Cancelled first: {coming.reference}." in result.output
    assert patient_fields(past) == ERASED
    assert patient_fields(coming) == ERASED
    assert coming.status == "cancelled"  # the clinician's time is free again
    assert [(e.kind, e.actor) for e in booking_history(coming.id)] == [
        ("cancelled", "cli"),
        ("erased", "cli"),
    ]
    assert other.patient_email == "someone.else@example.com"
    assert json.loads(run("patient", "export", PATIENT_EMAIL).output)["bookings"] == []


def test_erase_asks_first_and_no_keeps_everything(book, run):
    past = book(NOW - timedelta(days=20), patient_email=PATIENT_EMAIL)
    result = run("patient", "erase", PATIENT_EMAIL, input="n\n")
    assert "This cannot be undone." in result.output
    assert result.exit_code != 0
    assert past.erased_at is None
    confirmed = run("patient", "erase", PATIENT_EMAIL, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert past.erased_at is not None


def test_erase_of_an_unknown_address_says_so(book, run):
    book(NOW - timedelta(days=20))
    result = run("patient", "erase", "nobody@example.com", "--yes")
    assert result.exit_code == 0
    assert "No booking holds that address" in result.output
    assert db.session.scalars(select(Booking)).one().erased_at is None


def test_erasing_skips_the_patients_waiting_emails_and_closes_their_manage_links(
    app, frozen_clock, make_clinician, make_consultation_type, client
):
    """Staff emails still go (no patient data in them); patient ones would go to "[erased]"."""
    from booking_helpers import slot_key_for, submit
    from sqlalchemy import select

    from microsite.extensions import db
    from microsite.models import Booking, ManageLink, OutboxMessage
    from microsite.services.manage_links import booking_for_token, issue_link
    from microsite.services.patient_rights import erase_patient

    clinician, kind = make_clinician(), make_consultation_type()
    start = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # Wednesday 10:00 local
    assert submit(client, kind.id, slot_key_for(start, clinician.id)).status_code == 303
    booking = db.session.scalars(select(Booking)).one()
    token = issue_link(booking.id)  # what sending the confirmation does
    db.session.commit()
    assert booking_for_token(token) is not None

    result = erase_patient(booking.patient_email, include_upcoming=True)
    assert result.cancelled == [booking.reference]
    messages = db.session.scalars(select(OutboxMessage)).all()
    by_role = {(m.recipient_role, m.kind): m.status for m in messages}
    assert by_role[("patient", "confirmation")] == "skipped"
    assert by_role[("patient", "cancellation")] == "skipped"
    assert by_role[("clinician", "cancellation")] == "pending"
    assert not db.session.scalars(select(ManageLink)).all()
    assert booking_for_token(token) is None


def test_erasure_and_export_are_in_the_audit_trail(
    app, frozen_clock, make_clinician, make_consultation_type, make_booking
):
    from microsite.models import AuditEvent
    from microsite.services.patient_rights import erase_patient, export_patient

    clinician, kind = make_clinician(), make_consultation_type()
    past = make_booking(clinician, kind, NOW - timedelta(days=3))
    export_patient(past.patient_email)
    erase_patient(past.patient_email)
    rows = [
        (a.actor_account_id, a.action, a.booking_id) for a in db.session.scalars(select(AuditEvent))
    ]
    assert rows == [(None, "patient.exported", past.id), (None, "booking.erased", past.id)]
