"""CPU time per request of the booking steps, in process, beside a bare Flask app.

`python -m bench.booking_cpu` builds the demo database the page benchmark uses (migrated by
`flask db upgrade`, `flask seed-demo`, every sixth slot booked), then calls the WSGI app
directly, request by request: the details form, the confirmation page, the first-free-time
redirect and a booking POST, each the best of several runs of `time.process_time` over a loop,
beside a bare Flask "hello world" timed in the same loop. No gunicorn and no wrk, so the figures
hold on a shared machine where requests per second do not. `--profile NAME` prints a
pyinstrument profile of one case instead.

CPU time still moves with the machine's load (caches, clock speed, the other hyperthread).
`--instructions NAME` counts instead: it runs the case under valgrind (cachegrind, no cache
simulation) twice, with none and with `--calls` calls after the same set-up and warm-up, and
prints the difference per call in millions of instructions: the same on a busy machine as on
a quiet one, so a before/after comparison needs no quiet machine (a few minutes per case).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask
from werkzeug.test import EnvironBuilder

from microsite import create_app
from tests.live_server import CLINIC_TIMEZONE, SECRET_KEY, hidden_fields

from . import datasets

RUNS = 7
LOOP = 200
HOST = "127.0.0.1"
WARM_UP_CALLS = 30
COUNTED_CALLS = 200
_REPO = Path(__file__).resolve().parent.parent


def _environ(path: str, *, method: str = "GET", body: str = "", cookie: str = "") -> dict:
    headers = {"Cookie": cookie} if cookie else {}
    builder = EnvironBuilder(
        path=path,
        method=method,
        base_url=f"http://{HOST}",
        headers=headers,
        data=body or None,
        content_type="application/x-www-form-urlencoded" if body else None,
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


class Caller:
    """Calls a WSGI app with a fresh copy of a prepared environ, as a server would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def _start(self, status, headers, exc_info=None):
        self.status, self.headers = status, headers

    def __call__(self, environ: dict, body: bytes = b"") -> bytes:
        env = dict(environ)
        if body:
            env["wsgi.input"] = io.BytesIO(body)
        chunks = self.app(env, self._start)
        try:
            return b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

    def cookie(self) -> str:
        for key, value in self.headers:
            if key.lower() == "set-cookie" and value.startswith("session="):
                return value.split(";", 1)[0]
        return ""


def _cpu_ms(call: Callable[[], object], loop: int = LOOP, runs: int = RUNS) -> float:
    """Best of `runs` loops: the CPU milliseconds one call takes."""
    for _ in range(20):
        call()
    best = float("inf")
    for _ in range(runs):
        began = time.process_time()
        for _ in range(loop):
            call()
        best = min(best, time.process_time() - began)
    return best / loop * 1000


def _bare() -> Callable[[], object]:
    bare = Flask("bare")
    bare.add_url_rule("/", "hello", lambda: "Hello, World!")
    caller = Caller(bare)
    environ = _environ("/")
    return lambda: caller(environ)


def _app(uri: str) -> Flask:
    return create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": uri,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            "TRUSTED_HOSTS": [HOST],
            "RATELIMIT_ENABLED": False,
            "MAX_UPCOMING_PER_PATIENT": 0,
            "BOOKING_MIN_FILL_SECONDS": 0,
            "BOOKING_BOT_GUARD": False,
        }
    )


