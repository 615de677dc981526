"""Email commands: `outbox send` (one pass, for cron), `outbox run` (loop), `outbox retry ID`,
`outbox status`, and `reminders send`."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import AppGroup

outbox_group = AppGroup("outbox", help="Send the emails waiting in the outbox.")
reminders_group = AppGroup("reminders", help="Patients' reminders before their consultation.")


@outbox_group.command("send")
def send_command() -> None:
    """Send everything due, once (run it from cron every minute or so)."""
    from ..services import outbox

    report = outbox.send_due()
    if report.disabled:
        click.echo("MAIL_SERVER is not set: nothing sent; messages wait in the outbox.")
        return
    click.echo(f"outbox: {report}")


@outbox_group.command("run")
@click.option(
    "--interval", type=float, default=None, help="Seconds between passes (MAIL_POLL_SECONDS)."
)
def run_command(interval: float | None) -> None:
    """Send what is due, then keep looking every --interval seconds until stopped.

    SIGTERM (systemd's stop) or Ctrl-C: the pass under way finishes, then the command exits 0.
    """
    from ..services import outbox

    pause = interval if interval is not None else float(current_app.config["MAIL_POLL_SECONDS"])
    with _stop_requested() as stopping:
        while not stopping.is_set():
            report = outbox.send_due()
            if report.sent or report.failed or report.retrying:
                click.echo(f"outbox: {report}")
            stopping.wait(pause)
    click.echo("outbox: stopped")


@contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT instead of the default (die, or KeyboardInterrupt
    mid-pass): a message the server has accepted is then always marked sent before exit."""
    stopping = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.getsignal(number) for number in signals}
    for number in signals:
        signal.signal(number, lambda _number, _frame: stopping.set())
    try:
        yield stopping
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@outbox_group.command("retry")
@click.argument("message_id", type=int)
def retry_command(message_id: int) -> None:
    """Make a failed message due again now."""
    from ..services import outbox

    try:
        message = outbox.retry_message(message_id)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"outbox: message {message.id} is {message.status}")


@outbox_group.command("status")
def status_command() -> None:
    """Pending and failed counts and the oldest due time, as JSON."""
    from ..services import outbox

    click.echo(json.dumps(outbox.health_summary()))


@reminders_group.command("send")
def reminders_command() -> None:
    """Queue reminders for consultations starting within REMINDER_BEFORE (safe to repeat)."""
    from ..services import reminders

    queued = reminders.queue_due_reminders()
    click.echo(f"reminders: {queued} queued")
    from ..services import outbox

    report = outbox.send_due()
    if not report.disabled:
        click.echo(f"outbox: {report}")


def register(app: Flask) -> None:
    app.cli.add_command(outbox_group)
    app.cli.add_command(reminders_group)
