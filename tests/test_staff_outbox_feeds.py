"""The console's email pages (a booking's delivery state, the outbox with Retry) and the feed
links (Renew shows the new link once and ends the old one; Revoke ends it)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import event, func, select
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing

from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import AuditEvent, OutboxMessage
from microsite.models.feeds import FeedToken
from microsite.services import booking as booking_service
from microsite.services import feeds, outbox, staff_actions

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
WEBCAL_RE = re.compile(r'value="(webcal://[^"]+/feeds/([A-Za-z0-9_-]+)\.ics)"')


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def clinician(frozen_clock, make_clinician):
    return make_clinician(name="Dr Okafor", email="okafor@clinic.test")


@pytest.fixture
def booking(clinician, make_consultation_type):
    kind = make_consultation_type()
    return booking_service.book_slot(
        consultation_type_id=kind.id,
        key=booking_service.slot_key(TUESDAY_9AM, clinician.id),
        patient=booking_service.PatientDetails(
            name="Pat Example",
            email="pat@example.test",
            phone_e164="+12075550123",
            birth_date=date(1980, 1, 2),
        ),
        idempotency_key=uuid.uuid4().hex,
    )


def set_state(message_id: int, **values) -> None:
    with write_transaction():
        message = db.session.get(OutboxMessage, message_id)
        for name, value in values.items():
            setattr(message, name, value)


def audit_rows(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def by_role(booking_id: int) -> dict[str, OutboxMessage]:
    return {m.recipient_role: m for m in outbox.messages_for_booking(booking_id)}


# --- delivery state on the booking's page -------------------------------------------------------


def test_the_booking_page_shows_each_emails_delivery_state(client, booking):
    quick_sign_in(client, create_staff())
    rows = by_role(booking.id)
    set_state(
        rows["patient"].id,
        status="sent",
        attempts=1,
        sent_at=TUESDAY_9AM - timedelta(hours=20),
    )
    set_state(
        rows["clinician"].id, status="failed", attempts=8, last_error="SMTPRecipientsRefused 550"
    )
    page = unescape(client.get(f"/staff/bookings/{booking.id}").get_data(as_text=True))
    section = page.split('id="emails-heading"', 1)[1].split("</section>", 1)[0]
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in section.split("<tr>")[2:]]
    by_recipient = {cells_[1]: cells_ for cells_ in cells}
    assert by_recipient["patient"][:4] == ["confirmation", "patient", "sent", "1"]
    assert "Monday, November 30, 2026" in by_recipient["patient"][4]
    assert by_recipient["clinician"][:4] == ["invite", "clinician", "failed", "8"]
    assert by_recipient["clinician"][5] == "SMTPRecipientsRefused 550"
    assert by_recipient["clinic"][:4] == ["invite", "clinic", "pending", "0"]
    assert "Retry failed emails in the outbox" in section


# --- the outbox page ----------------------------------------------------------------------------


def test_the_outbox_lists_failed_emails_and_retry_requeues_them(client, booking):
    account = create_staff()
    quick_sign_in(client, account)
    failed = by_role(booking.id)["clinic"]
    set_state(failed.id, status="failed", attempts=8, last_error="ServerUnavailableError")
    page = client.get("/staff/outbox/")
    assert page.status_code == 200
    body = unescape(page.get_data(as_text=True))
    assert "1 failed email" in body
    assert booking.reference in body
    assert "ServerUnavailableError" in body
    assert "Pat Example" not in body  # the outbox names bookings, not patients
    assert f'action="/staff/outbox/{failed.id}/retry"' in body
    assert 'href="/staff/outbox/"' in body  # in the console's navigation
    response = post_form(client, "/staff/outbox/", {}, to=f"/staff/outbox/{failed.id}/retry")
    assert response.status_code == 303
    db.session.expire_all()
    again = db.session.get(OutboxMessage, failed.id)
    assert (again.status, again.attempts) == ("pending", 0)
    (row,) = audit_rows("outbox.retried")
    assert (row.actor_account_id, row.booking_id, row.detail) == (
        account.id,
        booking.id,
        f"message {failed.id}",
    )
    assert "No failed emails." in client.get("/staff/outbox/").get_data(as_text=True)
    # Pressing Retry again (a second tab) changes nothing and is not recorded as a retry.
    twice = post_form(client, "/staff/outbox/", {}, to=f"/staff/outbox/{failed.id}/retry")
    assert twice.status_code == 303
    assert len(audit_rows("outbox.retried")) == 1


def test_retrying_an_unknown_message_is_404(client, frozen_clock):
    quick_sign_in(client, create_staff(role="admin", email="admin@clinic.test"))
    assert post_form(client, "/staff/outbox/", {}, to="/staff/outbox/999999/retry").status_code == (
        404
    )


# --- feed links ---------------------------------------------------------------------------------


def renew(client, owner: str):
    # The token from a page every role may open (front desk may not open the feeds page).
    return post_form(client, "/staff/bookings/", {"owner": owner}, to="/staff/feeds/renew")


def test_a_clinician_renews_and_revokes_their_own_feed(client, clinician, booking):
    account = create_staff("okafor@clinic.test", role="clinician", clinician_id=clinician.id)
    quick_sign_in(client, account)
    page = client.get("/staff/feeds/").get_data(as_text=True)
    assert "Your feed" in page
    assert "No working link" in page
    assert 'href="/staff/feeds/"' in page  # in the console's navigation
    first = renew(client, str(clinician.id))
    assert first.status_code == 200
    webcal, token = WEBCAL_RE.search(first.get_data(as_text=True)).groups()
    assert webcal.startswith("webcal://")
    assert "it is not shown again" in first.get_data(as_text=True)
    assert first.headers["Cache-Control"] == "no-store"
    feed = client.get(f"/feeds/{token}.ics")
    assert feed.status_code == 200
    assert b"BEGIN:VEVENT" in feed.data
    # Shown once: the page itself never shows the link again.
    later = client.get("/staff/feeds/").get_data(as_text=True)
    assert token not in later
    assert "Working link made" in later
    # Renew: a new link, and the old one stops working.
    second = renew(client, str(clinician.id))
    _, new_token = WEBCAL_RE.search(second.get_data(as_text=True)).groups()
    assert new_token != token
    assert client.get(f"/feeds/{token}.ics").status_code == 404
    assert client.get(f"/feeds/{new_token}.ics").status_code == 200
    revoked = post_form(
        client, "/staff/feeds/", {"owner": str(clinician.id)}, to="/staff/feeds/revoke"
    )
    assert revoked.status_code == 303
    assert client.get(f"/feeds/{new_token}.ics").status_code == 404
    assert len(audit_rows("feed.renewed")) == 2
    (row,) = audit_rows("feed.revoked")
    assert (row.actor_account_id, row.detail) == (account.id, f"clinician {clinician.id}")
    # No audit row holds a token.
    assert not [r for r in audit_rows("feed.renewed") if token in r.detail]


def test_a_clinician_cannot_touch_another_feed_or_the_clinics(client, clinician, make_clinician):
    other = make_clinician(name="Dr Other", email="other@clinic.test")
    quick_sign_in(
        client, create_staff("okafor@clinic.test", role="clinician", clinician_id=clinician.id)
    )
    for owner in (str(other.id), "clinic", "nonsense"):
        assert renew(client, owner).status_code == 404
        response = post_form(client, "/staff/feeds/", {"owner": owner}, to="/staff/feeds/revoke")
        assert response.status_code == 404
    assert audit_rows("feed.renewed") == []


def test_an_admin_manages_the_clinic_wide_feed(client, clinician, booking):
    quick_sign_in(client, create_staff("admin@clinic.test", role="admin", name="Ada Admin"))
    page = client.get("/staff/feeds/").get_data(as_text=True)
    assert "The whole clinic" in page
    assert "Dr Okafor" in page
    response = renew(client, "clinic")
    _, token = WEBCAL_RE.search(response.get_data(as_text=True)).groups()
    assert client.get(f"/feeds/{token}.ics").status_code == 200
    (row,) = audit_rows("feed.renewed")
    assert row.detail == "clinic"


def test_front_desk_has_no_feed_page(client, frozen_clock):
    quick_sign_in(client, create_staff())
    assert client.get("/staff/feeds/").status_code == 403
    assert renew(client, "clinic").status_code == 403


# --- a change and its audit row commit together -------------------------------------------------


@pytest.fixture
def audit_write_fails():
    """The audit row's INSERT fails (a full disk, a dropped connection) after the change."""

    def refuse(_mapper, _connection, _row) -> None:
        raise RuntimeError("the audit row could not be written")

    event.listen(AuditEvent, "before_insert", refuse)
    yield
    event.remove(AuditEvent, "before_insert", refuse)


