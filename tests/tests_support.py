"""Test support shared by conftest and test modules: throwaway databases, page scraping."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Named instants (clinic zone America/New_York, EST = UTC-5 in winter). Here, not in
# conftest.py: tests/e2e has a conftest of its own, so "from conftest import" is ambiguous.
MONDAY_8AM_EST = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # Monday 30 Nov 2026, 08:00 local
PG_ADMIN_URL = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip()
# The clinic's informational pages, written out (not read from the app) so a lost page fails.
PAGE_PATHS = [
    "/",
    "/ketamine-therapy",
    "/how-it-works",
    "/safety",
    "/who-it-may-help",
    "/what-to-expect",
    "/faq",
    "/about",
    "/privacy",
]
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def create_pg_database(admin_url: str) -> tuple[str, str]:
    """A new, empty PostgreSQL database on the admin URL's server: (its URL, its name)."""
    name = f"microsite_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_pg_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def throwaway_database(like_url: str) -> Iterator[str]:
    """An empty database of the same kind as `like_url`, removed afterwards."""
    if like_url.startswith("postgresql"):
        url, name = create_pg_database(PG_ADMIN_URL)
        try:
            yield url
        finally:
            drop_pg_database(PG_ADMIN_URL, name)
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/throwaway.sqlite3"


APPEND_ONLY_TABLES = ("audit_event",)


def empty_append_only_table(conn, table: str) -> None:
    """Empty a table whose triggers refuse DELETE, between tests only: the triggers are
    lifted inside this one transaction and are back when it commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        return
    triggers = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": table},
    ).all()
    for name, _sql in triggers:
        conn.execute(text(f"DROP TRIGGER {name}"))
    conn.execute(text(f"DELETE FROM {table}"))
    for _name, sql in triggers:
        conn.execute(text(sql))
