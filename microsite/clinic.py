"""The clinic's facts from config that code needs: its time zone and its address."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app


def clinic_timezone() -> ZoneInfo:
    return ZoneInfo(current_app.config["CLINIC_TIMEZONE"])


def to_local(instant: datetime) -> datetime:
    """An aware instant as the clinic's wall-clock time."""
    return instant.astimezone(clinic_timezone())


def postal_address() -> str:
    config = current_app.config
    keys = ("CLINIC_STREET", "CLINIC_CITY", "CLINIC_REGION", "CLINIC_POSTCODE")
    return ", ".join(config[key] for key in keys)
