"""View model of the slot picker: a week of days, one day's times, and the links between them.

Reusable: the caller may choose where a time links to (`time_url`) and where the day and week
links go (`page_url`), so a reschedule page can show the same picker with its own URLs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import url_for

from .. import clock, inputs
from ..clinic import clinic_timezone, to_local
from ..models import Booking, ConsultationType
from ..scheduling import Slot
from ..services import booking as booking_service
from ..services import schedule as schedule_service
from ..templating import format_local

WEEK = timedelta(days=7)
SEARCH_DAYS_FOR_ALTERNATIVES = 14


@dataclass(frozen=True)
class TimeOption:
    key: str
    start: datetime
    label: str  # "9:30 AM"
    period: str  # "Morning" / "Afternoon" / "Evening"
    url: str


@dataclass(frozen=True)
class DayOption:
    day: date
    label: str  # "Tuesday, December 1"
    free_count: int
    is_past: bool
    url: str

    @property
    def short_name(self) -> str:
        """The date strip's column head, like "Tue" (screen readers get the full label)."""
        return self.day.strftime("%a")

    @property
    def status(self) -> str:
        """What the day offers, in words: "3 free times", "No free times", "Past"."""
        if self.free_count:
            return f"{self.free_count} free time{'s' if self.free_count != 1 else ''}"
        return "Past" if self.is_past else "No free times"


@dataclass(frozen=True)
class PickerLinks:
    """Where the picker leads: the new-booking flow by default, or e.g. a reschedule.

    `page(clinician_id, **args)` is the picker page itself (weeks, days, the clinician filter);
    `choose(key)` is where picking a time goes.
    """

    page: Callable[..., str]
    choose: Callable[[str], str]
    filter_action: str = ""
    # "Jump to the first free time"; None: the page without a week, which opens there anyway.
    first_available: Callable[[int | None], str] | None = None


def reschedule_links(page: str, choose: str, **fixed) -> PickerLinks:
    """A reschedule's picker: `page` and `choose` are endpoints taking the `fixed` arguments
    (the manage token, the console's booking id); an empty `clinician` means any clinician,
    as no parameter at all means the booking's own."""
    return PickerLinks(
        page=lambda clinician_id, **args: url_for(
            page, **fixed, clinician="" if clinician_id is None else clinician_id, **args
        ),
        choose=lambda key: url_for(choose, **fixed, slot=key),
        filter_action=url_for(page, **fixed),
    )


def booking_links(consultation_type: ConsultationType) -> PickerLinks:
    return PickerLinks(
        page=lambda clinician_id, **args: url_for(
            "booking.start", type=consultation_type.id, clinician=clinician_id, **args
        ),
        choose=lambda key: url_for("booking.details", type=consultation_type.id, slot=key),
        filter_action=url_for("booking.start"),
        first_available=lambda clinician_id: url_for(
            "booking.first_available", type=consultation_type.id, clinician=clinician_id
        ),
    )


@dataclass
class PickerView:
    consultation_type: ConsultationType
    clinicians: dict[int, str]  # id -> name, in display order
    clinician_id: int | None
    timezone_label: str
    week_start: date
    days: list[DayOption]
    selected_day: date | None
    times: list[TimeOption] = field(default_factory=list)
    nav: dict[str, str | None] = field(default_factory=dict)
    # Where the clinician filter form sends its GET (the page this picker is on).
    filter_action: str = ""

    @property
    def time_groups(self) -> list[tuple[str, list[TimeOption]]]:
        """Times grouped as Morning / Afternoon / Evening, in time order."""
        groups: dict[str, list[TimeOption]] = {}
        for option in self.times:
            groups.setdefault(option.period, []).append(option)
        return list(groups.items())


def time_options(
    consultation_type: ConsultationType,
    slots: list[Slot],
    any_clinician: bool,
    choose: Callable[[str], str] | None = None,
):
    choose = choose or booking_links(consultation_type).choose
    options = []
    for slot in slots:
        key = booking_service.slot_key(slot.start, None if any_clinician else slot.clinician_id)
        hour = to_local(slot.start).hour
        period = "Morning" if hour < 12 else "Afternoon" if hour < 17 else "Evening"
        url = choose(key)
        options.append(TimeOption(key, slot.start, format_local(slot.start, "time"), period, url))
    return options


