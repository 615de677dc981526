"""Feed commands: `feeds create|revoke (EMAIL | --clinic)` and `bookings export-ics`.

URLs are built from SITE_URL, so set it to the public https:// address before creating feeds.
"""

from __future__ import annotations

from datetime import datetime

import click
from flask import Flask
from flask.cli import AppGroup

from ..services import feeds as feed_service
from .demo import bookings_group

feeds_group = AppGroup("feeds", help="Staff calendar feeds: secret subscription URLs.")


def _owner(email: str | None, clinic: bool) -> tuple[int | None, str]:
    """(clinician id or None for the clinic, a label) from the command's arguments."""
    if clinic == bool(email):
        raise click.UsageError("Give a clinician's email or --clinic (one of the two).")
    if clinic:
        return None, "the whole clinic"
    try:
        return feed_service.find_clinician_id(email), email
    except feed_service.UnknownClinicianError as error:
        raise click.ClickException(str(error)) from None


@feeds_group.command("create")
@click.argument("email", required=False)
@click.option("--clinic", is_flag=True, help="The whole clinic's feed instead of one clinician's.")
def create_command(email: str | None, clinic: bool) -> None:
    """Make a feed URL (replacing any earlier one of the same owner) and print it."""
    clinician_id, label = _owner(email, clinic)
    https_url, webcal_url = feed_service.feed_urls(feed_service.create_feed(clinician_id))
    click.echo(f"Calendar feed for {label} (any earlier feed URL of theirs no longer works):")
    click.echo(f"  {https_url}")
    click.echo(f"  {webcal_url}")
    click.echo("Keep it secret: anyone with the URL sees the schedule (never patient names).")


@feeds_group.command("revoke")
@click.argument("email", required=False)
@click.option("--clinic", is_flag=True, help="The whole clinic's feed instead of one clinician's.")
def revoke_command(email: str | None, clinic: bool) -> None:
    """End the feed: its URL answers 404 from now on."""
    clinician_id, label = _owner(email, clinic)
    if feed_service.revoke_feed(clinician_id):
        click.echo(f"The feed for {label} is revoked.")
    else:
        click.echo(f"There was no live feed for {label}; nothing to do.")


@click.command("export-ics")
@click.option("--from", "first_day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last_day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--clinician", "email", help="Only this clinician's bookings (by email).")
@click.argument("file", type=click.File("wb"))
def export_ics_command(first_day: datetime, last_day: datetime, email: str | None, file) -> None:
    """Write the feed's calendar for clinic-local days FROM..TO (inclusive) to FILE (- = stdout)."""
    if last_day < first_day:
        raise click.UsageError("--to is before --from.")
    clinician_id = _owner(email, False)[0] if email else None
    file.write(feed_service.export_calendar(first_day.date(), last_day.date(), clinician_id))


def register(app: Flask) -> None:
    app.cli.add_command(feeds_group)
    # Part of the existing `bookings` group (cli/demo.py), added from here to keep that small.
    bookings_group.add_command(export_ics_command)
