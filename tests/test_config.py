"""Configuration layers: defaults, instance/config.py, MICROSITE_* environment; the secret guard."""

from __future__ import annotations

import pytest

from microsite import create_app
from microsite.config import DEV_SECRET_KEY, ConfigError


@pytest.fixture
def instance_dir(tmp_path, monkeypatch):
    """Point the app at a temporary instance folder."""
    from flask import Flask

    original = Flask.__init__

    def init(self, *args, **kwargs):
        kwargs["instance_path"] = str(tmp_path)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Flask, "__init__", init)
    return tmp_path


def test_defaults_then_instance_file_then_environment(instance_dir, monkeypatch):
    (instance_dir / "config.py").write_text(
        'SECRET_KEY = "from-instance"\n'
        'CLINIC_NAME = "Instance Clinic"\n'
        'CLINIC_PHONE = "+1 555 0100"\n'
    )
    monkeypatch.setenv("MICROSITE_CLINIC_NAME", "Env Clinic")
    app = create_app()
    assert app.config["CLINIC_NAME"] == "Env Clinic"  # env beats the instance file
    assert app.config["CLINIC_PHONE"] == "+1 555 0100"  # instance file beats defaults
    assert app.config["CLINIC_TIMEZONE"] == "America/New_York"  # default
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_dir}/microsite.sqlite3"


def test_environment_values_are_parsed_as_python_literals(instance_dir, monkeypatch):
    monkeypatch.setenv("MICROSITE_SECRET_KEY", "from-env")
    monkeypatch.setenv("MICROSITE_BOOKING_MIN_FILL_SECONDS", "5")
    app = create_app()
    assert app.config["BOOKING_MIN_FILL_SECONDS"] == 5
    assert app.config["SECRET_KEY"] == "from-env"


def test_refuses_to_start_with_the_development_secret(instance_dir, monkeypatch):
    monkeypatch.delenv("MICROSITE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MICROSITE_SECRET_KEY"):
        create_app()


def test_development_secret_is_allowed_in_debug_and_testing(database_url):
    app = create_app({"SECRET_KEY": DEV_SECRET_KEY, "TESTING": True})
    assert app.testing
    debug_app = create_app({"SECRET_KEY": DEV_SECRET_KEY, "DEBUG": True})
    assert debug_app.debug


def test_a_test_mapping_replaces_the_instance_file(instance_dir):
    (instance_dir / "config.py").write_text('CLINIC_NAME = "Instance Clinic"\n')
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    assert app.config["CLINIC_NAME"] == "Bluewater Psychiatry"


def test_clinic_facts_from_config_reach_the_pages(app_config):
    app_config.update(CLINIC_PHONE="+1 207 555 0199", CLINIC_NAME="Harborview Psychiatry")
    page = create_app(app_config).test_client().get("/").get_data(as_text=True)
    assert "+1 207 555 0199" in page
    assert "Harborview Psychiatry" in page
