"""Operator commands: `backup PATH`, `restore-check PATH`, `db copy-to URL`.

Each prints counts, ids, instants and revisions only, never a patient field, and exits
non-zero when the result cannot be trusted (so cron mails the operator).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from flask_migrate.cli import db as db_group
from sqlalchemy.engine import make_url

from ..extensions import db
from ..services import backup as backup_service
from ..services.backup import BackupError


def _report(report: backup_service.BackupReport) -> None:
    newest = "none"
    if report.newest_booking_id is not None:
        created = report.newest_booking_created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        newest = f"id {report.newest_booking_id}, created {created}"
    click.echo(f"  bookings: {report.bookings}")
    click.echo(f"  newest booking: {newest}")
    click.echo(f"  schema revision: {report.revision or 'unknown'}")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Write a consistent, checked copy of the database to PATH (a new file, owner-only)."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                raise BackupError("an in-memory database cannot be backed up")
            report = backup_service.backup_sqlite(Path(url.database), path)
            click.echo(f"Backup written to {path} (mode 0600); integrity_check: ok")
            _report(report)
        elif url.get_backend_name() == "postgresql":
            args, env = backup_service.pg_dump_command(url, path)
            if not backup_service.pg_dump_available():
                password = "PGPASSWORD=... " if env else ""
                raise BackupError(
                    "pg_dump is not installed here. Run (with umask 077, so the file is "
                    f"owner-only):\n  {password}{shlex.join(args)}"
                )
            backup_service.backup_postgres(url, path)
            click.echo(f"Backup written to {path} by pg_dump (custom format, mode 0600)")
            click.echo(f"  check it with: pg_restore --list {shlex.quote(str(path))}")
        else:
            raise BackupError(f"no backup method for {url.get_backend_name()} databases")
    except (BackupError, FileNotFoundError, PermissionError) as error:
        raise click.ClickException(str(error)) from None


@click.command("restore-check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_check_command(path: Path) -> None:
    """Check that PATH is a complete backup: bookings, the newest one, the schema revision."""
    try:
        if backup_service.file_head(path).startswith(backup_service.PG_CUSTOM_MAGIC):
            entries = backup_service.check_pg_dump(path)
            click.echo(f"{path}: a readable pg_dump archive with {entries} entries.")
            click.echo("  Restore it into a scratch database to count its bookings (see docs).")
            return
        report = backup_service.check_sqlite_backup(path)
    except BackupError as error:
        raise click.ClickException(f"NOT a usable backup: {error}") from None
    click.echo(f"{path}: a complete SQLite backup (integrity_check: ok)")
    _report(report)


@click.command("copy-to")
@click.argument("url")
@with_appcontext
def copy_to_command(url: str) -> None:
    """Copy every table to the fresh database at URL (migrated here first), then verify counts.

    For example SQLite to PostgreSQL: flask --app microsite db copy-to
    postgresql+psycopg://user@host/microsite. Refuses a target that already has data.
    """
    from .. import create_app

    shown = make_url(url).render_as_string(hide_password=True)
    source_engine = db.engine  # this app's database; inside target_app, db.engine is the target
    source_revision = backup_service.revision_of(source_engine)
    # The same settings, another database: its migrations run exactly as `db upgrade` would.
    target_app = create_app({**current_app.config, "SQLALCHEMY_DATABASE_URI": url})
    try:
        with target_app.app_context():
            try:
                upgrade()
                target_revision = backup_service.revision_of(db.engine)
                if source_revision != target_revision:
                    raise BackupError(
                        f"this database is at revision {source_revision}, the code at "
                        f"{target_revision}: run `flask --app microsite db upgrade` first"
                    )
                counts = backup_service.copy_database(source_engine, db.engine, db.metadata)
            finally:
                db.engine.dispose()  # no connection left open to the new database
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Copied to {shown} (revision {target_revision}); row counts verified:")
    for name, count in counts.items():
        click.echo(f"  {name}: {count}")


def register(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_check_command)
    # Flask-Migrate's own `db` group: `db copy-to` sits beside `db upgrade`.
    db_group.add_command(copy_to_command)
