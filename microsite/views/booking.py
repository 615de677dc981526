"""Patients book a consultation (stub)."""

from flask import Blueprint

bp = Blueprint("booking", __name__, url_prefix="/book")


@bp.get("/")
def start():
    return "booking"
