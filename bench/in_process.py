"""CPU time per request in process, through the WSGI app: fast path, Flask path, bare Flask.

`python -m bench.in_process` builds the demo database (as `bench/pages.py` does), then sends
each URL `REQUESTS` times straight to the WSGI callable, no HTTP and no server, timing CPU
(`time.process_time`) and keeping the best of `RUNS` runs: far steadier than wrk on a shared
machine. Three columns: the whole app (the fast path answers what it knows), Flask's own
`wsgi_app` behind it (what every request cost before the fast path), and a bare Flask "hello
world". The JSON request log line is written to /dev/null, as a server writes it to a file.
Not part of `make bench`; its table is copied into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from werkzeug.test import EnvironBuilder

from bench.bare_app import app as bare_app
from bench.datasets import demo_database
from microsite import create_app
from microsite.views.pages import PAGES
from tests.live_server import CLINIC_TIMEZONE, SECRET_KEY

REQUESTS = 200
RUNS = 7


def _start_response(_status, _headers, _exc_info=None):
    return None


def cpu_ms_per_request(wsgi_app: Callable, environ: dict) -> float:
    """Best of RUNS: CPU milliseconds per request, body consumed as a server would."""
    best = float("inf")
    for _ in range(RUNS):
        began = time.process_time()
        for _ in range(REQUESTS):
            result = wsgi_app(dict(environ), _start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        best = min(best, (time.process_time() - began) / REQUESTS * 1000)
    return best


def environ_for(path: str, **headers: str) -> dict:
    return EnvironBuilder(path=path, base_url="http://127.0.0.1", headers=headers).get_environ()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="microsite-inproc-") as workdir:
        uri = f"sqlite:///{Path(workdir) / 'bench.sqlite3'}"
        demo = demo_database(uri)
        os.environ.pop("MICROSITE_TESTING", None)
        app = create_app(
            {
                "SLOT_CACHE_SECONDS": 2,
                "SECRET_KEY": SECRET_KEY,
                "SQLALCHEMY_DATABASE_URI": uri,
                "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
                "RATELIMIT_ENABLED": False,
                "TRUSTED_HOSTS": ["127.0.0.1", "localhost"],
                "LOG_FORMAT": "json",
            }
        )
        # The request lines go where a server's would, minus the disk.
        root = logging.getLogger()
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
        flask_only = app.extensions["fast_path"].app
        type_id = demo.type_id
        urls = [
            ("home", "/"),
            ("content: faq", "/faq"),
            ("choose a type", "/book/"),
            ("picker, type and week", f"/book/?type={type_id}&week={_monday()}"),
            ("API slots (2 s cache)", f"/api/slots?type={type_id}&days=7"),
            ("sitemap.xml", "/sitemap.xml"),
            ("page not found", "/no-such-page"),
        ]
        bare = cpu_ms_per_request(bare_app, environ_for("/"))
        rows = [("bare Flask `GET /`", "", bare, bare)]
        for label, path in urls:
            environ = environ_for(path)
            app(dict(environ), _start_response)  # let Flask answer (and the fast path record)
            rows.append(
                (
                    label,
                    path,
                    cpu_ms_per_request(app, environ),
                    cpu_ms_per_request(flask_only, environ),
                )
            )
        rows.append(_feed_row(app, flask_only))
        # What the layer costs a request it cannot answer: the whole app against Flask alone.
        nocache = create_app({**app.config, "SLOT_CACHE_SECONDS": 0})
        environ = environ_for(f"/api/slots?type={type_id}&days=7")
        rows.append(
            (
                "API slots, SLOT_CACHE_SECONDS=0 (never fast)",
                f"/api/slots?type={type_id}&days=7",
                cpu_ms_per_request(nocache, environ),
                cpu_ms_per_request(nocache.extensions["fast_path"].app, environ),
            )
        )
        bare_after = cpu_ms_per_request(bare_app, environ_for("/"))
    print(f"bare Flask before/after: {bare:.3f} / {bare_after:.3f} ms")
    print("| request | fast path | Flask path | fast × bare | Flask × bare |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, path, fast, flask in rows:
        name = f"{label} `{path}`" if path else label
        ratios = f"{bare / fast:.2f} | {bare / flask:.2f}"
        print(f"| {name} | {fast:.3f} ms | {flask:.3f} ms | {ratios} |")
    print(f"(pages: {len(PAGES)} content pages share home's code path)", file=sys.stderr)
    return 0


def _feed_row(app, flask_only):
    from microsite.services import feeds

    with app.app_context():
        token = feeds.create_feed(None)
    path = feeds.FEED_PATH.format(token=token)
    headers: list = []

    def keep_headers(_status, response_headers, _exc_info=None):
        headers[:] = response_headers

    for _chunk in app(environ_for(path), keep_headers):
        pass
    etag = dict(headers)["ETag"]
    environ = environ_for(path, **{"If-None-Match": etag})
    app(dict(environ), _start_response)
    return (
        "feed 304 (If-None-Match)",
        "/feeds/….ics",
        cpu_ms_per_request(app, environ),
        cpu_ms_per_request(flask_only, environ),
    )


def _monday() -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(CLINIC_TIMEZONE)).date()
    return (today - timedelta(days=today.weekday())).isoformat()


if __name__ == "__main__":
    raise SystemExit(main())
