"""Admins edit the schedule; the picker sees it at once; stranding bookings needs a confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing

from microsite import caching
from microsite.extensions import db
from microsite.models import AuditEvent, Clinician, Closure, ConsultationType, WorkingHours

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST
SLOTS = "/api/slots?type={type}&from=2026-12-01&days=1"


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def cached_app(app, frozen_clock):
    """Slot answers cached for a minute: only the console's own cache clearing shows changes."""
    app.config["SLOT_CACHE_SECONDS"] = 60
    caching.init_app(app)
    return app


@pytest.fixture
def admin(cached_app, client, frozen_clock):
    quick_sign_in(client, create_staff("admin@clinic.test", role="admin", name="Ada Admin"))
    return client


@pytest.fixture
def clinic(cached_app, make_clinician, make_consultation_type):
    return make_clinician(name="Dr Okafor"), make_consultation_type(slug="initial")


def starts(client, consultation_type) -> list[str]:
    body = client.get(SLOTS.format(type=consultation_type.id)).get_json()
    return [slot["start"] for slot in body["slots"]]


def hours_form(**days) -> dict:
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return {name: days.get(name, "") for name in names}


def actions() -> list[str]:
    return [a.action for a in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_the_overview_lists_clinicians_types_and_closures(admin, clinic):
    page = admin.get("/staff/schedule/")
    assert page.status_code == 200
    assert "Dr Okafor" in page.text
    assert "Mon 09:00–17:00" in page.text
    assert "Initial consultation" in page.text
    assert "No closures ahead." in page.text


def test_new_hours_with_a_break_reach_the_picker_at_once(admin, clinic):
    clinician, kind = clinic
    assert "2026-12-01T17:00:00Z" in starts(admin, kind)  # 12:00 local, cached for a minute
    page = f"/staff/schedule/clinicians/{clinician.id}/hours"
    response = post_form(admin, page, hours_form(tuesday="09:00-12:00, 13:00-17:00"))
    assert response.status_code == 303, response.text
    free = starts(admin, kind)
    assert "2026-12-01T17:00:00Z" not in free  # the lunch break
    assert "2026-12-01T14:00:00Z" in free
    assert "2026-12-01T18:00:00Z" in free
    db.session.expire_all()
    rows = db.session.scalars(
        db.select(WorkingHours).where(WorkingHours.clinician_id == clinician.id)
    )
    assert sorted((r.weekday, r.start_time, r.end_time) for r in rows) == [
        (1, time(9), time(12)),
        (1, time(13), time(17)),
    ]
    assert actions()[-1] == "schedule.hours_changed"


def test_bad_hours_are_refused_with_a_message(admin, clinic):
    clinician, _ = clinic
    page = f"/staff/schedule/clinicians/{clinician.id}/hours"
    for text, message in (
        ("9-5", "Write times like"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-12:00, 11:00-13:00", "overlap"),
    ):
        response = post_form(admin, page, hours_form(monday=text))
        assert response.status_code == 422, text
        assert message in response.text, text
    assert len(db.session.get(Clinician, clinician.id).weekly_hours) == 5


def test_removing_hours_under_a_booking_is_refused_with_the_list_then_confirmed(
    admin, clinic, make_booking
):
    clinician, kind = clinic
    booking = make_booking(clinician, kind, TUESDAY_9AM, reference="KEEPME")
    page = f"/staff/schedule/clinicians/{clinician.id}/hours"
    form = hours_form(monday="09:00-17:00", tuesday="13:00-17:00")
    refused = post_form(admin, page, form)
    assert refused.status_code == 409
    assert "affects 1 booked consultation" in refused.text
    assert "ref KEEPME" in refused.text
    assert f"/staff/bookings/{booking.id}" in refused.text
    assert "Apply anyway" in refused.text
    db.session.expire_all()
    assert len(db.session.get(Clinician, clinician.id).weekly_hours) == 5  # nothing changed
    confirmed = post_form(admin, page, {**form, "confirmed": "yes"})
    assert confirmed.status_code == 303
    db.session.expire_all()
    assert len(db.session.get(Clinician, clinician.id).weekly_hours) == 2
    assert (
        db.session.scalars(db.select(AuditEvent.detail))
        .all()[-1]
        .endswith("1 bookings affected (confirmed)")
    )


def test_a_closure_over_a_booking_needs_a_confirmation(admin, clinic, make_booking):
    clinician, kind = clinic
    make_booking(clinician, kind, TUESDAY_9AM, reference="CLOSED")
    form = {
        "clinician": "",
        "start_day": "2026-12-01",
        "end_day": "2026-12-01",
        "reason": "Staff training",
    }
    refused = post_form(admin, "/staff/schedule/", form, to="/staff/schedule/closures")
    assert refused.status_code == 409
    assert "ref CLOSED" in refused.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Closure)) == 0
    ok = post_form(
        admin, "/staff/schedule/", {**form, "confirmed": "yes"}, to="/staff/schedule/closures"
    )
    assert ok.status_code == 303
    closure = db.session.scalars(db.select(Closure)).one()
    assert closure.clinician_id is None
    assert closure.starts_at == datetime(2026, 12, 1, 5, tzinfo=UTC)  # local midnight, EST
    assert closure.ends_at == datetime(2026, 12, 2, 5, tzinfo=UTC)


