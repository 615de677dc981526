"""Flask extensions, created unbound; the app factory binds them."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Predictable constraint names, so Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
migrate = Migrate(render_as_batch=True)  # batch mode: SQLite cannot ALTER most things in place
# Counts per client address as the WSGI server saw it: X-Forwarded-For is trusted only when
# ProxyFix is configured for a known proxy, so a spoofed header cannot escape a limit.
# Settings (RATELIMIT_ENABLED, RATELIMIT_STORAGE_URI) are read from the app config.
limiter = Limiter(key_func=get_remote_address)
