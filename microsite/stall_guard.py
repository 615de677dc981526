"""PostgreSQL: no wait on the database's socket outlasts the statement budget, even if it stalls.

`statement_timeout` is enforced by the server, so it cannot help when the server (or a network
device between us) stops answering: psycopg would then wait on the socket for ever, and the
worker with it. Every psycopg connection the app opens is therefore a `BoundedConnection`,
whose every wait (queries, commits, rollbacks and SQLAlchemy's pre-ping) gives up after
DB_STATEMENT_TIMEOUT_SECONDS plus a little, or when the request's deadline comes, whichever is
first. A connection that gave up is closed (its state is unknown), so SQLAlchemy sees it as
disconnected, discards the pool and the next request connects afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import event
from sqlalchemy.engine import Engine

from . import deadline

# The server's own statement_timeout should win for a slow query; this is for a silent socket.
_SERVER_FIRST_MARGIN_SECONDS = 1.0
# Enough for a ROLLBACK after the request deadline passed, so the connection is left clean.
_MINIMUM_WAIT_SECONDS = 0.5
_limit_override: ContextVar[float | None] = ContextVar("stall_guard_limit", default=None)


class DatabaseStalled(psycopg.OperationalError):
    """The database did not answer in time; the connection was closed."""


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose waits on the server are bounded (see the module docstring)."""

    stall_limit_seconds: float = 6.0

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):  # type: ignore[override]
        if timeout is None:
            limit = _limit_override.get() or self.stall_limit_seconds
            timeout = max(_MINIMUM_WAIT_SECONDS, deadline.bounded(limit))
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except pg_errors._WaitTimeout:
            self.pgconn.finish()  # mid-protocol: the connection cannot be used again
            raise DatabaseStalled(f"the database did not answer within {timeout:.1f} s") from None


def install(engine: Engine, statement_timeout_seconds: float) -> None:
    """Make every connection this engine opens a BoundedConnection."""
    limit = float(statement_timeout_seconds) + _SERVER_FIRST_MARGIN_SECONDS
    connection_class = type("BoundedConnection", (BoundedConnection,), {})
    connection_class.stall_limit_seconds = limit

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return connection_class.connect(*cargs, **cparams)


@contextmanager
def limit(seconds: float) -> Iterator[None]:
    """Within the block, waits on the database give up after `seconds` (readiness probes)."""
    token = _limit_override.set(seconds)
    try:
        yield
    finally:
        _limit_override.reset(token)
