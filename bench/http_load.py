"""HTTP load with wrk against gunicorn: one Lua script reports every figure as JSON.

wrk's own --latency table has no 95th percentile and does not count status codes, so every
run uses a script whose done() prints one `BENCH_JSON {...}` line: requests, duration,
latency percentiles and a count per HTTP status. The booking script also builds each POST
body, so every request books a different slot (see `booking_script`).

Counting per status needs a Lua `response()`, and with one defined wrk copies every answer's
headers and body into Lua: a client cost that grows with the answer (~18 µs more per 8 KB
page than per "Hello, World!", measured as wrk's own CPU time), paid on the same two CPUs as
the server. The timed page rounds therefore use `LEAN_GET_LUA`, which has no `response()`
and reports wrk's own count of answers >= 400 instead; the exact per-status count comes from
each row's warm-up (bench/pages.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

WRK_INSTALL_HINT = (
    "wrk is not installed. On Debian/Ubuntu: `apt-get install -y wrk` (the Makefile's bench "
    "target does this); on macOS: `brew install wrk`."
)
RESULT_MARK = "BENCH_JSON "

# The one BENCH_JSON line; `statuses` is "" when the script counted none (LEAN_GET_LUA).
REPORT_LUA = r"""
function report(summary, latency, sent, statuses)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "sent": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "status": %d}, "statuses": {%s}}\n',
    summary.requests, sent, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status,
    statuses))
end
"""

# Per-thread status counts, merged in done(); `tid` numbers the threads 0..n-1.
STATS_LUA = (
    REPORT_LUA
    + r"""
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged, sent = {}, 0
  for _, thread in ipairs(threads) do
    sent = sent + (thread:get("sent") or 0)
    for code, n in pairs(thread:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  if sent > 0 then
    -- wrk calls request() once in thread 0 before the run to check the script
    -- (script_verify_request) and never sends that request.
    sent = sent - 1
  end
  local parts = {}
  for code, n in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  report(summary, latency, sent, table.concat(parts, ", "))
end
"""
)


GET_LUA = (
    STATS_LUA
    + r"""
function init(args)
  statuses = {}
end
"""
)

# No response() (see the module docstring): wrk reads and parses every answer but hands
# nothing to Lua, so a large page costs the client no more than its bytes. No per-status
# count; wrk's own `errors.status` counts the answers >= 400.
LEAN_GET_LUA = (
    REPORT_LUA
    + r"""
function done(summary, latency, requests)
  report(summary, latency, 0, "")
end
"""
)

# Slot k (0, 1, 2, ... across all threads) is clinician k mod C at start k div C: distinct
# slots until k reaches C * S. args: first k, thread count, path to POST to.
BOOKING_LUA = r"""
local clinicians = {%(clinicians)s}
local starts = {%(starts)s}
local prefix = "%(prefix)s"
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = "%(cookie)s",
}

function init(args)
  statuses = {}
  first = tonumber(args[1]) or 0
  stride = tonumber(args[2]) or 1
  path = args[3] or "/book/details"
  sent = 0
end

function request()
  local k = first + sent * stride + tid
  sent = sent + 1
  local clinician = clinicians[(k %% #clinicians) + 1]
  local start = starts[(math.floor(k / #clinicians) %% #starts) + 1]
  local body = prefix .. "&slot=" .. clinician .. "-" .. start ..
    "&idempotency_key=" .. string.format("bench-k%%012d", k)
  return wrk.format("POST", path, headers, body)
end
"""


@dataclass(frozen=True)
class WrkSettings:
    threads: int = 2
    connections: int = 16
    duration_s: int = 10

    def describe(self) -> str:
        return f"wrk -t{self.threads} -c{self.connections} -d{self.duration_s}s"


@dataclass
class LoadResult:
    """What one wrk run measured."""

    label: str
    requests: int  # answered
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # built by the script (0 when the script does not build requests)
    status_errors: int = 0  # answers >= 400, as wrk counts them whatever the script

    @property
    def unanswered(self) -> int:
        """Requests sent but never answered: in flight when wrk stopped, or lost to errors."""
        return max(self.sent - self.requests, 0)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def count(self, *codes: int) -> int:
        return sum(n for code, n in self.statuses.items() if code in codes)

    def others(self, *codes: int) -> int:
        return self.requests - self.count(*codes)

    def unexpected(self, expected: int) -> int:
        """Answers other than `expected`: exact when the script counted statuses; from a lean
        script, only what wrk's own count (>= 400) can tell."""
        if self.statuses:
            return self.others(expected)
        if expected < 400:
            return self.status_errors
        return self.requests - self.status_errors


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(WRK_INSTALL_HINT)
    return path


def wrk_version() -> str:
    out = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" [")[0].strip()


def booking_script(
    *, clinician_ids: list[int], start_keys: list[str], prefix: str, cookie: str
) -> str:
    """The booking Lua: one session cookie and form body prefix, a distinct slot per request."""
    for value in (prefix, cookie, *start_keys):
        # Form-urlencoded text and signed cookie values fit in a Lua "..." literal as they are.
        if any(char in value for char in '"\\\n'):
            raise ValueError(f"not safe in a Lua string literal: {value!r}")
    return STATS_LUA + BOOKING_LUA % {
        "clinicians": ", ".join(str(c) for c in clinician_ids),
        "starts": ", ".join(f'"{s}"' for s in start_keys),
        "prefix": prefix,
        "cookie": cookie,
    }


def run_wrk(
    label: str,
    url: str,
    script: Path,
    settings: WrkSettings,
    script_args: list[str] = (),
) -> LoadResult:
    """One wrk run; its figures, or an error with wrk's output."""
    command = [
        wrk_path(),
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{settings.duration_s}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=settings.duration_s + 60, check=False
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(RESULT_MARK)), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data = json.loads(line[len(RESULT_MARK) :])
    return LoadResult(
        label=label,
        requests=data["requests"],
        sent=data["sent"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses={int(code): n for code, n in data["statuses"].items()},
        socket_errors={k: v for k, v in data["errors"].items() if v and k != "status"},
        status_errors=data["errors"]["status"],
    )
