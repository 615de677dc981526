"""The database going away: a plain 503 saying nothing was booked; recovery without a restart."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests_support import PG_ADMIN_URL

from microsite import create_app
from microsite.extensions import db


@contextmanager
def missing_database(like_url: str):
    """A URL whose database does not exist yet, and a function that brings it into being."""
    if like_url.startswith("postgresql"):
        name = f"microsite_absent_{uuid.uuid4().hex[:8]}"
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

        def bring_up() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))

        try:
            yield url, bring_up
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            # SQLite cannot open a file in a folder that does not exist: the database is "away".
            path = Path(folder) / "not-yet" / "db.sqlite3"
            yield f"sqlite:///{path}", lambda: path.parent.mkdir()


def booking_post(client):
    return client.post(
        "/book/details",
        data={
            "consultation_type": "1",
            "slot": "any-20261201T1400Z",
            "idempotency_key": uuid.uuid4().hex,
            "full_name": "Jane Patient",
            "email": "jane@example.com",
            "phone": "2075550123",
            "birth_date-month": "01",
            "birth_date-day": "01",
            "birth_date-year": "1980",
            "consent_privacy": "y",
            "ack_not_emergency": "y",
        },
    )


def test_database_away_gives_503_and_recovers_without_restart(database_url):
    with missing_database(database_url) as (url, bring_up):
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "x",
                "SQLALCHEMY_DATABASE_URI": url,
                # The form's CSRF token needs no database; this test is about the database.
                "WTF_CSRF_ENABLED": False,
                "TRUSTED_HOSTS": ["localhost"],  # the test client's Host
                # Recovery is the point here, not the probe's speed on a loaded CI machine.
                "READYZ_TIMEOUT_SECONDS": 15,
            }
        )
        client = app.test_client()

        response = booking_post(client)
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert "nothing was booked" in page.lower()
        assert "Traceback" not in page
        assert client.get("/book/").status_code == 503
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200

        bring_up()
        with app.app_context():
            upgrade()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        assert client.get("/book/").status_code == 200
        with app.app_context():
            db.engine.dispose()


def test_database_unreachable_on_the_network_gives_503(app_config):
    app_config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    app_config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 1}}
    app_config["WTF_CSRF_ENABLED"] = False
    client = create_app(app_config).test_client()
    response = booking_post(client)
    assert response.status_code == 503
    assert "Retry-After" in response.headers
