"""Flask commands (`flask --app microsite ...`), one module per area.

Each module has `register(app)`; add a new area as a module here and list it below.
"""

from __future__ import annotations

from flask import Flask

from . import backup, content, demo, feeds, outbox, retention, staff


def init_app(app: Flask) -> None:
    for module in (demo, outbox, feeds, backup, staff, retention, content):
        module.register(app)
