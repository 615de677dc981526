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


@staff_group.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop an account signing in; its open sessions end at once."""
    account = _run(lambda: staff_accounts.disable_account(email))
    click.echo(f"Disabled {account.email}; its sessions have ended.")


@staff_group.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled account sign in again."""
    account = _run(lambda: staff_accounts.enable_account(email))
    click.echo(f"Enabled {account.email}.")


@staff_group.command("unlock")
@click.argument("email")
def unlock_command(email: str) -> None:
    """Lift a lockout after repeated failed sign-ins."""
    account = _run(lambda: staff_accounts.unlock_account(email))
    click.echo(f"Unlocked {account.email}.")


@staff_group.command("reset-mfa")
@click.argument("email")
def reset_mfa_command(email: str) -> None:
    """Forget the authenticator and recovery codes; the next sign-in sets them up again."""
    account = _run(lambda: staff_accounts.reset_mfa(email))
    click.echo(f"Second factor reset for {account.email}; its sessions have ended.")


@staff_group.command("set-password")
@click.argument("email")
def set_password_command(email: str) -> None:
    """Give an account a new password; its open sessions end at once."""
    if staff_accounts.find_account(email) is None:
        raise click.ClickException(f"No staff account has the email {email.strip().lower()}.")
    password = _read_password()
    _run(lambda: staff_accounts.set_password(email, password))
    click.echo(f"Password changed for {email.strip().lower()}; its sessions have ended.")


def register(app: Flask) -> None:
    app.cli.add_command(staff_group)
