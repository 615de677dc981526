"""Response headers: a per-response CSP nonce, no third-party origins, private pages uncached."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, request
from werkzeug.exceptions import SecurityError

# Blueprints whose pages show a patient's own booking: never stored by browsers or proxies.
PRIVATE_ENDPOINT_PREFIXES = ("booking.",)
# Every staff response, redirects and errors included (the endpoint may be unknown there).
PRIVATE_PATH_PREFIXES = ("/staff/",)


def csp_nonce() -> str:
    """The nonce for this response's inline <script> tags (there should be almost none)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _content_security_policy() -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{csp_nonce()}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


# Responses that are not pages (JSON, calendar files) may load nothing at all.
NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'"


def set_security_headers(response: Response) -> Response:
    is_html = response.mimetype == "text/html"
    policy = _content_security_policy() if is_html else NON_HTML_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: Flask-WTF's HTTPS referrer check needs it on POSTs.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=63072000")
    endpoint = request.endpoint or ""
    if (
        endpoint.startswith(PRIVATE_ENDPOINT_PREFIXES)
        or request.path.startswith(PRIVATE_PATH_PREFIXES)
        or request.method != "GET"
    ):
        response.headers["Cache-Control"] = "no-store"
    return response


def relative_location(response: Response) -> Response:
    """Redirects never name the request's Host: an absolute Location to it becomes a path.

    Werkzeug builds its own redirects (e.g. /book -> /book/) from the Host header; a forged
    Host would otherwise send patients elsewhere. Unknown hosts are refused (TRUSTED_HOSTS)
    before this; this keeps even trusted aliases from leaking into links.
    """
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host:
            path = parts.path or "/"
            response.headers["Location"] = urlunsplit(("", "", path, parts.query, parts.fragment))
    return response


def _refuse_unknown_host() -> None:
    """Before anything else looks at the request (CSRF, limits): an unknown Host is a 400."""
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception


def _unknown_host(_error: SecurityError):
    # Plain text: with an untrusted Host no URL can be built, so no page template can render.
    return "Bad request: unknown host.\n", 400, {"Content-Type": "text/plain; charset=utf-8"}


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_unknown_host)
    app.register_error_handler(SecurityError, _unknown_host)
    app.after_request(set_security_headers)
    app.after_request(relative_location)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
