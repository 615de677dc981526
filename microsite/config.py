"""Configuration defaults, documented; the factory layers instance config and env on top."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from datetime import timedelta
from urllib.parse import urlsplit

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
    # --- invites: email, outbox, reminders, the patient's manage link ---
    # SMTP host for outgoing mail; empty = send nothing (messages wait in the outbox).
    "MAIL_SERVER": "",
    # SMTP port: 587 with MAIL_USE_TLS, 465 with MAIL_USE_SSL, 25 for a local relay.
    "MAIL_PORT": 25,
    # STARTTLS after connecting (port 587).
    "MAIL_USE_TLS": False,
    # TLS from the first byte (port 465); do not combine with MAIL_USE_TLS.
    "MAIL_USE_SSL": False,
    # SMTP login; empty = no AUTH.
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",
    # Seconds any one SMTP network operation may take before the attempt is given up.
    "MAIL_TIMEOUT": 10,
    # Attempts per message before it is marked failed (shown by /readyz, retried by staff).
    "MAIL_MAX_ATTEMPTS": 10,
    # First retry after this many seconds, doubling each time, at most MAIL_RETRY_MAX_SECONDS.
    "MAIL_RETRY_BASE_SECONDS": 60,
    "MAIL_RETRY_MAX_SECONDS": 3600,
    # Seconds a sender holds its claim on a batch; must exceed a few MAIL_TIMEOUTs.
    "MAIL_LEASE_SECONDS": 300,
    # Messages one sender claims at a time.
    "MAIL_BATCH_SIZE": 20,
    # Send from a thread in each app process right after a booking commits (never in the
    # request). The test suite turns it off; `flask outbox send` from cron works either way.
    "MAIL_SEND_IN_BACKGROUND": True,
    # Seconds the background thread waits between looks for retries that have come due.
    "MAIL_POLL_SECONDS": 60,
    # Hours before the start that `flask reminders send` reminds the patient (or a timedelta).
    "REMINDER_BEFORE": 24,
    # Hours before the start after which patients must phone to cancel or move (or a timedelta).
    "CANCEL_CUTOFF": 24,
    # /readyz reports 503 when a due email has waited longer than this (MAIL_SERVER set).
    "OUTBOX_STUCK_AFTER_SECONDS": 900,
    # --- staff console ---
    # A staff session ends after this many minutes without a request.
    "STAFF_SESSION_IDLE_MINUTES": 15,
    # ... and this many hours after sign-in, however busy.
    "STAFF_SESSION_MAX_HOURS": 8,
    # Clinicians see every booking (True) or only their own (False).
    "STAFF_CLINICIANS_SEE_ALL": False,
    # Shortest staff password accepted (common passwords are refused at any length).
    "STAFF_PASSWORD_MIN_LENGTH": 12,
    # Minutes over which failed sign-ins are counted for the two limits below.
    "STAFF_LOGIN_WINDOW_MINUTES": 15,
    # Failed sign-ins for one email within the window before sign-in pauses for it.
    "STAFF_LOGIN_MAX_PER_ACCOUNT": 5,
    # Failed sign-ins from one address within the window before it pauses for that address.
    "STAFF_LOGIN_MAX_PER_ADDRESS": 20,
    # Consecutive failures that lock an account until an admin unlocks it.
    "STAFF_LOCKOUT_AFTER": 10,
    # Wrong second-factor codes in one sign-in before it starts again from the password.
    "STAFF_MFA_MAX_FAILURES": 5,
    # Bookings per page in the staff list, rows per page in the audit trail.
    "STAFF_PAGE_SIZE": 25,
    # --- hardening: abuse limits, patient policy, hosts ---
    # Host names this site answers to (Flask's own setting); None = the SITE_URL host only.
    "TRUSTED_HOSTS": None,
    # Rate limits per client address (Flask-Limiter syntax; "5 per minute;20 per hour" works).
    "RATELIMIT_ENABLED": True,  # MICROSITE_RATELIMIT_ENABLED=false turns every limit off
    "RATELIMIT_BOOKING": "5 per minute;20 per hour",  # booking form POSTs
    "RATELIMIT_MANAGE": "10 per minute",  # patient manage-link actions (reschedule, cancel)
    "RATELIMIT_STAFF_LOGIN": "5 per minute;20 per hour",  # staff sign-in attempts
    # Counters: memory (per process) by default; redis://host:6379/0 to share across workers.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Redis away: count in each worker's memory meanwhile, rather than fail every booking.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # Most upcoming consultations one email address or phone number may hold (0 = no limit).
    "MAX_UPCOMING_PER_PATIENT": 1,
    # Seconds a booking form stays usable after it was shown (its signed "shown at" stamp).
    "BOOKING_FORM_MAX_AGE_SECONDS": 2 * 3600,
    # The honeypot and form-stamp checks; False only for load tests that replay one form.
    "BOOKING_BOT_GUARD": True,
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
    # --- operations (serving, logs, retention) ---
    # How many proxies to trust for X-Forwarded-For / -Proto / -Host; 0 trusts none (no ProxyFix).
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,  # > 0 also makes the session cookie Secure and __Host- prefixed
    "PROXY_FIX_X_HOST": 0,
    # "json" (one JSON object a line) or "text"; None = json, or text when DEBUG is on.
    "LOG_FORMAT": None,
    # The root logger's level; SQLAlchemy stays at WARNING whatever this says (rows hold names).
    "LOG_LEVEL": "INFO",
    # Days after a booking's end before `retention purge` erases its patient details. None =
    # the clinic has not decided, and the purge refuses to run (no default pretends to be law).
    "RETENTION_DAYS": None,
    # --- speed ---
    # Seconds a process may reuse the schedule: hours, closures, clinicians, consultation types
    # (0 = never). They do not change with bookings, so SLOT_CACHE_SECONDS does not cover them.
    "SCHEDULE_CACHE_SECONDS": 2,
    # Render pages every visitor sees alike once and reuse the HTML (fresh CSP nonce each time).
    "PAGE_CACHE": True,
    # Seconds between looks at the content files' mtimes (0 = every request): edits show after.
    "CONTENT_CHECK_SECONDS": 1,
    # A feed's validators are kept this long for the fast path's 304s; a feed revoked (or a
    # booking made) in another process is seen after this. A 304 carries no data.
    "FEED_VALIDATOR_SECONDS": 5,
}


ENV_PREFIX = "MICROSITE_"

# Settings read from the environment exactly as written, never parsed: every key whose default
# is text, plus text settings whose default is None. Flask's from_prefixed_env parses values as
# JSON, which turned MICROSITE_MAIL_PASSWORD=123e4 into the float 12340.0 and a numeric
# SECRET_KEY into an int.
STRING_SETTINGS = frozenset(
    [key for key, value in DEFAULTS.items() if isinstance(value, str)]
    + ["SQLALCHEMY_DATABASE_URI", "LOG_FORMAT"]
)
BOOLEAN_SETTINGS = frozenset(key for key, value in DEFAULTS.items() if isinstance(value, bool))


def apply_environment(config: MutableMapping, environ: Mapping[str, str] = os.environ) -> None:
    """Fix up what `from_prefixed_env` made of MICROSITE_* text and yes/no settings.

    Text settings take the variable's value verbatim. A yes/no setting must be JSON `true` or
    `false`: Flask would keep `False` as the (truthy) string "False", so it is refused instead.
    """
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :]
        if key in STRING_SETTINGS:
            config[key] = raw
        elif key in BOOLEAN_SETTINGS and raw not in ("true", "false"):
            raise ConfigError(f"{name} must be true or false, not {raw!r}.")
        elif key in BOOLEAN_SETTINGS:
            config[key] = json.loads(raw)


def duration_setting(value: object) -> timedelta:
    """A duration setting: a timedelta (instance/config.py) or a number of hours (env)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected hours or a timedelta, got {value!r}")
    return timedelta(hours=value)


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


def default_trusted_hosts(site_url: str) -> list[str]:
    """The one host the site answers to unless TRUSTED_HOSTS says otherwise: SITE_URL's."""
    host = urlsplit(site_url).hostname
    if not host:
        raise ConfigError(f"SITE_URL {site_url!r} has no host name; set TRUSTED_HOSTS too.")
    return [host]
