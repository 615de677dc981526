"""Configuration defaults, documented; the factory layers instance config and env on top."""

from __future__ import annotations

DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused outside debug/testing

DEFAULTS: dict[str, object] = {
    # Signs session and CSRF cookies. Must be set in production (see README).
    "SECRET_KEY": DEV_SECRET_KEY,
    # SQLite under instance/ by default; a postgresql+psycopg:// URL for several servers.
    "SQLALCHEMY_DATABASE_URI": None,  # filled in by the factory from the instance path
    # hide_parameters: SQL errors and logs never carry patient data typed into a form.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
    # Milliseconds SQLite waits for another writer before giving up (see "Time budget" below).
    "SQLITE_BUSY_TIMEOUT_MS": 3000,
    # Patients' forms are small; anything bigger is refused with 413.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # CSRF tokens outlive a slow, anxious form-filler.
    "WTF_CSRF_TIME_LIMIT": 4 * 3600,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,  # set True behind HTTPS (see docs/deploy in README)
    # Used for canonical URLs, the sitemap and the calendar UID domain.
    "SITE_URL": "http://127.0.0.1:5000",
    # Seconds a free-slot list may be reused by one process (0 = never); bookings always re-check.
    "SLOT_CACHE_SECONDS": 2,
    # Seconds a booking form must be open before it is accepted (simple bot guard).
    "BOOKING_MIN_FILL_SECONDS": 3,
    # Clinic facts shown on the pages. Demo values until the clinic supplies real ones.
    "CLINIC_NAME": "Bluewater Psychiatry",
    # Used in calendar titles and email subjects, which must not reveal the treatment.
    "CLINIC_SHORT_NAME": "Bluewater",
    "CLINIC_STREET": "100 Harbor Street, Suite 200",  # placeholder address
    "CLINIC_CITY": "Portland",
    "CLINIC_REGION": "ME",
    "CLINIC_POSTCODE": "04101",
    "CLINIC_COUNTRY": "US",
    "CLINIC_PHONE": "+1 207 555 0142",
    "CLINIC_EMAIL": "hello@bluewater-psychiatry.example",
    "CLINIC_BOOKING_MAILBOX": "bookings@bluewater-psychiatry.example",
    "CLINIC_DOMAIN": "bluewater-psychiatry.example",
    "CLINIC_TIMEZONE": "America/New_York",
    "ICS_PRODID": "-//Bluewater Psychiatry//Booking microsite//EN",
    # Default country for phone numbers typed without a +country code.
    "PHONE_DEFAULT_REGION": "US",
    # --- faults: the time budget (README "When something fails"; gunicorn.conf.py) ---
    # Every wait is bounded well below gunicorn's worker timeout (30 s), so a stalled database
    # gives a 503 page, not a killed worker: lock 3 s < statement 5 s < request 10 s < worker 30 s.
    # Seconds to open a PostgreSQL connection (connect + authentication).
    "DB_CONNECT_TIMEOUT_SECONDS": 3,
    # Seconds one SQL statement may run (PostgreSQL statement_timeout; client-side stall guard).
    "DB_STATEMENT_TIMEOUT_SECONDS": 5,
    # Seconds to wait for a lock: PostgreSQL lock_timeout, a pooled connection (SQLite's writers
    # wait in line until their request's deadline; SQLITE_BUSY_TIMEOUT_MS bounds other processes).
    "DB_LOCK_TIMEOUT_SECONDS": 3,
    # Seconds a request may take; nothing is committed after it (also PG idle-in-transaction).
    "REQUEST_DEADLINE_SECONDS": 10,
    # Measure the deadline from the proxy's X-Request-Start (t=<µs>); only behind your own proxy.
    "REQUEST_START_HEADER_TRUSTED": False,
    # SQLite: below this many free bytes on the database's disk, bookings get the 503 page.
    "STORAGE_MIN_FREE_BYTES": 50 * 1024 * 1024,
    # Seconds /readyz may take in all; a check that has not answered by then counts as failed.
    "READYZ_TIMEOUT_SECONDS": 2,
}


class ConfigError(RuntimeError):
    """Raised when the app is configured in a way that must not run."""


def check_secret_key(config: dict) -> None:
    """Refuse the development secret outside debug and testing."""
    if config.get("DEBUG") or config.get("TESTING"):
        return
    key = config.get("SECRET_KEY")
    if not key or key == DEV_SECRET_KEY:
        raise ConfigError(
            "SECRET_KEY is unset or the development default. Set one before serving: "
            "MICROSITE_SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\" "
            "in the environment, or SECRET_KEY = '...' in instance/config.py."
        )
