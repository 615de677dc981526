"""README's settings tables and cron lines say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from microsite.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SETTINGS_HEADER = "| setting | default | notes |"
ENV_FILE = "/etc/bluewater/env"  # what docs/deploy.md's systemd units load (EnvironmentFile=)


def settings_rows() -> list[tuple[list[str], str]]:
    """(setting names, default cell) of every row of README's settings tables."""
    rows = []
    lines = README.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != SETTINGS_HEADER:
            continue
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            names_cell, default_cell = row.split("|")[1:3]
            names = re.findall(r"`([A-Z][A-Z0-9_]+)`", names_cell)
            rows.append((names, default_cell.strip()))
    return rows


def test_each_setting_has_one_row():
    seen: dict[str, int] = {}
    for names, _default in settings_rows():
        for name in names:
            seen[name] = seen.get(name, 0) + 1
    assert {name: count for name, count in seen.items() if count > 1} == {}
    assert {"OUTBOX_STUCK_AFTER_SECONDS", "SQLITE_BUSY_TIMEOUT_MS", "SLOT_CACHE_SECONDS"} <= set(
        seen
    )
    mail = {key for key in DEFAULTS if key.startswith("MAIL_")}
    assert mail - set(seen) == set(), "mail settings missing from README"


def test_the_defaults_shown_are_the_code_defaults():
    checked = 0
    for names, default in settings_rows():
        shown = re.fullmatch(r"`(\d+|True|False)`", default)
        if len(names) != 1 or not shown:
            continue
        value = {"True": True, "False": False}.get(shown.group(1))
        value = int(shown.group(1)) if value is None else value
        assert DEFAULTS[names[0]] == value, names[0]
        checked += 1
    assert checked >= 20


def cron_lines(text: str) -> list[str]:
    blocks = re.findall(r"```cron\n(.*?)```", text, re.DOTALL)
    return [
        line
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.startswith("#") and "flask" in line
    ]


def test_every_cron_line_loads_the_settings_the_service_uses():
    lines = cron_lines(README) + cron_lines((ROOT / "docs" / "deploy.md").read_text())
    assert any("outbox send" in line for line in lines)
    assert any("reminders send" in line for line in lines)
    for line in lines:
        before_flask = line[: line.index(".venv/bin/flask")]
        assert f"set -a && . {ENV_FILE} && set +a" in before_flask, line
