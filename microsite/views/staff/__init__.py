"""The staff console under /staff/: one parent blueprint whose guard covers every child.

Each area is a child blueprint in its own module; registering it here puts it behind the
guard in `access` (sign-in, second factor, role), so no route can forget it.
"""

from __future__ import annotations

from flask import Blueprint

from ... import clock
from ...clinic import clinic_timezone
from . import (
    access,
    accounts,
    actions,
    audit,
    auth,
    bookings,
    calendar,
    exports,
    feeds,
    outbox,
    schedule,
)

bp = Blueprint("staff", __name__, url_prefix="/staff")
bp.before_request(access.guard)


@bp.context_processor
def staff_helpers() -> dict:
    return {"today_iso": lambda: clock.now().astimezone(clinic_timezone()).date().isoformat()}


for child in (auth.bp, calendar.bp, bookings.bp, exports.bp, audit.bp, schedule.bp, accounts.bp):
    bp.register_blueprint(child)
# The console's booking actions, outbox and feed links (each its own module).
for child in (actions.bp, outbox.bp, feeds.bp):
    bp.register_blueprint(child)
