"""Demo data and the interim booking commands: `seed-demo`, `bookings cancel`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from .. import clock
from ..clinic import clinic_timezone
from ..database import write_transaction
from ..extensions import db
from ..models import Clinician, Closure, ConsultationType, WorkingHours

WEEKDAYS = range(5)  # Monday to Friday

bookings_group = AppGroup("bookings", help="Manage bookings until the staff console exists.")


@bookings_group.command("cancel")
@click.argument("reference")
def cancel_command(reference: str) -> None:
    """Cancel the booking with this reference (its time becomes free again)."""
    from ..services.audit import add_audit
    from ..services.booking import cancel_booking
    from ..services.errors import BookingNotFoundError

    def audit(booking) -> None:
        # No account: the audit trail shows "Command line" (whoever runs commands on the server).
        add_audit(None, "booking.cancelled", booking.id, detail="bookings cancel command")

    try:
        booking = cancel_booking(reference, on_change=audit)
    except BookingNotFoundError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Booking {booking.reference} is cancelled.")


def _demo_clinicians() -> list[Clinician]:
    morning, afternoon = (time(9), time(12)), (time(13), time(17))
    okafor = Clinician(
        name="Dr. Amara Okafor", email="a.okafor@bluewater-psychiatry.example", daily_cap=6
    )
    okafor.weekly_hours = [
        WorkingHours(weekday=d, start_time=s, end_time=e)
        for d in WEEKDAYS
        for s, e in (morning, afternoon)
    ]
    reyes = Clinician(
        name="Dr. Daniel Reyes",
        email="d.reyes@bluewater-psychiatry.example",
        daily_cap=5,
        display_order=1,
    )
    # Later hours on Tuesday and Thursday for people who work days.
    reyes.weekly_hours = [
        WorkingHours(weekday=d, start_time=time(12), end_time=time(19)) for d in (1, 3)
    ] + [WorkingHours(weekday=d, start_time=time(8), end_time=time(13)) for d in (0, 2, 4)]
    return [okafor, reyes]


def _demo_types() -> list[ConsultationType]:
    return [
        ConsultationType(
            slug="initial-in-person",
            name="Initial consultation — in person",
            mode="in_person",
            description="Meet a psychiatrist at the clinic to talk about your history and "
            "whether ketamine therapy could be right for you.",
            duration_minutes=60,
            buffer_after_minutes=15,
            min_notice_minutes=24 * 60,
            horizon_days=60,
            slot_interval_minutes=30,
        ),
        ConsultationType(
            slug="initial-video",
            name="Initial consultation — video",
            mode="video",
            description="The same first conversation by secure video call, from home.",
            duration_minutes=45,
            buffer_after_minutes=15,
            min_notice_minutes=12 * 60,
            horizon_days=60,
            slot_interval_minutes=30,
            display_order=1,
        ),
    ]


def _local_day_span(day: date, start: time = time(0), end: time | None = None) -> tuple:
    tz = clinic_timezone()
    begin = datetime.combine(day, start, tzinfo=tz)
    finish = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    if end is not None:
        finish = datetime.combine(day, end, tzinfo=tz)
    return begin, finish


def _next_date(month: int, day: int, today: date) -> date:
    candidate = date(today.year, month, day)
    return candidate if candidate >= today else date(today.year + 1, month, day)


def seed_demo() -> bool:
    """Demo clinicians, consultation types, hours and closures; False if data already exists."""
    with write_transaction():
        if db.session.scalar(select(func.count()).select_from(Clinician)):
            return False
        clinicians = _demo_clinicians()
        db.session.add_all(clinicians)
        db.session.add_all(_demo_types())
        db.session.flush()
        today = clock.now().astimezone(clinic_timezone()).date()
        for month, day, reason in ((12, 25, "Christmas Day"), (1, 1, "New Year's Day")):
            start, end = _local_day_span(_next_date(month, day, today))
            db.session.add(Closure(starts_at=start, ends_at=end, reason=reason))
        next_friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
        start, end = _local_day_span(next_friday, time(12), time(17))
        db.session.add(
            Closure(clinician_id=clinicians[0].id, starts_at=start, ends_at=end, reason="Training")
        )
    return True


def register(app: Flask) -> None:
    app.cli.add_command(bookings_group)

    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Do nothing when clinicians already exist.")
    def seed_demo_command(if_empty: bool) -> None:
        """Create demo clinicians, consultation types, weekly hours and closures."""
        if seed_demo():
            click.echo("Demo data created: 2 clinicians, 2 consultation types, closures.")
        elif if_empty:
            click.echo("Demo data already present; nothing to do.")
        else:
            raise click.ClickException("The database already has clinicians; not seeding.")
