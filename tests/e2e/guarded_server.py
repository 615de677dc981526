"""A second e2e server with every guard a patient can run into switched on, and a database that
a scenario can take away.

The session server (conftest.py) turns the bot guard's fill time, the rate limits and the
upcoming-consultations limit off, because its scenarios book one patient many times. This one
runs them as production does: a form sent within MIN_FILL_SECONDS of being shown is the bot
guard's, more than BOOKINGS_PER_MINUTE booking POSTs from one address get the 429 page, and a
patient holds at most one upcoming consultation. It has one worker, so the rate limit's
in-memory counters are the server's own. It trusts one proxy's X-Forwarded-For, as behind the
clinic's TLS proxy: each scenario's browser is given its own address that way, so one
scenario's presses never count against another's.

`database_away()` makes the database unavailable the way it happens in production, then brings
it back: on PostgreSQL the server reaches the database through a TCP proxy that is cut; on
SQLite the database's folder is moved away (as an unmounted or lost volume would be).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from live_server import PG_ADMIN_URL, LiveServer, app_env, migrate, postgres_database, run_flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from tcp_proxy import TcpProxy

MIN_FILL_SECONDS = 3
BOOKINGS_PER_MINUTE = 3
READY_TIMEOUT_S = 15.0
GUARDS = {
    "MICROSITE_BOOKING_MIN_FILL_SECONDS": str(MIN_FILL_SECONDS),
    "MICROSITE_RATELIMIT_ENABLED": "true",
    "MICROSITE_RATELIMIT_BOOKING": f"{BOOKINGS_PER_MINUTE} per minute",
    "MICROSITE_MAX_UPCOMING_PER_PATIENT": "1",
    "MICROSITE_PROXY_FIX_X_FOR": "1",
    # No slot-list reuse: scenarios book the first free time one after another.
    "MICROSITE_SLOT_CACHE_SECONDS": "0",
}
_BOOKINGS_OF = text(
    "SELECT patient_note FROM booking WHERE patient_email = :email AND status <> 'cancelled'"
)


@dataclass
class GuardedServer:
    server: LiveServer
    _database: Engine  # the database itself, never through the proxy
    _away: tuple[Callable[[], object], Callable[[], object]]  # (take away, bring back)

    @property
    def url(self) -> str:
        return self.server.url

    @contextmanager
    def database_away(self) -> Iterator[None]:
        take_away, bring_back = self._away
        take_away()
        try:
            yield
        finally:
            bring_back()
            self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """/readyz says the server can take bookings again (its stale connections replaced)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"the server was not ready {READY_TIMEOUT_S} s after the database")

    def notes_booked_by(self, email: str) -> list[str]:
        """The note of every active booking under that email address: what is really stored."""
        with self._database.connect() as conn:
            return [row[0] for row in conn.execute(_BOOKINGS_OF, {"email": email})]


@contextmanager
def guarded_server(folder: Path) -> Iterator[GuardedServer]:
    with ExitStack() as stack:
        if PG_ADMIN_URL:
            direct = stack.enter_context(
                postgres_database(PG_ADMIN_URL, prefix="microsite_e2e_guarded")
            )
            target = make_url(direct)
            proxy = stack.enter_context(TcpProxy(target.host or "127.0.0.1", target.port or 5432))
            served = target.set(host="127.0.0.1", port=proxy.port)
            served = served.render_as_string(hide_password=False)
            away = (proxy.cut, proxy.forward)
        else:
            data, moved = folder / "data", folder / "data-moved-away"
            data.mkdir()
            direct = served = f"sqlite:///{data / 'guarded.sqlite3'}"
            away = (lambda: data.rename(moved), lambda: moved.rename(data))
        migrate(direct)
        run_flask(["seed-demo"], app_env(direct))
        database = create_engine(direct)
        stack.callback(database.dispose)
        server = LiveServer(app_env(served, **GUARDS), folder / "gunicorn.log", workers=1)
        stack.enter_context(server)
        yield GuardedServer(server, database, away)
