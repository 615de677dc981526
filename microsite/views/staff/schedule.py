"""Admins edit the schedule; a change that strands bookings shows them and asks to confirm."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from ... import clock
from ...clinic import clinic_timezone
from ...extensions import db
from ...models import Clinician, Closure, ConsultationType
from ...models.staff import ROLE_ADMIN
from ...services import schedule_admin
from ...services.schedule_admin import HoursRange, ScheduleError, StrandedBookingsError
from ...staff_forms import (
    WEEKDAY_NAMES,
    ClinicianForm,
    ClosureForm,
    ConsultationTypeForm,
    HoursForm,
    PostForm,
    choices,
)
from .access import current_staff, roles

bp = Blueprint("schedule", __name__, url_prefix="/schedule")


def _clinicians() -> list[Clinician]:
    return list(
        db.session.scalars(select(Clinician).order_by(Clinician.display_order, Clinician.id))
    )


def _closure_form() -> ClosureForm:
    form = ClosureForm()
    form.clinician.choices = choices(
        [("", "The whole clinic")] + [(str(c.id), c.name) for c in _clinicians()]
    )
    return form


@bp.get("/")
@roles(ROLE_ADMIN)
def overview():
    closures = db.session.scalars(
        select(Closure).where(Closure.ends_at > clock.now()).order_by(Closure.starts_at)
    )
    types = db.session.scalars(select(ConsultationType).order_by(ConsultationType.display_order))
    return render_template(
        "staff/schedule/overview.html",
        clinicians=_clinicians(),
        types=list(types),
        closures=list(closures),
        names={c.id: c.name for c in _clinicians()},
        closure_form=_closure_form(),
        remove_form=PostForm(),
        weekday_names=WEEKDAY_NAMES,
    )


def _stranded_page(template: str, error: StrandedBookingsError, **context):
    """The form again, with the affected bookings and a confirmation to apply anyway."""
    context["form"].confirmed.data = "yes"
    return render_template(template, stranded=error.bookings, problem=str(error), **context), 409


@bp.route("/clinicians/new", methods=["GET", "POST"], defaults={"clinician_id": None})
@bp.route("/clinicians/<int:clinician_id>", methods=["GET", "POST"])
@roles(ROLE_ADMIN)
def clinician(clinician_id: int | None):
    existing = db.session.get(Clinician, clinician_id) if clinician_id else None
    if clinician_id and existing is None:
        abort(404)
    form = ClinicianForm(obj=existing) if existing else ClinicianForm(is_active=True)
    template = "staff/schedule/clinician.html"
    if form.validate_on_submit():
        try:
            saved = schedule_admin.save_clinician(
                clinician_id,
                name=form.name.data,
                email=form.email.data,
                is_active=form.is_active.data,
                daily_cap=form.daily_cap.data,
                display_order=form.display_order.data or 0,
                actor_account_id=current_staff().id,
                confirmed=form.confirmed.data == "yes",
            )
        except StrandedBookingsError as error:
            return _stranded_page(template, error, form=form, clinician=existing)
        flash(f"Saved {saved.name}.", "ok")
        return redirect(url_for("staff.schedule.overview"), code=303)
    return render_template(template, form=form, clinician=existing, stranded=[], problem="")


@bp.route("/clinicians/<int:clinician_id>/hours", methods=["GET", "POST"])
@roles(ROLE_ADMIN)
def hours(clinician_id: int):
    clinician = db.session.get(Clinician, clinician_id) or abort(404)
    form = HoursForm()
    template = "staff/schedule/hours.html"
    if not form.is_submitted():
        for weekday, field in enumerate(form.day_fields()):
            field.data = ", ".join(
                f"{h.start_time:%H:%M}-{h.end_time:%H:%M}"
                for h in sorted(clinician.weekly_hours, key=lambda h: h.start_time)
                if h.weekday == weekday
            )
    elif form.validate():
        try:
            schedule_admin.set_weekly_hours(
                clinician.id,
                [HoursRange(*r) for r in form.ranges],
                actor_account_id=current_staff().id,
                confirmed=form.confirmed.data == "yes",
            )
        except StrandedBookingsError as error:
            return _stranded_page(template, error, form=form, clinician=clinician)
        except ScheduleError as error:
            return render_template(
                template, form=form, clinician=clinician, stranded=[], problem=str(error)
            ), 422
        flash(f"Saved the weekly hours of {clinician.name}.", "ok")
        return redirect(url_for("staff.schedule.overview"), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template(
        template, form=form, clinician=clinician, stranded=[], problem=""
    ), status


def _local(day, at: time | None, *, end: bool) -> datetime:
    tz = clinic_timezone()
    if at is None:
        return datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=tz)
    return datetime.combine(day, at, tzinfo=tz)


@bp.post("/closures")
@roles(ROLE_ADMIN)
def add_closure():
    form = _closure_form()
    template = "staff/schedule/closure.html"
    if not form.validate_on_submit():
        return render_template(template, form=form, stranded=[], problem=""), 422
    try:
        schedule_admin.add_closure(
            int(form.clinician.data) if form.clinician.data else None,
            _local(form.start_day.data, form.start_time.data, end=False),
            _local(form.end_day.data, form.end_time.data, end=True),
            reason=form.reason.data or "",
            actor_account_id=current_staff().id,
            confirmed=form.confirmed.data == "yes",
        )
    except StrandedBookingsError as error:
        return _stranded_page(template, error, form=form)
    except ScheduleError as error:
        return render_template(template, form=form, stranded=[], problem=str(error)), 422
    flash("Closure added.", "ok")
    return redirect(url_for("staff.schedule.overview"), code=303)


@bp.post("/closures/<int:closure_id>/remove")
@roles(ROLE_ADMIN)
def remove_closure(closure_id: int):
    if db.session.get(Closure, closure_id) is None:
        abort(404)
    if PostForm().validate_on_submit():
        schedule_admin.remove_closure(closure_id, actor_account_id=current_staff().id)
        flash("Closure removed.", "ok")
    return redirect(url_for("staff.schedule.overview"), code=303)


@bp.route("/types/new", methods=["GET", "POST"], defaults={"type_id": None})
@bp.route("/types/<int:type_id>", methods=["GET", "POST"])
@roles(ROLE_ADMIN)
def consultation_type(type_id: int | None):
    existing = db.session.get(ConsultationType, type_id) if type_id else None
    if type_id and existing is None:
        abort(404)
    defaults = {
        "is_active": True,
        "duration_minutes": 60,
        "slot_interval_minutes": 30,
        "horizon_days": 60,
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "min_notice_minutes": 720,
    }
    form = ConsultationTypeForm(obj=existing) if existing else ConsultationTypeForm(**defaults)
    problem = ""
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in schedule_admin.TYPE_FIELDS}
        values["description"] = values["description"] or ""
        values["display_order"] = values["display_order"] or 0
        try:
            schedule_admin.save_consultation_type(
                type_id, values, actor_account_id=current_staff().id
            )
        except ScheduleError as error:
            problem = str(error)
        else:
            flash(f"Saved {values['name']}.", "ok")
            return redirect(url_for("staff.schedule.overview"), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template(
        "staff/schedule/type.html", form=form, consultation_type=existing, problem=problem
    ), status
