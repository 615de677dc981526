"""`python -m bench`: every benchmark, then docs/benchmarks.md's results section (also printed).

Each figure is set beside a bare Flask app measured in the same run on the same settings, so
the ratios travel between machines where the absolute numbers do not.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from . import engine, feeds, mail, report, scenarios
from .http_load import wrk_path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main() -> int:
    wrk_path()  # fail now, with the install hint, rather than after the engine benchmark
    began = time.monotonic()
    print("bench: slot engine (bench/engine.py) ...", flush=True)
    engine_result = engine.run()
    with tempfile.TemporaryDirectory(prefix="microsite-bench-") as workdir:
        print("bench: HTTP benchmarks under gunicorn and wrk ...", flush=True)
        http = scenarios.run_all(Path(workdir))
        feed_section = feeds.render(feeds.run(Path(workdir)))
        print("bench: bookings with a hung mail server (bench/mail.py) ...", flush=True)
        mail_section = mail.render(mail.run(Path(workdir)))
    generated = report.render(engine_result, http) + feed_section + mail_section
    report.write(DOCS, generated)
    print(generated)
    print(f"bench: wrote {DOCS} in {time.monotonic() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
