"""Staff calendar feeds: secret URLs, their validators, and the calendar they serve.

A feed's content is a function of the bookings, the owner, the clinic's settings and the UTC
day (its window moves once a day), so the ETag is derived from exactly those with one small
query (`feed_state`) and a 304 never builds the calendar. Text in the events comes from
`calendar_events.booking_event`, the one place that decides what a calendar may show.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update

from .. import clock, fast_path, ics
from ..clinic import clinic_timezone
from ..database import write_transaction
from ..extensions import db
from ..models import BOOKING_CANCELLED, MODE_VIDEO, Booking, Clinician, ConsultationType
from ..models.feeds import FeedToken
from . import calendar_events

log = logging.getLogger(__name__)

# The route serves this path; the commands print it. One definition for both.
FEED_PATH = "/feeds/{token}.ics"
# How far back a feed reaches, and how long a cancelled booking stays in it (as CANCELLED) so
# every subscribed calendar sees the cancellation before the event leaves the feed.
PAST_DAYS = 30
CANCELLED_KEPT_DAYS = 30
# Consultation types are how far ahead bookings can be made; without any, a sensible reach.
DEFAULT_HORIZON_DAYS = 60
# Settings that change what a feed says; they are part of every ETag.
_CONTENT_SETTINGS = ("SITE_URL", "ICS_PRODID")
_CONTENT_SETTING_PREFIX = "CLINIC_"


class UnknownClinicianError(LookupError):
    """No clinician with that id or email."""


def hash_token(token: str) -> str:
    """What is stored for a token: its sha256, so a database copy gives no working URL."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_feed(clinician_id: int | None, *, on_change: Callable[[], None] | None = None) -> str:
    """A new feed for the clinician (None: the whole clinic); the plain token, shown once.

    Any earlier feed of the same owner is revoked in the same transaction, so this is also
    "renew": an old URL that leaked stops working the moment a new one is made. `on_change`
    runs inside that transaction (the console's audit row commits with the change).
    """
    token = secrets.token_urlsafe(32)
    with write_transaction():
        if clinician_id is not None and db.session.get(Clinician, clinician_id) is None:
            raise UnknownClinicianError(f"no clinician with id {clinician_id}")
        _revoke_owner(clinician_id)
        feed = FeedToken(token_hash=hash_token(token), clinician_id=clinician_id)
        db.session.add(feed)
        db.session.flush()
        feed_id = feed.id
        if on_change is not None:
            on_change()
    fast_path.feed_tokens_changed()
    log.info(
        "feed created",
        extra={"event": "feed.created", "feed_id": feed_id, "clinician_id": clinician_id},
    )
    return token


def revoke_feed(clinician_id: int | None, *, on_change: Callable[[], None] | None = None) -> bool:
    """End the owner's feed (None: the clinic's); False when there was none to end.
    `on_change` runs inside the transaction when a feed was ended (the console's audit row)."""
    with write_transaction():
        revoked = _revoke_owner(clinician_id)
        if revoked and on_change is not None:
            on_change()
    fast_path.feed_tokens_changed()  # no stored 304 for the old token, in this process
    if revoked:
        log.info("feed revoked", extra={"event": "feed.revoked", "clinician_id": clinician_id})
    return revoked > 0


def feed_urls(token: str) -> tuple[str, str]:
    """The feed's `https://…` and `webcal://…` URLs, from SITE_URL (never from a request)."""
    url = current_app.config["SITE_URL"].rstrip("/") + FEED_PATH.format(token=token)
    return url, "webcal://" + url.split("://", 1)[1]


def find_clinician_id(email: str) -> int:
    """The id of the clinician with this email (any case); UnknownClinicianError if none."""
    matches = db.session.scalars(
        select(Clinician.id).where(func.lower(Clinician.email) == email.strip().lower())
    ).all()
    if len(matches) != 1:
        raise UnknownClinicianError(f"no single clinician has the email {email!r}")
    return matches[0]


