"""Answers from memory, in front of Flask, for the requests whose answer is already known.

Flask's own per-request machinery (request context, hooks, session, CSRF, SQLAlchemy teardown,
headers) costs more than a stored page itself. So when Flask has served a response that a view
marked shareable (`mark_shareable`: a stored shared page, a cached `/api/slots` answer, the
first free time's redirect, the sitemap, a feed's 304), this WSGI layer keeps the exact bytes
Flask sent, status and every header, split where the per-response values go (the CSP nonce in
the header and the page, the X-Request-Id header), and answers the next identical request with
them: a fresh nonce, a fresh request id and the same JSON request log line, without entering
Flask.

An entry is served only to a request that could not have been answered differently:
- GET or HEAD (each recorded on its own: Flask's HEAD answers carry `no-store`), with no Cookie
  and no Authorization header (a visitor with a session goes through Flask, which may refresh
  their cookie or show their own booking);
- the same scheme, Host, script root, path and raw query string as the request Flask answered
  (so only a Host Flask accepted, under TRUSTED_HOSTS, can ever hit one);
- before the entry's lifetime ends: the earliest expiry of every cached input the view read
  (`limit`: free-slot and schedule caches, the content check), and never past any of those
  caches being cleared by this process (a booking, a cancellation, a staff edit, a feed revoked);
- for a feed's 304, only when the request's If-None-Match / If-Modified-Since match the
  validators Flask answered, checked by the very same Werkzeug function the view uses.

Nothing is recorded from a response that set a cookie, varies by cookie, read or changed the
session, made a CSRF token, or carries the request id in its body. Off with the page cache
(PAGE_CACHE false, debug mode). Everything else goes to Flask untouched.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from flask.globals import _cv_app, _cv_request, request_ctx
from werkzeug.http import is_resource_modified

from . import clock, logs, page_cache, security
from .errors import INCOMING_REQUEST_ID_RE

_EXTENSION_KEY = "fast_path"
_ENVIRON_KEY = "microsite.fast_path.recording"
MAX_ENTRIES = 512
# A shareable response that read no cache (sitemap, robots) is still looked at again this often.
MAX_LIFETIME_SECONDS = 60.0
# Only these answers are kept: pages, cached API answers (and their cached 400s), feed 304s,
# the first free time's redirect (303).
RECORDABLE_STATUSES = frozenset({200, 303, 304, 400})
_NONCE, _REQUEST_ID = 0, 1  # slots in a header value


class Invalidation(Protocol):
    """Anything a stored answer depends on that this process can clear (a `ShortCache`)."""

    generation: int


class Generation:
    """A counter bumped when what it stands for changes (this process's feed tokens)."""

    def __init__(self) -> None:
        self.generation = 0

    def bump(self) -> None:
        self.generation += 1


# --- what views say, inside Flask -----------------------------------------------------------


def mark_shareable(*, validators: tuple[str, Any] | None = None) -> None:
    """This response is the same for every cookie-less request to this URL (and Host).

    `validators` (a feed's ETag without quotes, and its Last-Modified) makes the stored
    answer conditional: served only to requests whose validators match.
    """
    g.fast_path_mark = validators or True


def limit(
    until: float, depends_on: Invalidation | None = None, generation: int | None = None
) -> None:
    """The answer being built is good until `until` (a `clock.now()` timestamp) at most, and
    only while `depends_on` keeps `generation` (default: its current one), i.e. is not cleared.
    Called by every cache read; a no-op outside a request."""
    if _cv_request.get(None) is None:
        return
    # The context variables directly, not the `g` proxy: every cache read passes here.
    state = _cv_app.get().g
    current = getattr(state, "fast_path_until", None)
    if current is None or until < current:
        state.fast_path_until = until
    if depends_on is not None:
        deps = getattr(state, "fast_path_deps", None)
        if deps is None:
            deps = state.fast_path_deps = {}
        seen = depends_on.generation if generation is None else generation
        previous = deps.get(id(depends_on))
        if previous is None or seen < previous[1]:
            deps[id(depends_on)] = (depends_on, seen)


def feed_tokens_changed() -> None:
    """A feed token was made or revoked here: forget every stored 304 at once."""
    fast = current_app.extensions.get(_EXTENSION_KEY)
    if fast is not None:
        fast.feeds.bump()


def feeds_generation() -> Invalidation | None:
    fast = current_app.extensions.get(_EXTENSION_KEY)
    return None if fast is None else fast.feeds


@dataclass(frozen=True, slots=True)
class _Recording:
    """What Flask knew about a marked response, handed to the WSGI layer in the environ."""

    fresh_until: float
    deps: tuple[tuple[Invalidation, int], ...]
    validators: tuple[str, Any] | None
    nonce: str | None
    request_id: str
    log_path: str
    log_level: int


def _note_shareable(response: Response) -> Response:
    """after_request: pass a marked response's facts to the WSGI layer, if it may be kept."""
    mark = g.pop("fast_path_mark", None)
    if mark is None:
        return response
    until = g.get("fast_path_until")
    if until is not None and until <= 0:
        return response  # built from a cache that is off (limit(0.0)): nothing to keep
    app = current_app._get_current_object()
    environ = request.environ
    if (
        not page_cache.enabled(app)
        or request.method not in ("GET", "HEAD")
        or "HTTP_COOKIE" in environ
        or "HTTP_AUTHORIZATION" in environ
        or response.status_code not in RECORDABLE_STATUSES
        or response.is_streamed
        or app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g
    ):
        return response
    session = request_ctx._session  # noqa: SLF001 - not `flask.session`: reading it marks it
    if session is not None and (session.accessed or session.modified):
        return response
    now = clock.now().timestamp()
    fresh_until = min(until or now + MAX_LIFETIME_SECONDS, now + MAX_LIFETIME_SECONDS)
    if fresh_until <= now:
        return response  # a cache that is off (0 seconds) or an input about to expire
    deps = tuple((g.get("fast_path_deps") or {}).values())
    environ[_ENVIRON_KEY] = _Recording(
        fresh_until=fresh_until,
        deps=deps,
        validators=mark if isinstance(mark, tuple) else None,
        nonce=g.get("csp_nonce"),
        request_id=g.get("request_id") or "",
        log_path=logs.redact_path(request.path, request.view_args),
        log_level=logs.request_log_level(request.path),
    )
    return response


# --- the WSGI layer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    status: str
    status_code: int
    headers: tuple[tuple[str, Any], ...]  # value: a str, or a tuple of str and slot markers
    uses_nonce: bool
    body_parts: tuple[bytes, ...]  # the body split where the nonce goes
    fresh_until: float
    deps: tuple[tuple[Invalidation, int], ...]
    validators: tuple[str, Any] | None
    log_path: str
    log_level: int

    def fresh(self, now: float) -> bool:
        return now < self.fresh_until and all(d.generation == gen for d, gen in self.deps)


def _split_value(value: str, nonce: str | None) -> tuple | None:
    """A header value as text and slots, or None when it holds nothing per response."""
    if not nonce or nonce not in value:
        return None
    pieces: list = []
    for index, text in enumerate(value.split(nonce)):
        if index:
            pieces.append(_NONCE)
        pieces.append(text)
    return tuple(pieces)


def _make_entry(status: str, headers: list[tuple[str, str]], body: bytes, rec: _Recording):
    """The stored form of Flask's answer, or None when it must not be kept."""
    template: list[tuple[str, Any]] = []
    uses_nonce = False
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie" or (lower == "vary" and "cookie" in value.lower()):
            return None
        if lower == "x-request-id":
            if value != rec.request_id:
                return None
            template.append((name, (_REQUEST_ID,)))
            continue
        split = _split_value(value, rec.nonce)
        if split is not None:
            uses_nonce = True
        template.append((name, value if split is None else split))
    if rec.request_id and rec.request_id.encode("latin-1") in body:
        return None  # the page shows its request id (an error page): not the same for all
    parts: tuple[bytes, ...] = (body,)
    if rec.nonce and rec.nonce.encode() in body:
        parts = tuple(body.split(rec.nonce.encode()))
        uses_nonce = True
    if uses_nonce and len(security.new_nonce()) != len(rec.nonce or ""):
        return None  # Content-Length would not hold with another nonce
    return _Entry(
        status=status,
        status_code=int(status.split(" ", 1)[0]),
        headers=tuple(template),
        uses_nonce=uses_nonce,
        body_parts=parts,
        fresh_until=rec.fresh_until,
        deps=rec.deps,
        validators=rec.validators,
        log_path=rec.log_path,
        log_level=rec.log_level,
    )


def _request_id(environ: dict) -> str:
    """As `errors.request_id`: the proxy's id if it looks like one, else a new one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if incoming and INCOMING_REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex[:12]


class FastPath:
    """The WSGI app in front of Flask's `wsgi_app` (and inside ProxyFix, when configured)."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.flask_app = app
        self.app = wsgi_app
        self.feeds = Generation()
        self._entries: dict[tuple, _Entry] = {}
        self._lock = threading.Lock()
        self._logger = logging.getLogger(logs.REQUEST_LOGGER)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        if (method != "GET" and method != "HEAD") or "HTTP_COOKIE" in environ:
            return self.app(environ, start_response)
        key = (
            method,
            environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST"),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
        )
        if key[2] is None or "HTTP_AUTHORIZATION" in environ:
            return self.app(environ, start_response)
        entry = self._entries.get(key)
        if entry is not None and self._servable(entry, environ):
            return self._serve(entry, environ, start_response, started)
        return self._through_flask(key, environ, start_response)

    def _servable(self, entry: _Entry, environ: dict) -> bool:
        if not entry.fresh(clock.now().timestamp()) or not page_cache.enabled(self.flask_app):
            return False
        if entry.validators is not None:
            etag, last_modified = entry.validators
            return not is_resource_modified(environ, etag=etag, last_modified=last_modified)
        return True

    def _serve(self, entry: _Entry, environ: dict, start_response, started: float):
        request_id = _request_id(environ)
        nonce = security.new_nonce() if entry.uses_nonce else ""
        headers = []
        for name, value in entry.headers:
            if value.__class__ is not str:
                value = "".join(
                    nonce if piece == _NONCE else request_id if piece == _REQUEST_ID else piece
                    for piece in value
                )
            headers.append((name, value))
        start_response(entry.status, headers)
        body = nonce.encode().join(entry.body_parts) if entry.uses_nonce else entry.body_parts[0]
        logs.log_request_line(
            self._logger,
            entry.log_level,
            request_id=request_id,
            method=environ["REQUEST_METHOD"],
            path=entry.log_path,
            status=entry.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return [body]

    def _through_flask(self, key: tuple, environ: dict, start_response):
        captured: list = []

        def capture(status, headers, exc_info=None):
            captured[:] = [status, headers]
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        recording = environ.pop(_ENVIRON_KEY, None)
        if recording is None or not captured:
            return result
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        entry = _make_entry(captured[0], list(captured[1]), body, recording)
        if entry is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.pop(next(iter(self._entries)))  # the oldest
                self._entries[key] = entry
        return [body]


def init_app(app: Flask) -> FastPath:
    """Put the layer in front of Flask (call before ProxyFix wraps the app, so it sits inside)."""
    fast = FastPath(app, app.wsgi_app)
    app.wsgi_app = fast  # type: ignore[method-assign]
    app.extensions[_EXTENSION_KEY] = fast
    # Registered before every other hook, so it runs after them all and sees the final response.
    app.after_request(_note_shareable)
    return fast
