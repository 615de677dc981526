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


def test_environment_numbers_and_switches_are_parsed_as_json(instance_dir, monkeypatch):
    monkeypatch.setenv("MICROSITE_SECRET_KEY", "from-env")
    monkeypatch.setenv("MICROSITE_BOOKING_MIN_FILL_SECONDS", "5")
    monkeypatch.setenv("MICROSITE_MAIL_USE_TLS", "true")
    monkeypatch.setenv("MICROSITE_TRUSTED_HOSTS", '["a.example", "b.example"]')
    app = create_app()
    assert app.config["BOOKING_MIN_FILL_SECONDS"] == 5
    assert app.config["MAIL_USE_TLS"] is True
    assert app.config["TRUSTED_HOSTS"] == ["a.example", "b.example"]
    assert app.config["SECRET_KEY"] == "from-env"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SECRET_KEY", "1234567890123456789012345678901234567890"),
        ("MAIL_PASSWORD", "123e4"),
        ("MAIL_PASSWORD", "true"),
        ("MAIL_USERNAME", "007"),
        ("MAIL_SERVER", "null"),
        ("CLINIC_BOOKING_MAILBOX", '"quoted"@example.org'),
        ("CLINIC_POSTCODE", "04101"),
        ("CLINIC_PHONE", "12075550142"),
        ("SQLALCHEMY_DATABASE_URI", "sqlite:////tmp/x.sqlite3"),
        ("SITE_URL", "https://1e3.example"),
    ],
)
def test_text_settings_from_the_environment_are_taken_verbatim(
    instance_dir, monkeypatch, key, value
):
    monkeypatch.setenv("MICROSITE_SECRET_KEY", "from-env")
    monkeypatch.setenv(f"MICROSITE_{key}", value)
    app = create_app()
    assert app.config[key] == value


def test_every_text_default_is_read_verbatim():
    from flask import Config

    from microsite.config import DEFAULTS, apply_environment

    text_keys = [key for key, default in DEFAULTS.items() if isinstance(default, str)]
    assert {"SECRET_KEY", "MAIL_PASSWORD", "MAIL_USERNAME", "MAIL_SERVER"} <= set(text_keys)
    environ = {f"MICROSITE_{key}": "1e3" for key in text_keys}
    config = Config(".")
    config.from_mapping({key: 1000.0 for key in text_keys})  # what JSON made of "1e3"
    apply_environment(config, environ)
    assert {key: config[key] for key in text_keys} == dict.fromkeys(text_keys, "1e3")


@pytest.mark.parametrize("value", ["False", "0", "no", ""])
def test_a_switch_that_is_not_json_true_or_false_is_refused(instance_dir, monkeypatch, value):
    # Flask would keep "False" as a string, which is truthy: STARTTLS "off" would be on.
    monkeypatch.setenv("MICROSITE_SECRET_KEY", "from-env")
    monkeypatch.setenv("MICROSITE_MAIL_USE_TLS", value)
    with pytest.raises(ConfigError, match="MICROSITE_MAIL_USE_TLS must be true or false"):
        create_app()


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