@dataclass(frozen=True)
class FeedState:
    """What one feed currently serves, known without building it."""

    feed_id: int
    clinician_id: int | None
    calendar_name: str
    day: datetime  # start of the current UTC day: the window moves once a day
    horizon_days: int
    etag: str  # quoted, strong: equal ETags mean byte-identical feeds
    last_modified: datetime  # whole seconds, UTC

    @property
    def window(self) -> tuple[datetime, datetime]:
        return (
            self.day - timedelta(days=PAST_DAYS),
            self.day + timedelta(days=self.horizon_days + 1),
        )


# One statement, every part an index lookup: the token (unique index), the newest booking id
# (primary key) and change (ix_booking_updated_at), the longest horizon (a tiny table).
# Bookings are never deleted, so a new max(id) or max(updated_at) is the only way the feed's
# bookings can change (so this relies on updated_at moving forward, as the real clock does).
# It reads the whole clinic's newest change even for one clinician's feed: a change elsewhere
# costs that feed one needless download, never a stale one. Not covered: editing a type's
# mode (in person/video) shows in feeds with the next booking change or the next day.
_STATE_QUERY = (
    select(
        FeedToken.id,
        FeedToken.clinician_id,
        FeedToken.created_at,
        Clinician.name,
        select(func.max(Booking.id)).scalar_subquery(),
        select(func.max(Booking.updated_at)).scalar_subquery(),
        select(func.max(ConsultationType.horizon_days)).scalar_subquery(),
    )
    .outerjoin(Clinician, Clinician.id == FeedToken.clinician_id)
    .where(FeedToken.token_hash == bindparam("token_hash"), FeedToken.revoked_at.is_(None))
)


def feed_state(token: str) -> FeedState | None:
    """The live feed this token opens, with its validators; None when unknown or revoked."""
    row = _fetch_state_row(hash_token(token))
    if row is None:
        return None
    feed_id, clinician_id, created_at, clinician_name, max_id, max_updated, horizon = row
    created_at, max_updated = _as_utc(created_at), _as_utc(max_updated)
    config = current_app.config
    day = clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    horizon_days = DEFAULT_HORIZON_DAYS if horizon is None else horizon
    name = config["CLINIC_SHORT_NAME"]
    if clinician_id is not None:
        name = f"{name} — {clinician_name}"
    # Whatever changed last: a booking, the feed itself, or the day (the window moved).
    newest = max(d for d in (max_updated, created_at, day) if d is not None)
    fingerprint = "|".join(
        str(part)
        for part in (
            feed_id,
            clinician_id,
            name,
            day.date(),
            horizon_days,
            max_id,
            max_updated and max_updated.isoformat(),
            _settings_fingerprint(),
        )
    )
    return FeedState(
        feed_id=feed_id,
        clinician_id=clinician_id,
        calendar_name=name,
        day=day,
        horizon_days=horizon_days,
        etag='"' + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:32] + '"',
        last_modified=newest.replace(microsecond=0),
    )


def _fetch_state_row(token_hash: str) -> tuple | None:
    """Run _STATE_QUERY on a pooled DBAPI connection, bypassing the ORM session.

    Calendar clients poll every feed all day and nearly every answer is a 304, so this path
    is kept to the statement itself: the session's transaction bookkeeping would cost several
    times the query (bench/feeds.py measures the path against a bare Flask app). One SELECT is
    one consistent snapshot on both databases; the pool rolls the connection back on return.
    """
    engine = db.engine
    compiled = _compiled_state_queries.get(engine.dialect.name)
    if compiled is None:
        compiled = _STATE_QUERY.compile(dialect=engine.dialect)
        _compiled_state_queries[engine.dialect.name] = compiled
    params: object = {"token_hash": token_hash}
    if compiled.positional:
        params = [token_hash for _name in compiled.positiontup]
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.string, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()  # back to the pool
    return None if row is None else tuple(row)


_compiled_state_queries: dict[str, object] = {}


def _as_utc(value: datetime | str | None) -> datetime | None:
    # Raw DBAPI values: SQLite gives UTCDateTime's stored text, PostgreSQL an aware datetime.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_feed_calendar(state: FeedState) -> bytes:
    """The feed's calendar: bookings in its window, cancelled ones for 30 days as CANCELLED.

    DTSTAMP is the feed's Last-Modified (for a calendar without METHOD it means "last revised",
    RFC 5545 3.8.7.2), which also keeps the bytes equal while the ETag is.
    """
    start, end = state.window
    # Counted from the day, not the instant, like the window: the feed changes only when its
    # ETag does (a cancelled booking leaves it at the first day boundary after 30 days).
    cancelled_since = state.day - timedelta(days=CANCELLED_KEPT_DAYS)
    return _calendar(
        start, end, state.clinician_id, state.calendar_name, state.last_modified, cancelled_since
    )