def _new_bookings(uri: str) -> Callable[[], object]:
    """Booking POSTs as the HTTP benchmark sends them: one browser, a new slot every time."""
    clinic = datasets.booking_database(uri)
    caller = Caller(_app(uri))
    key = f"{clinic.clinician_ids[0]}-{clinic.start_keys[0]}"
    page = caller(_environ(f"/book/details?type={clinic.type_id}&slot={key}")).decode()
    cookie = caller.cookie()
    hidden = hidden_fields(page)
    fields = {name: hidden[name] for name in ("csrf_token", "consultation_type", "started")}
    prefix = urlencode({**fields, **datasets.PATIENT})
    template = _environ("/book/details", method="POST", body=prefix, cookie=cookie)
    sent = iter(range(10**9))

    def book() -> object:
        k = next(sent)
        clinician = clinic.clinician_ids[k % len(clinic.clinician_ids)]
        start = clinic.start_keys[k // len(clinic.clinician_ids)]
        body = f"{prefix}&slot={clinician}-{start}&idempotency_key=cpu-{k:012d}".encode()
        environ = {**template, "CONTENT_LENGTH": str(len(body))}
        out = caller(environ, body)
        if not caller.status.startswith("303"):
            raise RuntimeError(f"booking {k}: {caller.status}")
        return out

    return book


def build_cases(workdir: Path) -> dict[str, Callable[[], object]]:
    uri = f"sqlite:///{workdir / 'demo.sqlite3'}"
    demo = datasets.demo_database(uri)
    app = _app(uri)
    caller = Caller(app)
    api = caller(_environ(f"/api/slots?type={demo.type_id}&days=7"))
    import json

    slots = json.loads(api)["slots"]
    first = f"{slots[0]['clinician']['id']}-{slots[0]['key'].split('-', 1)[1]}"
    details_path = f"/book/details?type={demo.type_id}&slot={first}"

    # One browser: the form (its cookie and hidden fields), then a booking of the last slot.
    page = caller(_environ(details_path)).decode()
    cookie = caller.cookie()
    hidden = hidden_fields(page)
    last = slots[-1]
    last_key = f"{last['clinician']['id']}-{last['key'].split('-', 1)[1]}"
    fields = {name: hidden[name] for name in ("csrf_token", "consultation_type", "started")}
    body = urlencode(
        {**fields, **datasets.PATIENT, "slot": last_key, "idempotency_key": uuid.uuid4().hex}
    )
    caller(_environ("/book/details", method="POST", body=body, cookie=cookie), body.encode())
    if not caller.status.startswith("303"):
        raise RuntimeError(f"the benchmark's own booking failed: {caller.status}")
    confirmed_cookie = caller.cookie() or cookie

    details = _environ(details_path, cookie=cookie)
    details_new = _environ(details_path)
    confirmed = _environ("/book/confirmed", cookie=confirmed_cookie)
    first_free = _environ(f"/book/first-available?type={demo.type_id}")
    # Booking POSTs: each a different slot of the bench clinic would need its own database;
    # a resent form (same idempotency key) runs the whole path up to the idempotency probe.
    resend_env = _environ("/book/details", method="POST", body=body, cookie=confirmed_cookie)

    def expect(status: str, environ: dict, body: bytes = b"") -> Callable[[], object]:
        def call() -> object:
            out = caller(environ, body)
            if not caller.status.startswith(status):
                raise RuntimeError(f"{environ['PATH_INFO']}: {caller.status}")
            return out

        return call

    return {
        "bare": _bare(),
        "details": expect("200", details),
        "details-new-browser": expect("200", details_new),
        "confirmed": expect("200", confirmed),
        "first-available": expect("303", first_free),
        "booking-resend": expect("303", resend_env, body.encode()),
        "booking": _new_bookings(f"sqlite:///{workdir / 'bookings.sqlite3'}"),
    }


def _case(workdir: Path, name: str) -> Callable[[], object]:
    """One case; the booking case alone without the demo database the others need."""
    if name == "booking":
        return _new_bookings(f"sqlite:///{workdir / 'bookings.sqlite3'}")
    return build_cases(workdir)[name]


def _instructions(name: str, calls: int) -> float:
    """Millions of instructions one call of the case runs (valgrind's count, see above)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    command = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    runs = {
        count: subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [*command, sys.executable, "-m", "bench.booking_cpu", "--calls", name, str(count)],
            cwd=_REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        for count in (0, calls)
    }
    counted = {}
    for count, process in runs.items():
        _out, err = process.communicate()
        found = re.findall(r"I\s+refs:\s+([\d,]+)", err)
        if process.returncode != 0 or not found:
            raise SystemExit(f"valgrind run of {count} calls failed:\n{err[-2000:]}")
        counted[count] = int(found[-1].replace(",", ""))
    return (counted[calls] - counted[0]) / calls / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="print a pyinstrument profile of this case")
    parser.add_argument("--cprofile", help="print cProfile's top functions for this case")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--only", nargs="*", help="time only these cases")
    parser.add_argument("--runs", type=int, default=RUNS, help="loops timed; the best counts")
    parser.add_argument("--loop", type=int, default=LOOP, help="requests per timed loop")
    parser.add_argument(
        "--instructions", nargs="+", metavar="NAME", help="count instructions per call (valgrind)"
    )
    parser.add_argument(
        "--calls",
        nargs=2,
        metavar=("NAME", "N"),
        help="warm up, then call the case N times, untimed (what --instructions runs)",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        print(f"{'request':<22} {'M instructions':>15}")
        for name in args.instructions:
            print(f"{name:<22} {_instructions(name, COUNTED_CALLS):15.2f}", flush=True)
        return 0
    if args.calls:
        name, count = args.calls[0], int(args.calls[1])
        with tempfile.TemporaryDirectory(prefix="microsite-cpu-") as workdir:
            call = _case(Path(workdir), name)
            for _ in range(WARM_UP_CALLS + count):
                call()
        return 0
    with tempfile.TemporaryDirectory(prefix="microsite-cpu-") as workdir:
        cases = build_cases(Path(workdir))
        if args.profile:
            from pyinstrument import Profiler

            call = cases[args.profile]
            for _ in range(50):
                call()
            profiler = Profiler(interval=0.0001)
            profiler.start()
            for _ in range(1000):
                call()
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            return 0
        if args.cprofile:
            import cProfile
            import pstats

            call = cases[args.cprofile]
            for _ in range(50):
                call()
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(1000):
                call()
            profile.disable()
            pstats.Stats(profile).sort_stats(args.sort).print_stats(60)
            return 0
        bare_ms = _cpu_ms(cases.pop("bare"), args.loop, args.runs)
        print(f"{'request':<22} {'CPU ms':>8} {'x bare':>7}")
        print(f"{'bare Flask GET /':<22} {bare_ms:8.3f} {1:7.2f}")
        for name, call in cases.items():
            if args.only and name not in args.only:
                continue
            ms = _cpu_ms(call, args.loop, args.runs)
            print(f"{name:<22} {ms:8.3f} {ms / bare_ms:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
