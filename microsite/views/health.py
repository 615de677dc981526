"""Liveness and readiness for the process manager and load balancer."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive; says nothing about the database."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready to serve bookings: the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "database": "unreachable"}, 503, {"Retry-After": "30"}
    from ..services.outbox import health_summary

    # Email is not a readiness condition (bookings never wait for it); it is reported here so
    # monitoring sees a stuck or failing outbox.
    return {"status": "ok", "database": "ok", "outbox": health_summary()}
