"""Calendar feed links in the console: a clinician's own, and for admins every clinician's
and the clinic-wide one. Renew shows the new link once (rendered from the POST, never stored:
only its hash is kept); the old link stops working at once. Revoke ends it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ...models.staff import ROLE_ADMIN, ROLE_CLINICIAN
from ...services import feeds as feed_service
from ...services import schedule as schedule_service
from ...services import staff_actions
from ...staff_forms import PostForm
from .access import current_staff, roles

bp = Blueprint("feeds", __name__, url_prefix="/feeds")

CLINIC_OWNER = "clinic"


def _owners() -> list[tuple[str, str, int | None]]:
    """(form value, label, clinician id or None) of the feeds this account may manage."""
    account = current_staff()
    if account.role == ROLE_ADMIN:
        owners = [(CLINIC_OWNER, "The whole clinic", None)]
        owners += [
            (str(cid), name, cid) for cid, name in schedule_service.clinician_names().items()
        ]
        return owners
    if account.clinician_id is not None:
        return [(str(account.clinician_id), "Your consultations", account.clinician_id)]
    return []


def _owner_from_form() -> tuple[str, int | None]:
    value = (request.form.get("owner") or "").strip()
    for owner_value, label, clinician_id in _owners():
        if owner_value == value:
            return label, clinician_id
    abort(404)  # not a feed this account may touch (or none at all)


def _page(new_link: tuple[str, str, str] | None = None, status: int = 200):
    return render_template(
        "staff/feeds.html",
        owners=_owners(),
        live=staff_actions.live_feeds(),
        form=PostForm(),
        new_link=new_link,
        is_clinician=current_staff().role == ROLE_CLINICIAN,
    ), status


@bp.get("/")
@roles(ROLE_ADMIN, ROLE_CLINICIAN)
def overview():
    return _page()


@bp.post("/renew")
@roles(ROLE_ADMIN, ROLE_CLINICIAN)
def renew():
    if not PostForm().validate_on_submit():
        abort(400)
    label, clinician_id = _owner_from_form()
    token = staff_actions.renew_feed(clinician_id, account_id=current_staff().id)
    https_url, webcal_url = feed_service.feed_urls(token)
    # Shown on this response only: a reload or the back button never shows it again.
    return _page(new_link=(label, webcal_url, https_url))


@bp.post("/revoke")
@roles(ROLE_ADMIN, ROLE_CLINICIAN)
def revoke():
    if not PostForm().validate_on_submit():
        abort(400)
    label, clinician_id = _owner_from_form()
    if staff_actions.revoke_feed(clinician_id, account_id=current_staff().id):
        flash(f"Feed revoked ({label}): its link no longer works.", "ok")
    else:
        flash(f"There was no feed to revoke ({label}).", "ok")
    return redirect(url_for("staff.feeds.overview"), code=303)
