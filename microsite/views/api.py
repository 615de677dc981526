"""JSON API: free slots for a consultation type, for scripts and integrations."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, request

from .. import clock
from ..clinic import clinic_timezone, to_local
from ..services import booking as booking_service
from ..services import schedule as schedule_service
from ..services.errors import UnknownConsultationTypeError
from ..templating import format_local

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_DAYS = 31
DEFAULT_DAYS = 7


class BadParameterError(ValueError):
    pass


def _int_param(name: str, *, required: bool) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        if required:
            raise BadParameterError(f"'{name}' is required.")
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise BadParameterError(f"'{name}' must be a positive whole number.")
    return int(raw)


@bp.get("/slots")
def slots():
    """GET /api/slots?type=<id>&from=YYYY-MM-DD&days=N[&clinician=<id>]"""
    try:
        type_id = _int_param("type", required=True)
        days = _int_param("days", required=False)
        days = DEFAULT_DAYS if days is None else days
        clinician_id = _int_param("clinician", required=False)
        raw_from = request.args.get("from", "").strip()
        try:
            start_date = date.fromisoformat(raw_from) if raw_from else None
        except ValueError:
            raise BadParameterError("'from' must be a date like 2026-11-30.") from None
        if not 1 <= days <= MAX_DAYS:
            raise BadParameterError(f"'days' must be between 1 and {MAX_DAYS}.")
        consultation_type = schedule_service.get_consultation_type(type_id)
        clinicians = {c.id: c for c in schedule_service.active_clinicians()}
        if clinician_id is not None and clinician_id not in clinicians:
            raise BadParameterError("'clinician' is not a clinician who takes bookings.")
    except BadParameterError as error:
        return {"error": str(error)}, 400
    except UnknownConsultationTypeError as error:
        return {"error": f"'type': {error}"}, 400

    tz = clinic_timezone()
    if start_date is None:
        start_date = clock.now().astimezone(tz).date()
    found = schedule_service.free_slots(consultation_type, start_date, days, clinician_id)
    return {
        "type": consultation_type.id,
        "timezone": tz.key,
        "from": start_date.isoformat(),
        "days": days,
        "slots": [
            {
                "start": slot.start.isoformat().replace("+00:00", "Z"),
                "end": slot.end.isoformat().replace("+00:00", "Z"),
                "local_date": to_local(slot.start).date().isoformat(),
                "local_time": format_local(slot.start, "time_zone"),
                "display": format_local(slot.start),
                "clinician": {"id": slot.clinician_id, "name": clinicians[slot.clinician_id].name},
                "key": booking_service.slot_key(slot.start, clinician_id),
            }
            for slot in found
        ],
    }
