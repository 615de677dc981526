"""Bluewater Psychiatry's booking microsite: the app factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from .config import DEFAULTS, check_secret_key
from .database import configure_engine
from .extensions import csrf, db, migrate


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults -> instance/config.py -> MICROSITE_* env (or a test's mapping)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("MICROSITE")
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, exist_ok=True)
        path = os.path.join(app.instance_path, "microsite.sqlite3")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    check_secret_key(app.config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A SQLite file never drops a pooled connection: a ping before each checkout would
        # be one more statement on every request that reads the database, for nothing.
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "pool_pre_ping": False}

    db.init_app(app)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])

    from . import (
        caching,
        cli,
        errors,
        models,  # noqa: F401 - importing it registers the tables
        page_cache,
        security,
        templating,
    )
    from .views import api, booking, health, pages

    caching.init_app(app)
    page_cache.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    for blueprint in (pages.bp, booking.bp, api.bp, health.bp):
        app.register_blueprint(blueprint)
    return app
