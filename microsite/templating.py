"""Template helpers: the one UTC -> clinic-local filter, and the clinic's facts for every page."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app


def clinic_timezone() -> ZoneInfo:
    return ZoneInfo(current_app.config["CLINIC_TIMEZONE"])


def to_local(value: datetime) -> datetime:
    """An aware instant as the clinic's wall-clock time."""
    return value.astimezone(clinic_timezone())


def format_local(value: datetime, style: str = "datetime") -> str:
    """Format an aware UTC instant in the clinic's zone, the zone always named.

    Styles: "datetime" (Monday, November 30, 2026 at 9:30 AM EST), "date" (Monday, November 30),
    "time" (9:30 AM), "time_zone" (9:30 AM EST).
    """
    local = to_local(value)
    clock_time = local.strftime("%I:%M %p").lstrip("0")
    if style == "time":
        return clock_time
    if style == "time_zone":
        return f"{clock_time} {local.tzname()}"
    day = f"{local.strftime('%A, %B')} {local.day}"
    if style == "date":
        return day
    return f"{day}, {local.year} at {clock_time} {local.tzname()}"


def init_app(app: Flask) -> None:
    app.add_template_filter(format_local, "localtime")

    @app.context_processor
    def clinic_facts() -> dict:
        config = app.config
        return {
            "clinic": {
                "name": config["CLINIC_NAME"],
                "street": config["CLINIC_STREET"],
                "city": config["CLINIC_CITY"],
                "region": config["CLINIC_REGION"],
                "postcode": config["CLINIC_POSTCODE"],
                "country": config["CLINIC_COUNTRY"],
                "phone": config["CLINIC_PHONE"],
                "phone_href": "tel:"
                + "".join(c for c in config["CLINIC_PHONE"] if c in "+0123456789"),
                "email": config["CLINIC_EMAIL"],
                "timezone": config["CLINIC_TIMEZONE"],
            },
            "site_url": config["SITE_URL"].rstrip("/"),
        }
