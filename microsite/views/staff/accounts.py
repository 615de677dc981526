"""Admins manage staff accounts: list, create, disable, unlock, role, password, second factor.

Thin views over `services.staff_accounts`, the same functions the `flask staff` commands call:
the service checks the password policy, ends the account's sessions where it must, keeps one
enabled admin and writes the audit row. Every change is a POST with the CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from ...extensions import db
from ...models import Clinician, StaffAccount
from ...models.staff import ROLE_ADMIN
from ...services import staff_accounts, staff_auth
from ...services.staff_accounts import StaffAccountError
from ...staff_forms import ROLE_LABELS, NewAccountForm, PostForm, RoleForm, SetPasswordForm, choices
from .access import current_staff, roles

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _clinician_choices() -> list:
    clinicians = db.session.scalars(
        select(Clinician).order_by(Clinician.display_order, Clinician.id)
    )
    return choices([("", "None (admin or front desk)")] + [(str(c.id), c.name) for c in clinicians])


def _account_or_404(account_id: int) -> StaffAccount:
    account = staff_accounts.find_account_by_id(account_id)
    if account is None:
        abort(404)
    return account


def _clinician_names() -> dict[int, str]:
    return dict(db.session.execute(select(Clinician.id, Clinician.name)).all())


@bp.get("/")
@roles(ROLE_ADMIN)
def list_accounts():
    return render_template(
        "staff/accounts/list.html",
        accounts=staff_accounts.list_accounts(),
        last_sign_ins=staff_accounts.last_sign_ins(),
        clinician_names=_clinician_names(),
        role_labels=ROLE_LABELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles(ROLE_ADMIN)
def new_account():
    form = NewAccountForm()
    form.clinician.choices = _clinician_choices()
    problem = ""
    if form.validate_on_submit():
        try:
            account = staff_accounts.create_account(
                form.email.data,
                name=form.name.data,
                role=form.role.data,
                password=form.password.data,
                clinician_id=form.clinician_id,
                actor_account_id=current_staff().id,
            )
        except StaffAccountError as error:
            problem = str(error)
        else:
            flash(f"Created the account of {account.name}. Give them the password in person.", "ok")
            return redirect(url_for("staff.accounts.detail", account_id=account.id), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("staff/accounts/new.html", form=form, problem=problem), status


def _detail_page(account: StaffAccount, *, role_form=None, password_form=None, problem=""):
    if role_form is None:
        role_form = RoleForm(
            formdata=None, role=account.role, clinician=str(account.clinician_id or "")
        )
    role_form.clinician.choices = _clinician_choices()
    return render_template(
        "staff/accounts/detail.html",
        account=account,
        last_sign_in=staff_accounts.last_sign_ins().get(account.id),
        recovery_codes_left=staff_auth.recovery_codes_left(account.id),
        clinician_name=_clinician_names().get(account.clinician_id),
        role_labels=ROLE_LABELS,
        role_form=role_form,
        password_form=password_form or SetPasswordForm(formdata=None),
        post_form=PostForm(),
        problem=problem,
        is_self=account.id == current_staff().id,
    )


@bp.get("/<int:account_id>")
@roles(ROLE_ADMIN)
def detail(account_id: int):
    return _detail_page(_account_or_404(account_id))


def _change(account_id: int, change: Callable[[str], object], done: str, **page):
    """Run one service change for the account; back to its page, or the page with the refusal."""
    account = _account_or_404(account_id)
    try:
        change(account.email)
    except StaffAccountError as error:  # rolled back: the page shows the account unchanged
        return _detail_page(account, problem=str(error), **page), 409
    flash(done.format(name=account.name), "ok")
    # When admins change their own account its sessions may have ended: the guard then
    # sends this redirect on to the sign-in page.
    return redirect(url_for("staff.accounts.detail", account_id=account_id), code=303)


def _button(change: Callable[..., object], done: str) -> Callable:
    """The view behind one button on an account's page: the change, made by this admin."""

    @roles(ROLE_ADMIN)
    def view(account_id: int):
        actor = current_staff().id
        return _change(account_id, lambda email: change(email, actor_account_id=actor), done)

    return view


# The buttons: (path and endpoint, the service change, the message after it).
for _path, _change_fn, _done in (
    (
        "disable",
        staff_accounts.disable_account,
        "Disabled {name}'s account; its sessions have ended.",
    ),
    ("enable", staff_accounts.enable_account, "Enabled {name}'s account."),
    ("unlock", staff_accounts.unlock_account, "Lifted the lock on {name}'s account."),
    (
        "reset-mfa",
        staff_accounts.reset_mfa,
        "Reset {name}'s second factor: they set up their app again at the next sign-in. "
        "Their sessions have ended.",
    ),
):
    bp.add_url_rule(
        f"/<int:account_id>/{_path}",
        endpoint=_path.replace("-", "_"),
        view_func=_button(_change_fn, _done),
        methods=["POST"],
    )


@bp.post("/<int:account_id>/role")
@roles(ROLE_ADMIN)
def change_role(account_id: int):
    account = _account_or_404(account_id)
    form = RoleForm()
    form.clinician.choices = _clinician_choices()
    if not form.validate():
        return _detail_page(account, role_form=form), 422
    actor = current_staff().id
    return _change(
        account_id,
        lambda email: staff_accounts.change_role(
            email, form.role.data, clinician_id=form.clinician_id, actor_account_id=actor
        ),
        "Saved {name}'s role.",
        role_form=form,
    )


@bp.post("/<int:account_id>/password")
@roles(ROLE_ADMIN)
def set_password(account_id: int):
    account = _account_or_404(account_id)
    form = SetPasswordForm()
    if form.validate():
        try:
            staff_accounts.set_password(
                account.email, form.password.data, actor_account_id=current_staff().id
            )
        except StaffAccountError as error:  # the password policy: an error on the field
            form.password.errors = [*form.password.errors, str(error)]
        else:
            flash(f"Set a new password for {account.name}; their sessions have ended.", "ok")
            return redirect(url_for("staff.accounts.detail", account_id=account_id), code=303)
    return _detail_page(account, password_form=form), 422
