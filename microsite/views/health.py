"""Liveness and readiness for the process manager and load balancer.

`/healthz` never touches the database: it says the process can answer. `/readyz` says whether
the site can take a booking now, within READYZ_TIMEOUT_SECONDS whatever the database does: each
check runs in a small thread pool and one that has not answered in time counts as failed. Its
JSON is `{"status": "ok" | "unavailable", "checks": {<name>: {"ok": bool, ...details}}}`, 200
when every check is ok, else 503 with Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime

from flask import Blueprint, Flask, current_app
from sqlalchemy import text

from .. import clock, stall_guard, storage
from ..extensions import db

bp = Blueprint("health", __name__)

Check = Callable[[float], dict]
_pool: ThreadPoolExecutor | None = None
_pool_guard = threading.Lock()


@bp.get("/healthz")
def healthz():
    """The process is alive; says nothing about the database."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready to take bookings: every check in CHECKS answered ok within the time limit."""
    app = current_app._get_current_object()
    budget = float(app.config["READYZ_TIMEOUT_SECONDS"])
    give_up_at = time.monotonic() + budget
    futures = {name: _probes().submit(_run, app, check, budget) for name, check in CHECKS}
    checks = {}
    for name, future in futures.items():
        try:
            checks[name] = future.result(timeout=max(0.0, give_up_at - time.monotonic()))
        except FutureTimeout:
            checks[name] = {"ok": False, "error": f"no answer within {budget:g} s"}
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", never a 500
            checks[name] = {"ok": False, "error": type(error).__name__}
    if all(check["ok"] for check in checks.values()):
        return {"status": "ok", "checks": checks}
    return {"status": "unavailable", "checks": checks}, 503, {"Retry-After": "30"}


def database_check(budget: float) -> dict:
    """The database answers a query on our schema, and (PostgreSQL) accepts writes."""
    with stall_guard.limit(budget), db.engine.connect() as conn:
        conn.execute(text("SELECT 1 FROM alembic_version"))
        if conn.dialect.name == "postgresql" and conn.scalar(text("SELECT pg_is_in_recovery()")):
            return {"ok": False, "error": "read-only (a standby)"}
    return {"ok": True}


def storage_check(_budget: float) -> dict:
    """SQLite: the file and folder are writable and the disk has room (see storage.py)."""
    if db.engine.dialect.name != "sqlite" or db.engine.url.database in (None, "", ":memory:"):
        return {"ok": True, "detail": "not SQLite"}
    found = storage.problems(db.engine.url.database)
    return {"ok": not found, **found}


def outbox_check(budget: float) -> dict:
    """Email is flowing: no undelivered message has waited longer than OUTBOX_STUCK_AFTER_SECONDS.

    Bookings never wait for email, but a stuck outbox means patients are not getting their
    confirmations, so monitoring must see it. The wait counts from the message's creation, not
    its next attempt: a server that answers every message with a 4xx gets each one retried
    later and later, so none is ever overdue, yet nothing has gone out for hours. Failed
    messages are reported (staff retry them in the console) without making the site unready:
    a retry, not a restart, fixes them.
    """
    from ..services.outbox import health_summary

    with stall_guard.limit(budget):
        summary = health_summary()
    config = current_app.config
    since = summary["waiting_since"]
    stuck = (
        bool(config["MAIL_SERVER"])
        and since is not None
        and (clock.now() - datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds()
        > float(config["OUTBOX_STUCK_AFTER_SECONDS"])
    )
    return {"ok": not stuck, **summary, **({"error": "email is not going out"} if stuck else {})}


# The checks /readyz runs, in the order shown.
CHECKS: list[tuple[str, Check]] = [
    ("database", database_check),
    ("storage", storage_check),
    ("outbox", outbox_check),
]


def _run(app: Flask, check: Check, budget: float) -> dict:
    with app.app_context():
        return check(budget)


def _probes() -> ThreadPoolExecutor:
    """One small pool per process, made on first use (after gunicorn forked the worker)."""
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
        return _pool
