"""A requested slot: the keys the pages hand out, and who could take the time they name.

The slot list, the booking form, the manage page and the console all name a time by its key
(`slot_key`); `SlotRequest` judges one with the engine against the schedule and the bookings:
read-only for a page (`slot_problem`), or under the write lock for a booking or a move
(`services.booking`, `services.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .. import clock, inputs, scheduling
from ..database import lock_clinician_schedules
from ..models import ConsultationType
from . import schedule as schedule_service
from .errors import BookingError, SlotNotBookableError, SlotTakenError

ANY_CLINICIAN = "any"
SLOT_KEY_TIME_FORMAT = "%Y%m%dT%H%MZ"

UNBOOKABLE_MESSAGES = {
    scheduling.Unbookable.PAST: "That time has already passed. Please choose another time.",
    scheduling.Unbookable.TOO_SOON: "That time is too soon for us to prepare. "
    "Please choose a later time.",
    scheduling.Unbookable.TOO_FAR: "We don't take bookings that far ahead yet. "
    "Please choose an earlier time.",
    scheduling.Unbookable.NOT_OFFERED: "That time is not one we offer. Please choose a time "
    "from the list.",
}


@dataclass(frozen=True)
class SlotChoice:
    """What a slot key names: a start instant and a clinician, or any free clinician (None)."""

    start: datetime
    clinician_id: int | None


def slot_key(start: datetime, clinician_id: int | None) -> str:
    """The opaque key the slot list hands out and the booking form accepts."""
    who = ANY_CLINICIAN if clinician_id is None else str(clinician_id)
    return f"{who}-{start.astimezone(UTC).strftime(SLOT_KEY_TIME_FORMAT)}"


def parse_slot_key(key: str) -> SlotChoice | None:
    """The slot a key names, or None for anything that is not a key we could have made."""
    who, _, when = (key or "").strip().partition("-")
    try:
        start = datetime.strptime(when, SLOT_KEY_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    # Year 0001 or 9999 would overflow the engine's arithmetic; no one can book there anyway.
    if not inputs.EARLIEST_DATE <= start.date() <= inputs.LATEST_DATE:
        return None
    if who == ANY_CLINICIAN:
        return SlotChoice(start, None)
    clinician_id = inputs.parse_id(who)
    return None if clinician_id is None else SlotChoice(start, clinician_id)


def slot_problem(consultation_type: ConsultationType, key: str) -> BookingError | None:
    """Why the slot a key names can't be booked right now, or None when it can."""
    choice = parse_slot_key(key)
    if choice is None:
        return not_offered()
    try:
        SlotRequest.prepare(consultation_type.id, choice).free_clinician(lock=False)
    except BookingError as error:
        return error
    return None


def not_offered() -> SlotNotBookableError:
    """The refusal for a key we could not have made, or a time we do not offer."""
    reason = scheduling.Unbookable.NOT_OFFERED
    return SlotNotBookableError(UNBOOKABLE_MESSAGES[reason], reason=reason.value)


@dataclass(frozen=True)
class SlotRequest:
    """A requested slot, its rules and who could take it (plain values, no ORM objects)."""

    choice: SlotChoice
    consultation_type_id: int
    rules: scheduling.ConsultationRules
    candidates: tuple[int, ...]
    now: datetime
    # "Any clinician": the cached schedule the candidates came from (None for one clinician).
    listed: scheduling.Schedule | None = None

    @classmethod
    def prepare(cls, consultation_type_id: int, choice: SlotChoice) -> SlotRequest:
        now = clock.now()
        listed = None
        if choice.clinician_id is None:
            # "Any clinician": whoever the (cached) schedule lists as active; their schedule is
            # read again, fresh, under the lock.
            listed = schedule_service.load_schedule(now)
            candidates = tuple(clinician.clinician_id for clinician in listed.clinicians)
        else:
            # One clinician: nothing to read before the lock (a booking judges the schedule
            # as committed under it), so a booking opens no read transaction of its own.
            candidates = (choice.clinician_id,)
        return cls(
            choice=choice,
            consultation_type_id=consultation_type_id,
            rules=schedule_service.consultation_rules(consultation_type_id),
            candidates=candidates,
            now=now,
            listed=listed,
        )

    def free_clinician(self, moving: scheduling.Booked | None = None, *, lock: bool = True) -> int:
        """The clinician to book: the one chosen, or the least busy free one for "any".

        `moving` leaves one booking out of the check: the booking being rescheduled, whose old
        time is freed in the same transaction (the engine's `moving`).
        `lock`: inside a write transaction, first lock the candidates' schedules and judge by
        the schedule and bookings as committed now; a read-only check such as `slot_problem`
        passes False, holds no lock and reads the cached schedule and the day's bookings as a
        free-slot answer would (at most SLOT_CACHE_SECONDS old in a process that did not book).
        """
        start, rules, candidates = self.choice.start, self.rules, self.candidates
        if lock:
            # From here to COMMIT no other booking of these clinicians is judged (PostgreSQL;
            # SQLite's write lock already holds every writer). Schedule changes take the same
            # locks, so none can slip in before COMMIT.
            lock_clinician_schedules(candidates)
            schedule = schedule_service.current_schedule(
                self.now, candidates, around=(start, start + rules.duration)
            )
            booked = schedule_service.load_booked(start, start + rules.duration, candidates)
        else:
            schedule = self.listed or schedule_service.load_schedule(self.now, candidates)
            booked = schedule_service.booked_around_day(start, schedule.timezone, candidates)
        reasons = {
            clinician_id: scheduling.check_slot(
                schedule,
                rules,
                booked,
                now=self.now,
                clinician_id=clinician_id,
                start=start,
                moving=moving,
            )
            for clinician_id in candidates
        }
        free = [
            scheduling.Slot(start, start + rules.duration, clinician_id)
            for clinician_id, reason in reasons.items()
            if reason is None
        ]
        if free:
            chosen = scheduling.one_per_start(free, booked, schedule.timezone, moving=moving)
            return chosen[0].clinician_id
        if scheduling.Unbookable.TAKEN in reasons.values():
            raise SlotTakenError(start, self.choice.clinician_id)
        reason = next(iter(reasons.values()), scheduling.Unbookable.NOT_OFFERED)
        raise SlotNotBookableError(UNBOOKABLE_MESSAGES[reason], reason=reason.value)
