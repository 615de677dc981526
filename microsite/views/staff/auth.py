"""Staff sign-in: password, then the second factor (enrolled on first sign-in), sign-out."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from ...ratelimits import limit_staff_login
from ...services import staff_auth
from ...staff_forms import CodeForm, LoginForm, PostForm, RecoveryForm
from .access import SESSION_KEY

bp = Blueprint("auth", __name__)


def _start(new_session: staff_auth.NewSession) -> None:
    # Only the staff key changes: a patient's own keys in the same browser stay as they were.
    session[SESSION_KEY] = new_session.token


@bp.route("/login", methods=["GET", "POST"])
@limit_staff_login
def login():
    form = LoginForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            new_session = staff_auth.sign_in_with_password(
                form.email.data, form.password.data, request.remote_addr or ""
            )
        except staff_auth.SignInError as failure:
            error, status = str(failure), failure.status_code
        else:
            _start(new_session)
            return redirect(url_for("staff.auth.second_factor"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template("staff/login.html", form=form, error=error), status


def _second_step(form, check, template: str):
    """A code page: a good code replaces the half session with a full one; else the page again."""
    error = ""
    if form.validate_on_submit():
        try:
            _start(check(g.staff_session, form.code.data))
        except staff_auth.SignInError as failure:
            error = str(failure)
        else:
            return redirect(url_for("staff.calendar.today"), code=303)
    return render_template(template, form=form, error=error)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    if g.staff_session.mfa_passed:
        return redirect(url_for("staff.calendar.today"), code=303)
    if g.staff.mfa_enrolled_at is None:
        return redirect(url_for("staff.auth.enrol"), code=303)
    return _second_step(CodeForm(), staff_auth.verify_code, "staff/second_factor.html")


@bp.route("/login/recovery", methods=["GET", "POST"])
def recovery():
    if g.staff_session.mfa_passed or g.staff.mfa_enrolled_at is None:
        return redirect(url_for("staff.auth.second_factor"), code=303)
    return _second_step(RecoveryForm(), staff_auth.use_recovery_code, "staff/recovery.html")


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """First sign-in: the QR code and the secret, then a code; the recovery codes shown once."""
    if g.staff_session.mfa_passed or g.staff.mfa_enrolled_at is not None:
        return redirect(url_for("staff.auth.second_factor"), code=303)
    secret = staff_auth.enrolment_secret(g.staff_session)
    form = CodeForm()
    error = ""
    if form.validate_on_submit():
        try:
            new_session, codes = staff_auth.complete_enrolment(g.staff_session, form.code.data)
        except staff_auth.SignInError as failure:
            error = str(failure)
        else:
            _start(new_session)
            # Rendered straight from the POST, never stored: this page is the only copy.
            return render_template("staff/recovery_codes.html", codes=codes)
    return render_template(
        "staff/enrol.html",
        form=form,
        error=error,
        secret=secret,
        qr_svg=staff_auth.enrolment_qr_svg(g.staff, secret),
    )


@bp.post("/logout")
def logout():
    form = PostForm()
    if form.validate_on_submit():
        staff_auth.end_session(g.staff_session.id)
        session.pop(SESSION_KEY, None)
    return redirect(url_for("staff.auth.login"), code=303)
