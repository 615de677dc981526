"""Bluewater Psychiatry's booking microsite: the app factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS, apply_environment, check_secret_key, default_trusted_hosts
from .database import configure_engine, engine_options
from .extensions import csrf, db, migrate


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults -> instance/config.py -> MICROSITE_* env (or a test's mapping)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("MICROSITE")
        apply_environment(app.config)  # text settings verbatim, yes/no strictly
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
        path = os.path.join(app.instance_path, "microsite.sqlite3")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    check_secret_key(app.config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A SQLite file never drops a pooled connection: a ping before each checkout would
        # be one more statement on every request that reads the database, for nothing.
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "pool_pre_ping": False}
    if app.config.get("TRUSTED_HOSTS") is None:
        app.config["TRUSTED_HOSTS"] = default_trusted_hosts(app.config["SITE_URL"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    from . import fast_path, logs

    # Before ProxyFix wraps the app, so the fast path sees the scheme and Host ProxyFix fixed;
    # its after_request hook, registered first, runs last and sees the final response.
    fast_path.init_app(app)
    _trust_configured_proxies(app)
    logs.init_app(app)  # next: its after_request hook runs just before, seeing the final status
    db.init_app(app)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    with app.app_context():
        configure_engine(db.engine, app.config)

    from . import (
        caching,
        cli,
        deadline,
        errors,
        models,  # noqa: F401 - importing it registers the tables
        page_cache,
        ratelimits,
        security,
        slashes,
        templating,
    )
    from .views import api, booking, feeds, health, manage, pages, staff

    caching.init_app(app)
    deadline.init_app(app)
    page_cache.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    ratelimits.init_app(app)
    slashes.init_app(app)
    cli.init_app(app)
    for blueprint in (pages.bp, booking.bp, api.bp, health.bp, manage.bp, feeds.bp, staff.bp):
        app.register_blueprint(blueprint)
    return app


def _trust_configured_proxies(app: Flask) -> None:
    """ProxyFix only for the proxies the operator names; otherwise forwarded headers are ignored.

    Behind a proxy that says the request was HTTPS, the session cookie is Secure and named with
    the `__Host-` prefix (Secure, Path=/, no Domain: no sibling host can set or read it).
    """
    trusted = {
        header: int(app.config.get(f"PROXY_FIX_X_{header.upper()}") or 0)
        for header in ("for", "proto", "host")
    }
    if any(trusted.values()):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=trusted["for"], x_proto=trusted["proto"], x_host=trusted["host"]
        )
    if trusted["proto"]:
        app.config["SESSION_COOKIE_SECURE"] = True
    if (
        app.config.get("SESSION_COOKIE_SECURE")
        and app.config.get("SESSION_COOKIE_NAME") == "session"
        and not app.config.get("SESSION_COOKIE_DOMAIN")
    ):
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"
