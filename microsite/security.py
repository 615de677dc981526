"""Response headers: a per-response CSP nonce, no third-party origins, private pages uncached."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import SecurityError

from .extensions import csrf

# Blueprints whose pages show a patient's own booking: never stored by browsers or proxies.
PRIVATE_ENDPOINT_PREFIXES = ("booking.",)
# Every staff response, redirects and errors included (the endpoint may be unknown there).
PRIVATE_PATH_PREFIXES = ("/staff/",)


def new_nonce() -> str:
    """A fresh nonce (also what `fast_path` puts in a stored page): always 22 characters."""
    return secrets.token_urlsafe(16)


def csp_nonce() -> str:
    """The nonce for this response's inline <script> tags (there should be almost none)."""
    if "csp_nonce" not in g:
        g.csp_nonce = new_nonce()
    return g.csp_nonce


# The page policy around its nonce, joined once at import rather than on every response.
_PAGE_POLICY_HEAD, _PAGE_POLICY_TAIL = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
).split("{nonce}")


def _content_security_policy() -> str:
    return _PAGE_POLICY_HEAD + csp_nonce() + _PAGE_POLICY_TAIL


# Responses that are not pages (JSON, calendar files) may load nothing at all.
NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'"

# Set on every response unless the view set its own.
_FIXED_HEADERS: tuple = (
    ("X-Content-Type-Options", "nosniff"),
    # same-origin, not no-referrer: Flask-WTF's HTTPS referrer check needs it on POSTs.
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_FIXED_HEADERS = tuple((key, key.lower(), value) for key, value in _FIXED_HEADERS)


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    # One pass over the few headers the view set, instead of one scan per header we add.
    present = {key.lower() for key, _ in headers.items()}
    if "content-security-policy" not in present:
        is_html = response.mimetype == "text/html"
        policy = _content_security_policy() if is_html else NON_HTML_POLICY
        headers.add("Content-Security-Policy", policy)
    for key, lower, value in _FIXED_HEADERS:
        if lower not in present:
            headers.add(key, value)
    current = request._get_current_object()  # one proxy look-up, not three
    if current.is_secure and "strict-transport-security" not in present:
        headers.add("Strict-Transport-Security", "max-age=63072000")
    if (
        current.method != "GET"
        or (current.endpoint or "").startswith(PRIVATE_ENDPOINT_PREFIXES)
        or current.path.startswith(PRIVATE_PATH_PREFIXES)
    ):
        headers["Cache-Control"] = "no-store"
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


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per key, not per request.

    Flask builds a new serializer for every request (and test-serialises an empty dict while
    doing so); that was a tenth of a cached page's cost. Same keys, same salt, same cookie.
    """

    def __init__(self) -> None:
        self._serializer: tuple[tuple, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = self._serializer = (keys, super().get_signing_serializer(app))
        return cached[1]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        # Flask works out the cookie's domain, path and flags before looking at the session;
        # an empty, untouched session (every content page) needs none of it: nothing to send.
        if session or session.modified or session.accessed:
            super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_unknown_host)
    app.register_error_handler(SecurityError, _unknown_host)
    app.session_interface = SessionCookies()
    # Flask-WTF's own hook looks up exemptions before the method, on every GET; this one checks
    # the method first, then runs the very same check (exemptions included) on writes.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    write_methods = app.config["WTF_CSRF_METHODS"]

    @app.before_request
    def check_csrf_on_writes() -> None:
        if request.method in write_methods and app.config["WTF_CSRF_ENABLED"]:
            csrf.protect(apply_exemptions=True)

    app.after_request(set_security_headers)
    app.after_request(relative_location)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
