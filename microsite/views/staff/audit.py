"""The audit trail for admins: filter it, page through it, export it as CSV."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import func, select

from ... import csv_export
from ...clinic import clinic_timezone, to_local
from ...extensions import db
from ...models import StaffAccount
from ...models.staff import ROLE_ADMIN
from ...services import audit as audit_service
from ...services import schedule as schedule_service
from ...staff_forms import AuditFilterForm, choices
from .access import current_staff, roles

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _form() -> AuditFilterForm:
    form = AuditFilterForm(request.args)
    accounts = db.session.execute(
        select(StaffAccount.id, StaffAccount.name).order_by(StaffAccount.name)
    ).all()
    form.actor.choices = choices(
        [("", "Anyone"), ("cli", "Command line")]
        + [(str(account_id), name) for account_id, name in accounts]
    )
    form.action.choices = choices(
        [("", "Any action")] + [(a, a) for a in audit_service.known_actions()]
    )
    return form


def _query(form: AuditFilterForm):
    tz = clinic_timezone()
    since = until = None
    if form.date_from.data:
        since, _ = schedule_service.local_day_bounds(form.date_from.data, 1, tz)
    if form.date_to.data:
        _, until = schedule_service.local_day_bounds(form.date_to.data, 1, tz)
    actor = form.actor.data or ""
    query = audit_service.audit_query(
        since=since,
        until=until,
        actor_account_id=int(actor) if actor.isdigit() else None,
        action=form.action.data or "",
        booking_id=form.booking.data,
    )
    if actor == "cli":
        query = query.where(audit_service.AuditEvent.actor_account_id.is_(None))
    return query


def who(account_id: int | None, names: dict[int, str]) -> str:
    return "Command line" if account_id is None else names.get(account_id, f"account {account_id}")


@bp.get("/")
@roles(ROLE_ADMIN)
def audit_list():
    form = _form()
    valid = form.validate() if request.args else True
    query = _query(form) if valid else audit_service.audit_query()
    size = current_app.config["STAFF_PAGE_SIZE"]
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // size))
    page = min(max(form.page.data or 1, 1), pages)
    rows = list(db.session.scalars(query.limit(size).offset((page - 1) * size)))
    names = dict(db.session.execute(select(StaffAccount.id, StaffAccount.name)).all())
    args = {k: v for k, v in request.args.items() if k != "page"}
    audit_service.record_audit(current_staff().id, "audit.viewed", detail=f"page {page}")
    return render_template(
        "staff/audit.html",
        form=form,
        rows=rows,
        names=names,
        page=page,
        pages=pages,
        total=total,
        args=args,
        who=who,
    ), (200 if valid else 422)


@bp.get("/export.csv")
@roles(ROLE_ADMIN)
def audit_export():
    form = _form()
    if request.args and not form.validate():
        return audit_list()
    names = dict(db.session.execute(select(StaffAccount.id, StaffAccount.name)).all())
    rows = [
        (
            to_local(row.at).strftime("%Y-%m-%d %H:%M:%S %Z"),
            who(row.actor_account_id, names),
            row.actor_account_id or "",
            row.action,
            row.booking_id or "",
            row.detail,
        )
        for row in db.session.scalars(_query(form))
    ]
    audit_service.record_audit(current_staff().id, "audit.exported", detail=f"{len(rows)} rows")
    return Response(
        csv_export.build_csv(("When", "Who", "Account id", "Action", "Booking id", "Detail"), rows),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
