"""Structured logs: one line per request and per event; never patient data, tokens or queries.

Events are logged with the standard `logging` module and an `event` name in `extra`:
`log.info("booking created", extra={"event": "booking.created", "booking_id": 42})`.
A view that has a booking sets `g.booking_id`, and the request line carries it. Paths are
logged without their query string, and the secret segment of a manage or feed link is replaced
by "…", so a log file never holds what would let a reader act as the patient.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

from .errors import request_id

REQUEST_LOGGER = "microsite.request"
REDACTED = "…"
# URL prefixes whose next segment is a bearer secret (the patient's manage link, calendar feeds).
SECRET_PATH_PREFIXES = ("/manage/", "/feeds/")
# A view argument with one of these names is a secret wherever its route lives.
SECRET_VIEW_ARGS = ("token",)
# Health probes come every few seconds from the load balancer: logged below INFO.
QUIET_PATHS = ("/healthz", "/readyz")
PATH_LOG_LIMIT = 200
# SQLAlchemy logs fetched rows (patient names) at DEBUG, whatever hide_parameters says.
PINNED_LOGGERS = {"sqlalchemy": logging.WARNING}

_STANDARD_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRET_PREFIX_RE = re.compile(
    "^(" + "|".join(re.escape(p) for p in SECRET_PATH_PREFIXES) + ")"
    r"[^/]+?(\.[A-Za-z0-9]{1,5})?(?=/|$)"  # the secret, keeping a file extension such as .ics
)


def redact_path(path: str, view_args: dict[str, Any] | None = None) -> str:
    """The path as a log may show it: secret segments replaced by "…", cut to a sane length."""
    for name, value in (view_args or {}).items():
        if name in SECRET_VIEW_ARGS and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    path = _SECRET_PREFIX_RE.sub(lambda m: m.group(1) + REDACTED + (m.group(2) or ""), path)
    return path[:PATH_LOG_LIMIT]


class RequestContextFilter(logging.Filter):
    """Adds the request id to every record logged while a request is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = request_id()
        return True


_ANSI_STYLE_RE = re.compile(r"\x1b\[[0-9;]*m")


class WerkzeugRequestLineFilter(logging.Filter):
    """The development server's access line: no query string, secrets redacted, no colours."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 3 and '"%s" %s %s' in str(record.msg):
            parts = _ANSI_STYLE_RE.sub("", str(args[0])).split(" ")
            if len(parts) == 3:
                parts[1] = redact_path(parts[1].partition("?")[0])
                record.args = (" ".join(parts), *args[1:])
        return True


class TextFormatter(logging.Formatter):
    """Human-readable lines for development: the message, then the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_ATTRS}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return line


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return TextFormatter()
    if log_format == "json":
        return JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """The handler the app installs on the root logger (tests attach one to read its lines)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestContextFilter())
    handler._microsite = True  # type: ignore[attr-defined]  # so a second app replaces it
    return handler


def configure_logging(app: Flask) -> None:
    """Install one JSON (or text) handler on the root logger, so every library's lines match.

    Under TESTING nothing is installed: pytest's caplog captures through the root logger.
    """
    log_format = app.config.get("LOG_FORMAT") or ("text" if app.debug else "json")
    make_formatter(log_format)  # fail fast on a misspelt LOG_FORMAT, under TESTING too
    for name, level in PINNED_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, WerkzeugRequestLineFilter) for f in werkzeug.filters):
        werkzeug.addFilter(WerkzeugRequestLineFilter())
    if app.testing:
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_microsite", False)]:
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(app.config.get("LOG_LEVEL") or "INFO")
    app.logger.removeHandler(default_handler)  # its lines would come out twice


def _start_timer() -> None:
    g.request_started = time.perf_counter()
    request_id()


def request_log_level(path: str) -> int:
    return logging.DEBUG if path in QUIET_PATHS else logging.INFO


def log_request_line(
    logger: logging.Logger,
    level: int,
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    duration_ms: float | None,
    booking_id: int | None = None,
) -> None:
    """The one `http.request` line, whether Flask or `fast_path` answered; `path` redacted."""
    fields: dict[str, Any] = {
        "event": "http.request",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
    }
    if booking_id is not None:
        fields["booking_id"] = booking_id
    logger.log(level, "request", extra=fields)


def _log_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = request_id()
    started = g.get("request_started")
    log_request_line(
        logging.getLogger(REQUEST_LOGGER),
        request_log_level(request.path),
        request_id=request_id(),
        method=request.method,
        path=redact_path(request.path, request.view_args),
        status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 1) if started else None,
        booking_id=g.get("booking_id"),
    )
    return response


def init_app(app: Flask) -> None:
    configure_logging(app)
    app.before_request(_start_timer)
    # Registered before the other after_request hooks, so it runs last and logs the final status.
    app.after_request(_log_request)
