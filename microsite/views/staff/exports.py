"""CSV export of a date range of bookings (audited; cells made safe for spreadsheets)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from ... import clock, csv_export
from ...clinic import clinic_timezone, to_local
from ...services import schedule as schedule_service
from ...services import staff_bookings
from ...services.audit import record_bookings_shown
from ...staff_forms import DateRangeForm
from .access import current_staff, visible_clinician_ids

bp = Blueprint("exports", __name__, url_prefix="/export")

MAX_EXPORT_DAYS = 366
HEADER = (
    "Reference",
    "Status",
    "Starts (clinic time)",
    "Ends (clinic time)",
    "Clinician",
    "Consultation",
    "Patient name",
    "Email",
    "Phone",
    "Date of birth",
    "Patient note",
)


def _local(instant) -> str:
    return to_local(instant).strftime("%Y-%m-%d %H:%M %Z")


@bp.get("/")
def export_form():
    form = DateRangeForm(request.args)
    if not request.args:
        today = clock.now().astimezone(clinic_timezone()).date()
        form.date_from.data = form.date_to.data = today
        return render_template("staff/export.html", form=form, problem="")
    problem = ""
    if not form.validate():
        problem = "Enter both days, like 2026-12-01."
    elif form.date_to.data < form.date_from.data:
        problem = "The last day must not be before the first."
    elif (form.date_to.data - form.date_from.data).days >= MAX_EXPORT_DAYS:
        problem = f"Export at most {MAX_EXPORT_DAYS} days at a time."
    if problem:
        return render_template("staff/export.html", form=form, problem=problem), 422
    first, last = form.date_from.data, form.date_to.data
    since, until = schedule_service.local_day_bounds(
        first, (last - first).days + 1, clinic_timezone()
    )
    bookings = staff_bookings.bookings_between(since, until, visible_clinician_ids(current_staff()))
    rows = [
        (
            b.reference,
            b.status,
            _local(b.starts_at),
            _local(b.ends_at),
            b.clinician.name,
            b.consultation_type.name,
            b.patient_name,
            b.patient_email,
            b.patient_phone,
            b.patient_birth_date.isoformat(),
            b.patient_note,
        )
        for b in bookings
    ]
    label = staff_bookings.day_range_label(first, last)
    record_bookings_shown(
        current_staff().id,
        "bookings.exported",
        (b.id for b in bookings),
        detail=f"{label}, {len(rows)} rows",
    )
    return Response(
        csv_export.build_csv(HEADER, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="bookings-{label}.csv"'},
    )