def live_feed_count(clinician_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(FeedToken)
        .where(FeedToken.clinician_id == clinician_id, FeedToken.revoked_at.is_(None))
    )


def test_a_retry_whose_audit_row_fails_is_not_made(booking, request):
    account = create_staff()
    failed = by_role(booking.id)["clinic"]
    set_state(failed.id, status="failed", attempts=8)
    request.getfixturevalue("audit_write_fails")
    with pytest.raises(RuntimeError, match="audit row"):
        staff_actions.retry(failed.id, account_id=account.id)
    db.session.rollback()
    assert db.session.get(OutboxMessage, failed.id, populate_existing=True).status == "failed"
    assert audit_rows("outbox.retried") == []


def test_a_feed_renewal_or_revocation_whose_audit_row_fails_is_not_made(
    clinician, request, frozen_clock
):
    account = create_staff()
    feeds.create_feed(clinician.id)  # a working link, made before the audit starts failing
    old = db.session.scalar(select(FeedToken.token_hash).where(FeedToken.revoked_at.is_(None)))
    request.getfixturevalue("audit_write_fails")
    with pytest.raises(RuntimeError, match="audit row"):
        staff_actions.renew_feed(clinician.id, account_id=account.id)
    with pytest.raises(RuntimeError, match="audit row"):
        staff_actions.revoke_feed(clinician.id, account_id=account.id)
    # The old link still works (neither the renewal nor the revocation happened), unaudited.
    assert live_feed_count(clinician.id) == 1
    assert (
        db.session.scalar(select(FeedToken.token_hash).where(FeedToken.revoked_at.is_(None))) == old
    )
    assert audit_rows("feed.renewed") == audit_rows("feed.revoked") == []
