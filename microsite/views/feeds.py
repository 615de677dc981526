"""Staff calendar feeds: `GET /feeds/<token>.ics`, answered 304 without building when unchanged.

The token is the only credential, so an unknown or revoked one is a plain 404 (nothing says
whether it ever existed). Calendar clients poll: the validators make most polls one small query.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.http import http_date, is_resource_modified

from .. import clock, fast_path
from ..caching import availability_cache
from ..services import feeds

bp = Blueprint("feeds", __name__)


@bp.get("/feeds/<token>.ics")
def feed(token: str):
    # Before the query: a revoke, booking or cancellation here from now on outdates the answer.
    fast_path.limit(clock.now().timestamp() + _validator_seconds(), fast_path.feeds_generation())
    fast_path.limit(float("inf"), availability_cache())
    state = feeds.feed_state(token)
    if state is None:
        abort(404)
    headers = {
        "ETag": state.etag,
        "Last-Modified": http_date(state.last_modified),
        # private: no shared cache may keep a clinic's schedule; no-cache: a client may keep
        # its copy but asks each time, which the validators make cheap.
        "Cache-Control": "private, no-cache",
        # The URL is the secret: never sent onwards, never indexed.
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
    }
    # RFC 9110 rules: If-None-Match wins over If-Modified-Since when both are sent.
    if not is_resource_modified(
        request.environ, etag=state.etag.strip('"'), last_modified=state.last_modified
    ):
        # For a few seconds the same validators get this 304 without the database (fast_path):
        # a revoke here ends that at once, elsewhere within FEED_VALIDATOR_SECONDS.
        fast_path.mark_shareable(validators=(state.etag.strip('"'), state.last_modified))
        return Response(status=304, headers=headers)
    body = feeds.build_feed_calendar(state)
    return Response(body, content_type="text/calendar; charset=utf-8", headers=headers)


def _validator_seconds() -> float:
    return float(current_app.config["FEED_VALIDATOR_SECONDS"])
