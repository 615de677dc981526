"""Render-once HTML for pages every visitor sees alike; each response still gets its own nonce.

A page is rendered with a placeholder where the CSP nonce goes, kept split at that placeholder,
and joined with this response's nonce on every request, so the nonce in the page always matches
the one in the Content-Security-Policy header. Headers (CSP, Cache-Control ...) are not cached:
every response still passes through `security.set_security_headers`.

Only pages that read nothing of the visitor's may be shared. A render that reads the session
(a CSRF token, a flashed message, a confirmed booking) or makes a CSRF token is served to its
own visitor and never stored, so no token or patient data can reach a second client. Views
choose what goes into the key; the script root and path are always part of it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from cachetools import LRUCache
from flask import Flask, current_app, g, request
from flask.globals import request_ctx
from flask.sessions import SessionMixin

from . import fast_path
from .security import csp_nonce

MAX_PAGES = 256
_EXTENSION_KEY = "page_cache"
# Unguessable, so no copy or query parameter can smuggle a nonce slot into a shared page.
NONCE_PLACEHOLDER = f"nonce-slot-{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class SharedPage:
    """A rendered page split where the nonce goes."""

    parts: tuple[str, ...]

    def html(self, nonce: str) -> str:
        return nonce.join(self.parts)


class PageStore(Protocol):
    def get(self, key: Hashable) -> SharedPage | None: ...

    def put(self, key: Hashable, page: SharedPage) -> None: ...


class LastingStore:
    """Pages whose key names everything they depend on (content versions): no expiry needed."""

    def __init__(self, maxsize: int = MAX_PAGES) -> None:
        self._lock = threading.Lock()
        self._pages: LRUCache = LRUCache(maxsize=maxsize)

    def get(self, key: Hashable) -> SharedPage | None:
        with self._lock:
            return self._pages.get(key)

    def put(self, key: Hashable, page: SharedPage) -> None:
        with self._lock:
            self._pages[key] = page


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION_KEY] = LastingStore()


def enabled(app: Flask) -> bool:
    """Off when PAGE_CACHE is false, and in debug mode, where templates change under our feet."""
    config = app.config
    return bool(config["PAGE_CACHE"]) and not (app.debug or config["TEMPLATES_AUTO_RELOAD"])


def shared_html(key: Hashable, render: Callable[[], str], store: PageStore | None = None) -> str:
    """This response's HTML of a page everyone sees alike, rendered once per key.

    `render` is called only on a miss (or when caching is off), so the view's data gathering
    belongs inside it. `store` defaults to the app's lasting store; pass a short-lived one for
    pages built from data that changes (free times).
    """
    app = current_app._get_current_object()  # one proxy look-up: this runs on every hit
    if not enabled(app):
        return render()
    store = store if store is not None else app.extensions[_EXTENSION_KEY]
    full_key = (request.script_root, request.path, key)
    page = store.get(full_key)
    if page is None:
        page, shareable = render_shared(render)
        if not shareable:
            return page.html(csp_nonce())
        store.put(full_key, page)
    # Only a page that read nothing of the visitor's: fast_path may answer the next request.
    fast_path.mark_shareable()
    return page.html(csp_nonce())


def _unproxied_session() -> SessionMixin:
    """This request's session object without touching it.

    Reading `flask.session` itself marks the session accessed (Flask 3.1), which would make
    every page look personal; the request context keeps the object it opened. The tests on
    shared pages with a CSRF token or a session read fail if this stops telling the truth.
    """
    return request_ctx._session  # noqa: SLF001 - see the docstring


def render_shared(render: Callable[[], str]) -> tuple[SharedPage, bool]:
    """Render with the nonce placeholder; say whether the render read anything personal."""
    own_nonce = g.pop("csp_nonce", None)
    visitor_session = _unproxied_session()
    accessed_before = visitor_session.accessed
    visitor_session.accessed = False
    g.csp_nonce = NONCE_PLACEHOLDER
    try:
        html = render()
    finally:
        g.pop("csp_nonce", None)
        if own_nonce is not None:
            g.csp_nonce = own_nonce
        csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        personal = visitor_session.accessed or csrf_field in g
        visitor_session.accessed = accessed_before or visitor_session.accessed
    return SharedPage(tuple(html.split(NONCE_PLACEHOLDER))), not personal
