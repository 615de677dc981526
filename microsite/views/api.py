"""JSON API: free slots for a consultation type, for scripts and integrations."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, request

from .. import clock, fast_path, inputs
from ..caching import availability_cache
from ..clinic import clinic_timezone
from ..services import booking as booking_service
from ..services import schedule as schedule_service
from ..services.errors import UnknownConsultationTypeError
from ..templating import format_wall_clock

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_DAYS = 31
DEFAULT_DAYS = 7


class BadParameterError(ValueError):
    pass


def _id_param(name: str, *, required: bool) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        if required:
            raise BadParameterError(f"'{name}' is required.")
        return None
    value = inputs.parse_id(raw)
    if value is None:
        raise BadParameterError(
            f"'{name}' must be a positive whole number, at most {inputs.MAX_ID}."
        )
    return value


def _days_param() -> int:
    raw = request.args.get("days", "").strip()
    if not raw:
        return DEFAULT_DAYS
    if not raw.isascii() or not raw.isdigit():
        raise BadParameterError("'days' must be a positive whole number.")
    days = inputs.parse_count(raw, 1, MAX_DAYS)
    if days is None:
        raise BadParameterError(f"'days' must be between 1 and {MAX_DAYS}.")
    return days


def _date_param(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    value = inputs.parse_date(raw)
    if value is None:
        raise BadParameterError(
            f"'{name}' must be a date like 2026-11-30, between {inputs.EARLIEST_DATE} "
            f"and {inputs.LATEST_DATE}."
        )
    return value


@bp.get("/slots")
def slots():
    """GET /api/slots?type=<id>&from=YYYY-MM-DD&days=N[&clinician=<id>]"""
    try:
        type_id = _id_param("type", required=True)
        days = _days_param()
        clinician_id = _id_param("clinician", required=False)
        start_date = _date_param("from") or clock.now().astimezone(clinic_timezone()).date()
    except BadParameterError as error:
        return {"error": str(error)}, 400
    key = ("api-slots", type_id, start_date, days, clinician_id)
    body, status = availability_cache().get_or_compute(
        key, lambda: _slots_answer(type_id, start_date, days, clinician_id)
    )
    # The same answer for everyone until the cached one expires (fast_path keeps it as long).
    fast_path.mark_shareable()
    return Response(body, status, mimetype="application/json")


def _slots_answer(
    type_id: int, start_date: date, days: int, clinician_id: int | None
) -> tuple[bytes, int]:
    """The serialised answer for one query and its status; cacheable either way."""
    try:
        consultation_type = schedule_service.consultation_type_info(type_id)
    except UnknownConsultationTypeError as error:
        return json.dumps({"error": f"'type': {error}"}).encode(), 400
    names = schedule_service.clinician_names()
    if clinician_id is not None and clinician_id not in names:
        error = "'clinician' is not a clinician who takes bookings."
        return json.dumps({"error": error}).encode(), 400
    tz = clinic_timezone()
    found = schedule_service.free_slots(consultation_type, start_date, days, clinician_id)
    answer = {
        "type": consultation_type.id,
        "timezone": tz.key,
        "from": start_date.isoformat(),
        "days": days,
        "slots": [_slot_json(slot, tz, names, clinician_id) for slot in found],
    }
    return json.dumps(answer, ensure_ascii=False).encode(), 200


def _slot_json(slot, tz, names: dict[int, str], clinician_id: int | None) -> dict:
    start, end, local_date, local_time, display, key = _slot_texts(
        slot.start, slot.end, tz, clinician_id
    )
    return {
        "start": start,
        "end": end,
        "local_date": local_date,
        "local_time": local_time,
        "display": display,
        "clinician": {"id": slot.clinician_id, "name": names[slot.clinician_id]},
        "key": key,
    }


@lru_cache(maxsize=8192)
def _slot_texts(
    start: datetime, end: datetime, tz: ZoneInfo, clinician_id: int | None
) -> tuple[str, str, str, str, str, str]:
    """A slot's strings: a pure function of its instants and zone, so formatted once.

    A dozen strftime calls per slot were most of an uncached answer's formatting; the same
    slots come back on every request until they are booked or pass.
    """
    local = start.astimezone(tz)
    return (
        f"{start:%Y-%m-%dT%H:%M:%SZ}",
        f"{end:%Y-%m-%dT%H:%M:%SZ}",
        local.date().isoformat(),
        format_wall_clock(local, "time_zone"),
        format_wall_clock(local),
        booking_service.slot_key(start, clinician_id),
    )