def test_a_clinicians_closure_reaches_the_picker_and_can_be_removed(admin, clinic):
    clinician, kind = clinic
    assert "2026-12-01T15:00:00Z" in starts(admin, kind)
    form = {
        "clinician": str(clinician.id),
        "start_day": "2026-12-01",
        "start_time": "10:00",
        "end_day": "2026-12-01",
        "end_time": "12:00",
        "reason": "",
    }
    assert (
        post_form(admin, "/staff/schedule/", form, to="/staff/schedule/closures").status_code == 303
    )
    free = starts(admin, kind)
    for closed in ("2026-12-01T15:00:00Z", "2026-12-01T16:30:00Z"):  # 10:00 and 11:30 local
        assert closed not in free
    assert "2026-12-01T14:00:00Z" in free  # 9:00-10:00 ends as the closure begins
    assert "2026-12-01T17:00:00Z" in free
    closure = db.session.scalars(db.select(Closure)).one()
    removed = post_form(
        admin, "/staff/schedule/", {}, to=f"/staff/schedule/closures/{closure.id}/remove"
    )
    assert removed.status_code == 303
    assert "2026-12-01T15:00:00Z" in starts(admin, kind)
    assert actions()[-2:] == ["schedule.closure_added", "schedule.closure_removed"]


def test_a_closure_that_ends_before_it_starts_is_refused(admin, clinic):
    form = {"clinician": "", "start_day": "2026-12-02", "end_day": "2026-12-01", "reason": ""}
    response = post_form(admin, "/staff/schedule/", form, to="/staff/schedule/closures")
    assert response.status_code == 422
    assert "must end after it starts" in response.text


def test_deactivating_a_clinician_with_bookings_asks_and_daily_caps_apply(
    admin, clinic, make_booking
):
    clinician, kind = clinic
    make_booking(clinician, kind, TUESDAY_9AM, reference="STAYS1")
    page = f"/staff/schedule/clinicians/{clinician.id}"
    form = {
        "name": "Dr Okafor",
        "email": "okafor@clinic.test",
        "daily_cap": "1",
        "display_order": "0",
    }  # is_active left unticked
    refused = post_form(admin, page, form)
    assert refused.status_code == 409
    assert "ref STAYS1" in refused.text
    kept_active = post_form(admin, page, {**form, "is_active": "y"})
    assert kept_active.status_code == 303
    # The cap of one per day is reached by the booking: Tuesday offers nothing more.
    assert starts(admin, kind) == []
    assert post_form(admin, page, {**form, "confirmed": "yes"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Clinician, clinician.id).is_active is False


def test_adding_a_clinician_and_a_consultation_type(admin, clinic):
    added = post_form(
        admin,
        "/staff/schedule/clinicians/new",
        {"name": "Dr New", "email": "new@clinic.test", "is_active": "y", "display_order": "2"},
    )
    assert added.status_code == 303
    assert db.session.scalars(db.select(Clinician).where(Clinician.name == "Dr New")).one()
    values = {
        "name": "Follow-up — video",
        "slug": "follow-up",
        "mode": "video",
        "description": "",
        "duration_minutes": "30",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "10",
        "min_notice_minutes": "60",
        "horizon_days": "30",
        "slot_interval_minutes": "15",
        "is_active": "y",
        "display_order": "3",
    }
    assert post_form(admin, "/staff/schedule/types/new", values).status_code == 303
    made = db.session.scalars(
        db.select(ConsultationType).where(ConsultationType.slug == "follow-up")
    ).one()
    assert (made.duration_minutes, made.slot_interval_minutes, made.mode) == (30, 15, "video")
    duplicate = post_form(admin, "/staff/schedule/types/new", {**values, "name": "Other"})
    assert duplicate.status_code == 422
    assert "has that short name" in duplicate.text
    bad = post_form(admin, f"/staff/schedule/types/{made.id}", {**values, "slug": "Not OK!"})
    assert bad.status_code == 422
    longer = post_form(
        admin, f"/staff/schedule/types/{made.id}", {**values, "duration_minutes": "50"}
    )
    assert longer.status_code == 303
    db.session.expire_all()
    assert db.session.get(ConsultationType, made.id).duration == timedelta(minutes=50)


def test_unknown_schedule_ids_are_404(admin):
    for url in (
        "/staff/schedule/clinicians/9999",
        "/staff/schedule/clinicians/9999/hours",
        "/staff/schedule/types/9999",
    ):
        assert admin.get(url).status_code == 404
    assert (
        post_form(
            admin, "/staff/schedule/", {}, to="/staff/schedule/closures/9999/remove"
        ).status_code
        == 404
    )
