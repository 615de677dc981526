"""`python -m bench.mail`: booking throughput with a hung mail server beside none at all.

Both runs use the booking benchmark of `bench/scenarios.py` (gunicorn, 2 sync workers, wrk,
every request a different slot) on SQLite. "No mail" leaves MAIL_SERVER empty (the outbox rows
are still written; nothing tries to send). "Hung SMTP" points MAIL_SERVER at a socket that
accepts connections and never answers, so every worker's sender thread sits in its
MAIL_TIMEOUT while bookings go on. The configurations alternate (A B A B) so drift on a shared
machine hits both; the best run of each is compared. The target: within 10 %.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.live_server import LiveServer, app_env

from . import datasets
from .http_load import WrkSettings, run_wrk, wrk_path
from .scenarios import BENCH_ENV, WORKERS, _booking_args, _booking_lua, _real_form

SETTINGS = WrkSettings(threads=2, connections=16, duration_s=10)
WARMUP = WrkSettings(threads=2, connections=16, duration_s=2)
ROUNDS = 2
MAIL_TIMEOUT_S = 10


@contextmanager
def black_hole():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _run_once(label: str, uri: str, clinic, workdir: Path, env: dict, first: int) -> dict:
    log = workdir / f"{label.replace(' ', '_')}_{first}.log"
    with LiveServer(env, log, workers=WORKERS) as site:
        script = workdir / f"{label.replace(' ', '_')}.lua"
        script.write_text(_booking_lua(clinic, _real_form(site, clinic)))
        run_wrk(f"{label} warm-up", site.url, script, WARMUP, _booking_args(first + 5000))
        before = datasets.settled_booking_count(uri, clinic.type_id)
        result = run_wrk(f"{label} bookings", site.url, script, SETTINGS, _booking_args(first))
        booked = datasets.settled_booking_count(uri, clinic.type_id) - before
        server_log = site.log()
    problems = [word for word in ("Traceback", "database is locked") if word in server_log]
    return {
        "label": label,
        "rps": result.count(303) / result.duration_s if result.duration_s else 0.0,
        "p95_ms": result.p95_ms,
        "booked": booked,
        "responses_303": result.count(303),
        "other": result.others(303),
        "problems": problems,
    }


def run(workdir: Path) -> list[dict]:
    runs = []
    with black_hole() as hole:
        configs = {
            "no mail": {},
            "hung SMTP": {
                "MICROSITE_MAIL_SERVER": "127.0.0.1",
                "MICROSITE_MAIL_PORT": str(hole),
                "MICROSITE_MAIL_TIMEOUT": str(MAIL_TIMEOUT_S),
            },
        }
        databases = {}
        for label in configs:
            uri = f"sqlite:///{workdir / (label.replace(' ', '_') + '.sqlite3')}"
            databases[label] = (uri, datasets.booking_database(uri))
        for round_number in range(ROUNDS):
            for label, extra in configs.items():
                uri, clinic = databases[label]
                first = round_number * 20000
                # BENCH_ENV as for every load test: wrk replays one form, which the bot guard
                # would refuse (every run then measured 0 bookings/s).
                env = app_env(uri, **BENCH_ENV, **extra)
                runs.append(_run_once(label, uri, clinic, workdir, env, first))
    return runs


def render(runs: list[dict]) -> str:
    """The section `python -m bench` appends to docs/benchmarks.md's results."""
    return "\n".join(
        [
            "",
            "### Bookings while the mail server hangs (`bench/mail.py`)",
            "",
            f"SQLite, gunicorn `-w {WORKERS}`, `{SETTINGS.describe()}` after a "
            f"{WARMUP.duration_s:g} s warm-up; no mail (`MAIL_SERVER` empty) and hung SMTP (a "
            f"socket that never answers, `MAIL_TIMEOUT={MAIL_TIMEOUT_S}`), alternating, "
            f"{ROUNDS} rounds.",
            "",
            table(runs),
            "",
        ]
    )


def table(runs: list[dict]) -> str:
    best = {
        label: max(r["rps"] for r in runs if r["label"] == label)
        for label in ("no mail", "hung SMTP")
    }
    ratio = best["hung SMTP"] / best["no mail"] if best["no mail"] else 0.0
    lines = [
        "| run | bookings/s (303s) | p95 ms | rows written | other responses | problems |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['label']} | {r['rps']:.0f} | {r['p95_ms']:.0f} | {r['booked']} | "
            f"{r['other']} | {', '.join(r['problems']) or 'none'} |"
        )
    lines.append("")
    if not best["no mail"]:
        lines.append("No booking succeeded without mail, so there is no ratio: MISSED.")
        return "\n".join(lines)
    verdict = "met" if ratio >= 0.9 else "MISSED"
    lines.append(
        f"Best hung-SMTP run / best no-mail run: **{ratio:.2f}** (target ≥ 0.90: {verdict})."
    )
    return "\n".join(lines)


def main() -> int:
    wrk_path()
    with tempfile.TemporaryDirectory(prefix="microsite-bench-mail-") as workdir:
        runs = run(Path(workdir))
    print(render(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