def export_calendar(first_day: date, last_day: date, clinician_id: int | None) -> bytes:
    """The feed's calendar for the clinic-local days first_day..last_day, for a one-off import.

    Same rules as the feed (cancelled bookings of the last 30 days appear as CANCELLED, so an
    import over an earlier import cancels them there too).
    """
    if last_day < first_day:
        raise ValueError("the last day is before the first")
    zone = clinic_timezone()
    start = datetime.combine(first_day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    name = current_app.config["CLINIC_SHORT_NAME"]
    if clinician_id is not None:
        clinician = db.session.get(Clinician, clinician_id)
        if clinician is None:
            raise UnknownClinicianError(f"no clinician with id {clinician_id}")
        name = f"{name} — {clinician.name}"
    now = clock.now()
    return _calendar(start, end, clinician_id, name, now, now - timedelta(days=CANCELLED_KEPT_DAYS))


def _calendar(
    start: datetime,
    end: datetime,
    clinician_id: int | None,
    name: str,
    stamp: datetime,
    cancelled_since: datetime,
) -> bytes:
    query = (
        select(
            Booking.uid,
            Booking.sequence,
            Booking.starts_at,
            Booking.ends_at,
            Booking.reference,
            Booking.status,
            ConsultationType.mode,
        )
        .join(ConsultationType, ConsultationType.id == Booking.consultation_type_id)
        .where(
            Booking.starts_at >= start,
            Booking.starts_at < end,
            or_(Booking.status != BOOKING_CANCELLED, Booking.cancelled_at >= cancelled_since),
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    if clinician_id is not None:
        query = query.where(Booking.clinician_id == clinician_id)
    rows = db.session.execute(query).all()
    db.session.rollback()
    in_person, video = _TypeView(is_video=False), _TypeView(is_video=True)
    # Plain rows, not ORM objects: a feed may hold 10,000 bookings (see bench/feeds.py).
    events = [
        calendar_events.booking_event(
            _BookingView(
                uid=uid,
                sequence=sequence,
                starts_at=starts_at,
                ends_at=ends_at,
                reference=reference,
                status=status,
                consultation_type=video if mode == MODE_VIDEO else in_person,
            ),
            calendar_events.AUDIENCE_STAFF,  # staff calendars: where to look, not who it is
        )
        for uid, sequence, starts_at, ends_at, reference, status, mode in rows
    ]
    return ics.build_feed(events, name=name, now=stamp, prodid=current_app.config["ICS_PRODID"])


@dataclass(frozen=True, slots=True)
class _TypeView:
    is_video: bool


@dataclass(frozen=True, slots=True)
class _BookingView:
    """The parts of a Booking that `calendar_events.booking_event` reads, from a plain row."""

    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    reference: str
    status: str
    consultation_type: _TypeView

    @property
    def is_active(self) -> bool:
        return self.status != BOOKING_CANCELLED


def _revoke_owner(clinician_id: int | None) -> int:
    owner = (
        FeedToken.clinician_id.is_(None)
        if clinician_id is None
        else FeedToken.clinician_id == clinician_id
    )
    result = db.session.execute(
        update(FeedToken)
        .where(owner, FeedToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return result.rowcount


def _settings_fingerprint() -> str:
    # Settings are fixed once the app is built; worked out once per app, not per poll.
    app = current_app._get_current_object()
    fingerprint = app.extensions.get("feed_settings_fingerprint")
    if fingerprint is None:
        config = app.config
        keys = sorted(k for k in config if k.startswith(_CONTENT_SETTING_PREFIX))
        fingerprint = repr([(k, config[k]) for k in (*keys, *_CONTENT_SETTINGS)])
        app.extensions["feed_settings_fingerprint"] = fingerprint
    return fingerprint