def build(
    consultation_type: ConsultationType,
    *,
    clinician_id: int | None,
    week: date | None,
    day: date | None,
    links: PickerLinks | None = None,
    moving: Booking | None = None,
) -> PickerView:
    """The week containing `week` (or `day`, or the first free time), within today..horizon.

    `moving`: the picker of that booking's reschedule, whose own time blocks nothing and is
    not offered again (services/schedule.free_slots).

    Day links carry no `#anchor`: the picker is laid out so the days and the first times share
    the first screen of a phone, and a jump would scroll the days away.
    """
    links = links or booking_links(consultation_type)
    tz = clinic_timezone()
    now = clock.now()
    if week is None and day is None:
        # Open where there is something to book: on a Sunday evening, "this week" is over.
        first = schedule_service.first_available(consultation_type, clinician_id, moving=moving)
        day = to_local(first.start).date() if first else None
    today = now.astimezone(tz).date()
    last_day = (now + timedelta(days=consultation_type.horizon_days)).astimezone(tz).date()
    clinicians = schedule_service.clinician_names()
    if clinician_id not in clinicians:
        clinician_id = None
    anchor = min(max(week or day or today, today), last_day)
    week_start = anchor - timedelta(days=anchor.weekday())
    slots = schedule_service.free_slots(
        consultation_type, week_start, 7, clinician_id, moving=moving
    )

    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(to_local(slot.start).date(), []).append(slot)

    def link(**args) -> str:
        return links.page(clinician_id, **args)

    days = [
        DayOption(
            day=d,
            label=f"{d.strftime('%A, %B')} {d.day}",
            free_count=len(by_day.get(d, [])),
            is_past=d < today,
            url=link(week=week_start.isoformat(), day=d.isoformat()),
        )
        for d in (week_start + timedelta(days=i) for i in range(7))
    ]
    if day not in by_day:
        day = next((d.day for d in days if d.free_count), None)
    view = PickerView(
        consultation_type=consultation_type,
        clinicians=clinicians,
        clinician_id=clinician_id,
        timezone_label=_timezone_label(tz.key, now),
        week_start=week_start,
        days=days,
        selected_day=day,
        times=time_options(
            consultation_type, by_day.get(day, []), clinician_id is None, links.choose
        ),
        filter_action=links.filter_action,
    )
    previous_week, next_week = week_start - WEEK, week_start + WEEK
    next_month = _same_day_next_month(week_start)
    previous_month = _same_day_previous_month(week_start)
    view.nav = {
        "previous_week": link(week=previous_week.isoformat())
        if week_start > today - timedelta(days=today.weekday())
        else None,
        "next_week": link(week=next_week.isoformat()) if next_week <= last_day else None,
        "previous_month": link(week=max(previous_month, today).isoformat())
        if week_start > today - timedelta(days=today.weekday())
        else None,
        "next_month": link(week=next_month.isoformat()) if next_month <= last_day else None,
        # Without a week or day the picker opens on the first free day (see above).
        "first_available": link(),
        # The clinician filter is a GET form: its action carries no query (the form adds it).
        "filter_action": links.filter_action,
    }
    return view


def alternatives_near(
    consultation_type: ConsultationType,
    choice,
    limit: int,
    choose: Callable[[str], str] | None = None,
    moving: Booking | None = None,
) -> list[TimeOption]:
    """Free times closest to the one asked for (or the soonest ones), for the same clinician.

    `moving`: alternatives for that booking's reschedule (as in `build`)."""
    tz = clinic_timezone()
    now = clock.now()
    target = choice.start if choice is not None else now
    clinician_id = choice.clinician_id if choice is not None else None
    first_day = max(target - timedelta(days=1), now).astimezone(tz).date()
    slots = schedule_service.free_slots(
        consultation_type, first_day, SEARCH_DAYS_FOR_ALTERNATIVES, clinician_id, moving=moving
    )
    closest = sorted(slots, key=lambda s: abs(s.start - target))[:limit]
    return time_options(consultation_type, sorted(closest), clinician_id is None, choose)


def reschedule_alternatives(
    booking: Booking, choice, limit: int, choose: Callable[[str], str]
) -> list[TimeOption]:
    """Other times to move the booking to: near the one asked for, else near its own."""
    near = choice or booking_service.SlotChoice(booking.starts_at, booking.clinician_id)
    return alternatives_near(booking.consultation_type, near, limit, choose, moving=booking)


def _timezone_label(key: str, now: datetime) -> str:
    """E.g. "Eastern Time (EST)" — the zone is always named next to times."""
    friendly = {
        "America/New_York": "Eastern Time",
        "America/Chicago": "Central Time",
        "America/Denver": "Mountain Time",
        "America/Los_Angeles": "Pacific Time",
    }.get(key, key.replace("_", " "))
    abbreviation = to_local(now).tzname()
    return f"{friendly} ({abbreviation})"


def _same_day_next_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return _clamped_date(year, month, day.day)


def _same_day_previous_month(day: date) -> date:
    year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    return _clamped_date(year, month, day.day)


def _clamped_date(year: int, month: int, day: int) -> date:
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1


def parse_day(raw: str | None, consultation_type: ConsultationType) -> date | None:
    """A day the picker can show (a `week=` or `day=` parameter): from a week ago to the end
    of the booking horizon; anything else, however extreme, is None (the picker's default)."""
    today = clock.now().astimezone(clinic_timezone()).date()
    latest = today + timedelta(days=consultation_type.horizon_days + 7)
    return inputs.parse_date(raw, today - timedelta(days=7), latest)
