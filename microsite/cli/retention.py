"""Retention and patients' rights: `retention purge`, `patient export`, `patient erase`.

These commands print to the operator's terminal only; their log lines carry counts and
booking ids, never the address or anything else a patient typed.
"""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

retention_group = AppGroup("retention", help="Erase patient details the clinic no longer keeps.")
patient_group = AppGroup("patient", help="A patient's access and erasure requests, by email.")


@retention_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be erased; change nothing.")
@click.option(
    "--batch-size",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Bookings erased per write transaction.",
)
def purge_command(dry_run: bool, batch_size: int) -> None:
    """Erase patient details of bookings that ended more than RETENTION_DAYS ago (cron-safe)."""
    from ..services.retention import RetentionNotConfiguredError, purge_expired

    try:
        result = purge_expired(dry_run=dry_run, batch_size=batch_size)
    except RetentionNotConfiguredError as error:
        raise click.ClickException(str(error)) from None
    cutoff = result.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    if result.dry_run:
        click.echo(
            f"Dry run: {result.erased} booking(s) that ended before {cutoff} would have their "
            "patient details erased. Nothing was changed."
        )
    else:
        click.echo(
            f"Erased the patient details of {result.erased} booking(s) that ended before {cutoff}."
        )


@patient_group.command("export")
@click.argument("email")
def export_command(email: str) -> None:
    """Print, as JSON, every booking held for EMAIL (with its history), for an access request."""
    from ..services.patient_rights import export_patient

    click.echo(json.dumps(export_patient(email), indent=2, ensure_ascii=False))


@patient_group.command("erase")
@click.argument("email")
@click.option(
    "--include-upcoming",
    is_flag=True,
    help="Cancel upcoming bookings (through the usual cancellation) and erase them too.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, include_upcoming: bool, yes: bool) -> None:
    """Erase the patient details of every booking held for EMAIL (a request to be forgotten)."""
    from ..extensions import db
    from ..services.patient_rights import UpcomingBookingsError, bookings_for_email, erase_patient

    references = [b.reference for b in bookings_for_email(email)]
    db.session.rollback()
    if not references:
        click.echo("No booking holds that address; nothing to erase.")
        return
    if not yes:
        click.confirm(
            f"Erase the patient details of {len(references)} booking(s) "
            f"({', '.join(references)})? This cannot be undone.",
            abort=True,
        )
    try:
        result = erase_patient(email, include_upcoming=include_upcoming)
    except UpcomingBookingsError as error:
        raise click.ClickException(str(error)) from None
    if result.cancelled:
        click.echo(f"Cancelled first: {', '.join(result.cancelled)}.")
    click.echo(
        f"Erased the patient details of {len(result.erased)} booking(s): "
        f"{', '.join(result.erased)}."
    )


def register(app: Flask) -> None:
    app.cli.add_command(retention_group)
    app.cli.add_command(patient_group)
