"""`flask content check`: every placeholder still on the site, with its file and line.

Placeholders are text and facts the clinic has not supplied yet: `!!! placeholder` blocks in the
content Markdown, placeholder boxes in templates (the confirmation page's "what to bring"), and
settings still at their demo values (the address, phone and email the site ships with). The
command exits 1 while any remain, so a deploy script can refuse to go live with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask, current_app

from ..config import DEFAULTS

# The clinic's facts that ship with demo values; each must be replaced before going live.
# (The clinic's name is its own; the rest are stand-ins.)
DEMO_SETTINGS = (
    "SITE_URL",
    "CLINIC_STREET",
    "CLINIC_CITY",
    "CLINIC_REGION",
    "CLINIC_POSTCODE",
    "CLINIC_PHONE",
    "CLINIC_EMAIL",
    "CLINIC_BOOKING_MAILBOX",
    "CLINIC_DOMAIN",
)
MARKDOWN_PLACEHOLDER_RE = re.compile(r"^\s*!!!\s+placeholder\b", re.IGNORECASE)
TEMPLATE_PLACEHOLDER_RE = re.compile(r'class="[^"]*\badmonition placeholder\b')
# Reserved names that can never be a real clinic's (RFC 2606 domains, 555-01xx phone numbers).
RESERVED_VALUE_RE = re.compile(r"\.example\b|(?:\D|^)555\D?01\d\d\b")


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the project root
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def markdown_placeholders(folder: Path, root: Path) -> list[Finding]:
    """Each `!!! placeholder` block, shown with the first line of its text."""
    findings = []
    for path in sorted(folder.glob("*.md")):
        if path.name == "README.md":  # the editing guide shows the syntax, it is not a page
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if MARKDOWN_PLACEHOLDER_RE.match(line):
                following = next((s.strip() for s in lines[number:] if s.strip()), "")
                findings.append(Finding(_relative(path, root), number, following))
    return findings


def template_placeholders(folder: Path, root: Path) -> list[Finding]:
    """Placeholder boxes written into templates, shown with the line that opens them."""
    findings = []
    for path in sorted(folder.rglob("*.html")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if TEMPLATE_PLACEHOLDER_RE.search(line):
                # The box's words: on its own line, or on the lines that follow it.
                words = (_text_of(s) for s in lines[number - 1 : number + 3])
                text = next((w for w in words if w), "placeholder box")
                findings.append(Finding(_relative(path, root), number, text))
    return findings


def demo_settings(config: Mapping[str, object], config_file: Path, root: Path) -> list[Finding]:
    """Clinic settings still at the shipped demo value, or naming a reserved example."""
    lines = config_file.read_text(encoding="utf-8").splitlines()
    findings = []
    for key in DEMO_SETTINGS:
        value = str(config.get(key, ""))
        if value != str(DEFAULTS.get(key)) and not RESERVED_VALUE_RE.search(value):
            continue
        number = next((i for i, line in enumerate(lines, 1) if f'"{key}":' in line), 1)
        findings.append(
            Finding(
                _relative(config_file, root),
                number,
                f"{key} = {value!r} is a demo value; set the clinic's own "
                f"(instance/config.py or MICROSITE_{key})",
            )
        )
    return findings


def find_placeholders(app: Flask) -> list[Finding]:
    package = Path(app.root_path)
    root = package.parent
    return [
        *markdown_placeholders(package / "content", root),
        *template_placeholders(package / "templates", root),
        *demo_settings(app.config, package / "config.py", root),
    ]


def _text_of(html_line: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html_line).split())


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _report(findings: Iterable[Finding]) -> int:
    findings = list(findings)
    for finding in findings:
        click.echo(str(finding))
    if findings:
        left = f"{len(findings)} placeholder(s) left: replace them before going live."
        click.echo(left, err=True)
        return 1
    click.echo("No placeholders left.")
    return 0


def register(app: Flask) -> None:
    @app.cli.group("content", help="Check the site's copy before going live.")
    def content_group() -> None:
        pass

    @content_group.command("check")
    def check_command() -> None:
        """List every placeholder still on the site; exit 1 while any remain."""
        raise SystemExit(_report(find_placeholders(current_app)))
