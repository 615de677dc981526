"""The e2e session: one gunicorn serving a throwaway, seeded database, and one Chromium.

The server runs the app exactly as production does (gunicorn, `flask db upgrade`, `flask
seed-demo`), on SQLite, or on a throwaway PostgreSQL database when MICROSITE_TEST_DATABASE_URL
is set (as in CI). It uses the real clock, so scenarios never name a date: they take the times
the picker offers. The demo schedule (two clinicians, weekdays, 60 days ahead) always has free
times within the first week the picker opens on.

Scenarios use `e2e_server` (its `url`, and `flask(...)` to run a command such as creating a
staff account or sending the outbox against the same database) and `watched` for a private,
recorded browser context. `mail` is a real SMTP server in the test process: `flask outbox send`
delivers the patients' emails to it, so the manage link a scenario opens is the one the patient
received. `admin` is a console administrator, signed in (and enrolled) once through the pages.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser import (
    Watched,
    launch_chromium,
    private_context,
    remove_profile,
    watched_contexts,
)
from console import ADMIN, SignedIn, create_account, enrol, enter_password
from live_server import LiveServer, app_env, migrate, postgres_database, run_flask
from playwright.sync_api import Browser, sync_playwright
from smtp_server import RecordingHandler, smtp_server

PG_ADMIN_URL = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip()


@dataclass
class E2EServer:
    server: LiveServer
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def flask(self, *args: str, input: str | None = None, **env: str):  # noqa: A002
        """Run `flask --app microsite <args>` against the server's database (with `input` on
        its standard input, and `env` added to the server's environment)."""
        return run_flask(list(args), {**self.env, **env}, input=input)

    @property
    def database_url(self) -> str:
        return self.env["MICROSITE_SQLALCHEMY_DATABASE_URI"]


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory) -> Iterator[E2EServer]:
    folder = tmp_path_factory.mktemp("e2e")
    with ExitStack() as stack:
        if PG_ADMIN_URL:
            url = stack.enter_context(postgres_database(PG_ADMIN_URL, prefix="microsite_e2e"))
        else:
            url = f"sqlite:///{folder / 'e2e.sqlite3'}"
        # No slot-list reuse between workers: a scenario books behind the browser's back.
        env = app_env(url, MICROSITE_SLOT_CACHE_SECONDS="0")
        migrate(url)
        run_flask(["seed-demo"], env)
        server = LiveServer(env, Path(folder) / "gunicorn.log", workers=2)
        stack.enter_context(server)
        yield E2EServer(server, env)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium, profile = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
            remove_profile(profile)


@pytest.fixture
def watched(browser, e2e_server) -> Iterator[Callable[..., Watched]]:
    """Open recorded browser contexts; each must have stayed private when the test ends."""
    with watched_contexts(browser, e2e_server.url) as open_context:
        yield open_context


@pytest.fixture(scope="session")
def mail() -> Iterator[tuple[int, RecordingHandler]]:
    """(port, handler) of an SMTP server that keeps every message it is sent."""
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
def admin(browser, e2e_server) -> SignedIn:
    """An administrator who signed in and set up the authenticator through the pages; a
    context opened with `watched(storage_state=admin.state)` is signed in as them."""
    create_account(e2e_server, ADMIN)
    with private_context(browser, e2e_server.url) as context:
        page = context.new_page()
        enter_password(page, ADMIN)
        secret, _codes = enrol(page)
        return SignedIn(ADMIN, secret, context.context.storage_state())
