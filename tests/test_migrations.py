"""Migrations build the whole schema from nothing, tear it down, and build it again."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect
from tests_support import throwaway_database

from microsite import create_app
from microsite.extensions import db


def test_upgrade_downgrade_upgrade_on_this_database(database_url):
    with throwaway_database(database_url) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            tables = set(inspect(db.engine).get_table_names())
            assert {"booking", "clinician", "closure", "consultation_type"} <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            assert "booking" in inspect(db.engine).get_table_names()
            db.engine.dispose()


def test_models_and_migrations_agree(database_url):
    """Autogenerate against the migrated database finds nothing to add: no forgotten migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with throwaway_database(database_url) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            with db.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                differences = compare_metadata(context, db.metadata)
            db.engine.dispose()
    assert differences == []
