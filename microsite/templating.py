"""Template helpers: the one UTC -> clinic-local filter, and the clinic's facts for every page."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from .clinic import to_local


def format_local(value: datetime, style: str = "datetime") -> str:
    """Format an aware UTC instant in the clinic's zone, the zone always named.

    Styles: "datetime" (Monday, November 30, 2026 at 9:30 AM EST), "date" (Monday, November 30),
    "time" (9:30 AM), "time_zone" (9:30 AM EST),
    "date_iso" (2026-11-30, for links).
    """
    return format_wall_clock(to_local(value), style)


def format_wall_clock(local: datetime, style: str = "datetime") -> str:
    """`format_local` for a datetime already in the clinic's zone (saves the conversion)."""
    if style == "date_iso":
        return local.date().isoformat()
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
