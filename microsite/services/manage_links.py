"""Patients' manage links: a fresh random token per email, only its SHA-256 stored."""

from __future__ import annotations

import hashlib
import re
import secrets

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Booking, ManageLink

# 32 random bytes (256 bits) as URL-safe base64: 43 characters.
TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def token_hash(token: str) -> str:
    # A plain hash suffices: the token is 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def issue_link(booking_id: int) -> str:
    """A new token for the booking, added to the caller's transaction; the only plain copy."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.session.add(ManageLink(booking_id=booking_id, token_hash=token_hash(token)))
    return token


def manage_url(token: str) -> str:
    return f"{current_app.config['SITE_URL'].rstrip('/')}/manage/{token}"


def booking_for_token(token: str) -> Booking | None:
    """The booking a token opens, or None for anything we did not issue (tampered, unknown)."""
    if not _TOKEN_SHAPE.fullmatch(token or ""):
        return None
    query = (
        select(Booking)
        .join(ManageLink, ManageLink.booking_id == Booking.id)
        .where(ManageLink.token_hash == token_hash(token))
    )
    return db.session.scalars(query).first()
