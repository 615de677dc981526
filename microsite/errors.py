"""Error pages: friendly, never a traceback; 503 with Retry-After when the database is away."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from .extensions import db

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 30


def request_id() -> str:
    """A short id shown on error pages and logged, so staff can find the failure."""
    if "request_id" not in g:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:12]
    return g.request_id


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _render(status: int, template: str = "errors/error.html", **context):
    if _wants_json():
        message = context.get("message") or context.get("title", "Error")
        return {"error": message, "status": status, "request_id": request_id()}, status
    return render_template(template, status=status, request_id=request_id(), **context), status


def is_outage(error: DBAPIError) -> bool:
    """The database is away or broke the connection, as opposed to refusing this statement."""
    return isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated


def init_app(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(_error):
        return _render(404, "errors/404.html", title="Page not found")

    @app.errorhandler(CSRFError)
    def csrf_failed(_error):
        return _render(
            400,
            title="This form has expired",
            message="For your security the form timed out. Please go back, reload the page "
            "and try again. Nothing was booked.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = _render(error.code or 500, title=error.name, message=error.description)
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            body, status = response
            return body, status, {"Allow": ", ".join(error.valid_methods)}
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def database_unavailable(error):
        if not is_outage(error):
            # Bad data or a bug (DataError, IntegrityError...): not "try again later".
            db.session.rollback()
            return internal_error(error)
        log.error("database unavailable (request %s): %s", request_id(), type(error).__name__)
        db.session.rollback()
        body, status = _render(503, "errors/503.html", title="We can't take bookings right now")
        return body, status, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}

    @app.errorhandler(Exception)
    def internal_error(error):
        if isinstance(error, HTTPException):
            return http_error(error)
        log.exception("unhandled error (request %s)", request_id())
        return _render(500, "errors/500.html", title="Something went wrong")
