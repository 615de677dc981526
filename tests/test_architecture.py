"""The dependency rules of ARCHITECTURE.md, read from the source's AST: leaves stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MICROSITE = Path(__file__).resolve().parent.parent / "microsite"

# Pure modules: given data and `now`, they return data. Anything web- or database-shaped in
# them would make them untestable without an app and let rules drift apart.
LEAVES = ("scheduling.py", "ics.py", "mail.py", "mail_transport.py", "clock.py", "inputs.py")
FORBIDDEN_TOP_LEVEL = {"flask", "sqlalchemy", "werkzeug", "microsite"}

# The one seam that may read the time; everything else gets `now` from it so tests can freeze it.
CLOCK = MICROSITE / "clock.py"
CLOCK_READS = {"now", "utcnow", "today"}


def forbidden_imports(source: str) -> list[str]:
    """Imports a leaf must not have, as 'line N: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import from a module directly in microsite/ is a microsite module.
            names = ["." * node.level + (node.module or "")] if node.level else [node.module or ""]
        elif isinstance(node, ast.Call) and _dotted(node.func) in {
            "__import__",
            "importlib.import_module",
            "import_module",
        }:
            # A dynamic import would hide a dependency from this test.
            found.append(f"line {node.lineno}: dynamic import")
            continue
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name.startswith(".") or top in FORBIDDEN_TOP_LEVEL or top.startswith("flask_"):
                found.append(f"line {node.lineno}: imports {name}")
    return found


def clock_reads(source: str) -> list[str]:
    """Uses of datetime.now / utcnow / today and date.today, called or passed as a callable."""
    module_aliases, class_aliases = {"datetime"}, {"datetime", "date"}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            module_aliases |= {a.asname or a.name for a in node.names if a.name == "datetime"}
        elif isinstance(node, ast.ImportFrom) and node.module == "datetime":
            class_aliases |= {
                a.asname or a.name for a in node.names if a.name in {"datetime", "date"}
            }
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in CLOCK_READS):
            continue
        owner = node.value
        # `datetime.now` / `dt.now` (class imported, maybe renamed) or `datetime.datetime.now`.
        if (isinstance(owner, ast.Name) and owner.id in class_aliases) or (
            isinstance(owner, ast.Attribute)
            and owner.attr in {"datetime", "date"}
            and isinstance(owner.value, ast.Name)
            and owner.value.id in module_aliases
        ):
            found.append(f"line {node.lineno}: {_dotted(node)}")
    return found


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_imports_no_web_database_or_app_module(leaf):
    path = MICROSITE / leaf
    # A missing leaf is a failure, not a skip: the rule would otherwise pass by accident.
    assert path.is_file(), f"microsite/{leaf} is a leaf module and must exist"
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


def test_only_the_clock_reads_the_time():
    offenders = [
        f"{path.relative_to(MICROSITE.parent)} {read}"
        for path in sorted(MICROSITE.rglob("*.py"))
        if path != CLOCK
        for read in clock_reads(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use microsite.clock.now() instead"


def test_the_clock_is_where_the_time_is_read():
    assert clock_reads(CLOCK.read_text(encoding="utf-8")), "clock.now() should read the time"


# The detectors themselves: a check that finds nothing because it is broken is worse than none.


@pytest.mark.parametrize(
    "source",
    [
        "from flask import g",
        "import flask",
        "import flask_wtf.csrf",
        "from flask_sqlalchemy import SQLAlchemy",
        "import sqlalchemy.orm as orm",
        "from sqlalchemy.exc import IntegrityError",
        "from werkzeug.exceptions import NotFound",
        "import microsite.models",
        "from microsite import clock",
        "from . import clock",
        "from .models import Booking",
        "from ..extensions import db",
        "def f():\n    from microsite.models import Booking",
        "if TYPE_CHECKING:\n    from .models import Booking",
        "importlib.import_module('flask')",
        "__import__('sqlalchemy')",
    ],
)
def test_forbidden_imports_are_found(source):
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import icalendar",
        "from zoneinfo import ZoneInfo",
        "from datetime import UTC, datetime",
        "from collections.abc import Sequence",
        "import flasky",  # only flask itself and flask_* extensions are web code
    ],
)
def test_allowed_imports_pass(source):
    assert forbidden_imports(source) == []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime\ndatetime.now(UTC)",
        "from datetime import datetime\ndatetime.utcnow()",
        "from datetime import datetime\ndatetime.today()",
        "from datetime import date\ndate.today()",
        "import datetime\ndatetime.datetime.now()",
        "import datetime as dt\ndt.date.today()",
        "from datetime import datetime as DT\nDT.now()",
        "from datetime import datetime\nColumn(default=datetime.now)",
    ],
)
def test_clock_reads_are_found(source):
    assert clock_reads(source)


@pytest.mark.parametrize(
    "source",
    [
        "from microsite import clock\nclock.now()",
        "from . import clock\nColumn(default=lambda: clock.now())",
        "from sqlalchemy import func\nfunc.now()",
        "from datetime import datetime\ndatetime.fromisoformat(s)",
    ],
)
def test_other_now_calls_pass(source):
    assert clock_reads(source) == []
