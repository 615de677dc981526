"""One URL per page: `/faq/` and `/book` redirect to `/faq` and `/book/` with a relative Location.

Werkzeug already redirects a missing or extra slash when the rule allows it, but builds the
Location from the Host header; this answers with a relative Location instead, and adds the
case Werkzeug leaves as a 404: an extra slash after a page whose rule has none.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, redirect, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect


def _relative(path: str) -> str:
    # "//host" would be read as another site; a page path never starts so (slashes merge).
    path = "/" + path.lstrip("/")
    query = request.query_string.decode("latin-1")
    return request.script_root + path + (f"?{query}" if query else "")


def _page_without_slash() -> str | None:
    """`/faq` when `/faq/` is unknown but `/faq` answers GET; else None."""
    path = request.path
    if not path.endswith("/") or path == "/":
        return None
    stripped = path.rstrip("/")
    try:
        # A throwaway adapter: matching needs a server name, the answer never carries it.
        current_app.url_map.bind("localhost").match(stripped, method="GET")
    except (NotFound, MethodNotAllowed, RequestRedirect):
        return None
    return stripped


def init_app(app: Flask) -> None:
    @app.before_request
    def relative_slash_redirects():
        routing = request.routing_exception
        if isinstance(routing, RequestRedirect):
            # Only the path of Werkzeug's absolute URL is kept: the host is the client's word.
            return redirect(_relative(urlsplit(routing.new_url).path), code=308)
        if isinstance(routing, NotFound) and request.method in {"GET", "HEAD"}:
            target = _page_without_slash()
            if target is not None:
                return redirect(_relative(target), code=308)
        return None
