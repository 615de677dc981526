"""Staff account commands: `flask --app microsite staff create|list|disable|enable|unlock|
reset-mfa|set-password`.

A password is asked twice at a terminal, or read from the first line of standard input when
that is not a terminal (for scripts: `printf '%s\n' "$PW" | flask staff create ...`). It is
never taken as an argument, where it would show in the shell history and `ps`.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from ..models.staff import ROLE_CLINICIAN, STAFF_ROLES
from ..services import staff_accounts
from ..services.staff_accounts import StaffAccountError

staff_group = AppGroup("staff", help="Staff accounts of the console.")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_password() -> str:
    if _stdin_is_terminal():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _run(action):
    try:
        return action()
    except StaffAccountError as error:
        raise click.ClickException(str(error)) from None


@staff_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="The name shown in the console and the history.")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option(
    "--clinician-id",
    type=int,
    default=None,
    help="For a clinician account: the clinician it belongs to (default: the clinician "
    "whose email is EMAIL).",
)
def create_command(email: str, name: str, role: str, clinician_id: int | None) -> None:
    """Create an account; its authenticator is set up at the first sign-in."""
    password = _read_password()
    account = _run(
        lambda: staff_accounts.create_account(
            email, name=name, role=role, password=password, clinician_id=clinician_id
        )
    )
    linked = f", clinician {account.clinician_id}" if account.role == ROLE_CLINICIAN else ""
    click.echo(f"Created {account.role} account {account.email}{linked}.")


@staff_group.command("list")
def list_command() -> None:
    """Every account with its role and state."""
    for account in staff_accounts.list_accounts():
        state = [
            "active" if account.is_active else "disabled",
            "locked" if account.locked_at else "",
            "mfa set" if account.mfa_enrolled_at else "mfa not set up",
        ]
        clinician = f" clinician={account.clinician_id}" if account.clinician_id else ""
        click.echo(
            f"{account.email}\t{account.name}\t{account.role}{clinician}\t"
            + ", ".join(s for s in state if s)
        )


def _account_command(name: str, change, done: str, summary: str) -> None:
    """`flask staff NAME EMAIL`: one service change to one account, then what it did."""

    @click.argument("email")
    def command(email: str) -> None:
        account = _run(lambda: change(email))
        click.echo(done.format(email=account.email))

    staff_group.command(name, help=summary)(command)


# Each: the command, the service change, what it prints, its help.
for _name, _change, _done, _summary in (
    (
        "disable",
        staff_accounts.disable_account,
        "Disabled {email}; its sessions have ended.",
        "Stop an account signing in; its open sessions end at once.",
    ),
    (
        "enable",
        staff_accounts.enable_account,
        "Enabled {email}.",
        "Let a disabled account sign in again.",
    ),
    (
        "unlock",
        staff_accounts.unlock_account,
        "Unlocked {email}.",
        "Lift a lockout after repeated failed sign-ins.",
    ),
    (
        "reset-mfa",
        staff_accounts.reset_mfa,
        "Second factor reset for {email}; its sessions have ended.",
        "Forget the authenticator and recovery codes; the next sign-in sets them up again.",
    ),
):
    _account_command(_name, _change, _done, _summary)


@staff_group.command("set-password")
@click.argument("email")
def set_password_command(email: str) -> None:
    """Give an account a new password; its open sessions end at once."""
    account = _run(lambda: staff_accounts.require_account(email))  # before asking for it
    password = _read_password()
    _run(lambda: staff_accounts.set_password(account.email, password))
    click.echo(f"Password changed for {account.email}; its sessions have ended.")


def register(app: Flask) -> None:
    app.cli.add_command(staff_group)
