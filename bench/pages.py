"""Every patient page and the API under gunicorn, each beside the bare Flask app, plus page weight.

The machine is shared (wrk, gunicorn and whatever else runs), and a round's figure also depends
on how wrk's 20 new connections happen to split between gunicorn's two workers: when all 20
land on one worker the other idles, and the round serves far fewer requests, whichever app it
is. So a ratio is only as good as the pairing and the number of rounds: each row is `PAIRS`
pairs of short rounds, the bare app and the page back to back, each first in every other pair,
and its ratio is `central()` of the pairs' ratios, reported with their lowest and highest. Both
get the same lean wrk script and the same rounds (each page is warmed up first, so its first
answers, which go through Flask and fill the fast path, are not timed; the bare app once at
the start). A calibration row measures the bare app against itself: the report shows how far
this run's method strays from 1.00 when nothing differs.

Each round also reads the server's own CPU time (master and workers, from /proc): CPU per
answered request says what a page costs the server whatever else the machine was doing, so a
low ratio from an unlucky round can be told apart from a page that got dearer.
"""

from __future__ import annotations

import gzip
import os
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from microsite.views.pages import PAGES
from tests.live_server import CLINIC_TIMEZONE, LiveServer, open_form, post_booking

from .http_load import GET_LUA, LEAN_GET_LUA, LoadResult, WrkSettings, run_wrk

ROUND = WrkSettings(threads=2, connections=20, duration_s=1)
WARMUP = WrkSettings(threads=2, connections=20, duration_s=1)
PAIRS = 7
WEIGHT_LIMIT_BYTES = 40 * 1024
CALIBRATION = "bare Flask against itself (calibration)"
_ASSET_RE = re.compile(
    r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"|<script[^>]*\bsrc="([^"]+)"', re.IGNORECASE
)


@dataclass(frozen=True)
class PageCase:
    label: str
    path: str
    target: float | None  # ratio to the bare app (0.2 is the floor); None: shown, no target
    server: str = "site"  # "site", "nocache" (SLOT_CACHE_SECONDS=0) or "bare" (calibration)
    cookie: str = ""
    status: int = 200
    weigh: bool = False  # a patient page: report its HTML + CSS + JS


@dataclass(frozen=True)
class Round:
    """One timed wrk run, and the server CPU seconds it cost (None where /proc is missing)."""

    result: LoadResult
    cpu_s: float | None

    @property
    def cpu_per_request(self) -> float | None:
        if self.cpu_s is None or self.cpu_s <= 0 or not self.result.requests:
            return None
        return self.cpu_s / self.result.requests


@dataclass(frozen=True)
class Pair:
    bare: Round
    page: Round

    @property
    def ratio(self) -> float:
        return self.page.result.rps / self.bare.result.rps if self.bare.result.rps else 0.0

    @property
    def cpu_ratio(self) -> float | None:
        """Bare CPU per request over the page's: like `ratio`, 1.0 is parity, higher is better."""
        bare, page = self.bare.cpu_per_request, self.page.cpu_per_request
        return bare / page if bare and page else None


@dataclass
class PageRun:
    case: PageCase
    warmup: LoadResult | None = None  # counted per status: the exact check of what came back
    pairs: list[Pair] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return central([p.ratio for p in self.pairs])

    @property
    def spread(self) -> tuple[float, float]:
        ratios = [p.ratio for p in self.pairs] or [0.0]
        return min(ratios), max(ratios)

    @property
    def cpu_ratio(self) -> float | None:
        ratios = [r for r in (p.cpu_ratio for p in self.pairs) if r is not None]
        return central(ratios) if len(ratios) == len(self.pairs) and ratios else None

    @property
    def rps(self) -> float:
        return _median(p.page.result.rps for p in self.pairs)

    @property
    def bare_rps(self) -> float:
        return _median(p.bare.result.rps for p in self.pairs)

    @property
    def met(self) -> bool:
        return self.case.target is None or self.ratio >= self.case.target

    @property
    def p50_ms(self) -> float:
        return _median(p.page.result.p50_ms for p in self.pairs)

    @property
    def p95_ms(self) -> float:
        return _median(p.page.result.p95_ms for p in self.pairs)

    @property
    def unexpected(self) -> int:
        rounds = [self.warmup] if self.warmup else []
        rounds += [p.page.result for p in self.pairs]
        return sum(run.unexpected(self.case.status) for run in rounds)


@dataclass(frozen=True)
class PageWeight:
    label: str
    path: str
    html: int
    assets: int
    html_gzip: int
    assets_gzip: int

    @property
    def total(self) -> int:
        return self.html + self.assets

    @property
    def total_gzip(self) -> int:
        return self.html_gzip + self.assets_gzip


def cases(type_id: int, slot_key: str, confirmed_cookie: str) -> list[PageCase]:
    """What is measured: every patient page, the API with and without its cache, the rest."""
    monday = _this_monday()
    picker = f"/book/?type={type_id}&week={monday}"
    api = f"/api/slots?type={type_id}&days=7"
    found = [
        PageCase(CALIBRATION, "/", None, server="bare"),
        PageCase("home", "/", 0.8, weigh=True),
    ]
    found += [
        PageCase(f"content: {spec.slug}", spec.path, 0.8, weigh=True)
        for spec in PAGES
        if spec.slug != "home"
    ]
    return [
        *found,
        PageCase("choose a type", "/book/", 0.6, weigh=True),
        PageCase("picker, type and week", picker, 0.5, weigh=True),
        PageCase("picker, type only (opens at the first free day)", f"/book/?type={type_id}", 0.2),
        PageCase("API slots (2 s cache)", api, 0.6),
        PageCase("API slots, SLOT_CACHE_SECONDS=0", api, 0.25, server="nocache"),
        # Not a production setting: how much the stored picker page saves.
        PageCase("picker, SLOT_CACHE_SECONDS=0", picker, None, server="nocache"),
        PageCase("details form", f"/book/details?type={type_id}&slot={slot_key}", 0.2, weigh=True),
        PageCase("confirmation", "/book/confirmed", 0.2, cookie=confirmed_cookie, weigh=True),
        PageCase(
            "first free time (redirect)", f"/book/first-available?type={type_id}", 0.2, status=303
        ),
        PageCase("page not found", "/no-such-page", 0.2, status=404, weigh=True),
        PageCase("sitemap.xml", "/sitemap.xml", 0.2),
    ]


def book_once(site: LiveServer, type_id: int, slot_key: str) -> str:
    """Book one slot like a patient; the session cookie that shows its confirmation."""
    browser, body = open_form(site, type_id, slot_key)
    response = post_booking(browser, site, body)
    if response.status_code != 303:
        raise RuntimeError(f"the benchmark's own booking failed: {response.status_code}")
    return f"session={browser.cookies['session']}"


def run(
    cases_: list[PageCase], bare: LiveServer, servers: dict[str, LiveServer], workdir: Path
) -> list[PageRun]:
    servers = {"bare": bare, **servers}
    bare_script = _script(workdir / "lean.lua", LEAN_GET_LUA)
    run_wrk("bare Flask GET / (warm-up)", f"{bare.url}/", bare_script, WARMUP)
    results = []
    for case in cases_:
        cookie = f'\nwrk.headers["Cookie"] = "{case.cookie}"\n' if case.cookie else ""
        counted = _script(workdir / f"counted{bool(cookie):d}.lua", GET_LUA + cookie)
        lean = _script(workdir / f"lean{bool(cookie):d}.lua", LEAN_GET_LUA + cookie)
        server = servers[case.server]
        url = server.url + case.path
        result = PageRun(case)
        result.warmup = run_wrk(f"{case.label} (warm-up)", url, counted, WARMUP)
        for index in range(PAIRS):
            # Each goes first in every other pair, so neither always runs just after the other.
            if index % 2 == 0:
                bare_round = _round(bare, "bare Flask GET /", f"{bare.url}/", bare_script)
                page_round = _round(server, case.label, url, lean)
            else:
                page_round = _round(server, case.label, url, lean)
                bare_round = _round(bare, "bare Flask GET /", f"{bare.url}/", bare_script)
            result.pairs.append(Pair(bare=bare_round, page=page_round))
        low, high = result.spread
        cpu = result.cpu_ratio
        print(
            f"bench: {case.label}: {result.rps:,.0f} rps, bare {result.bare_rps:,.0f}, "
            f"× bare {result.ratio:.2f} (pairs {low:.2f}–{high:.2f}), "
            f"CPU × bare {'—' if cpu is None else f'{cpu:.2f}'} (target {case.target})",
            flush=True,
        )
        results.append(result)
    return results


def server_cpu_seconds(server: LiveServer) -> float | None:
    """User + system CPU seconds of a gunicorn master and its workers so far (Linux /proc)."""
    try:
        master = server.process.pid
        pids = [master]
        for task in Path(f"/proc/{master}/task").iterdir():
            pids += [int(pid) for pid in (task / "children").read_text().split()]
        ticks = 0
        for pid in pids:
            # Fields after the command's closing parenthesis; utime and stime are 14 and 15.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _round(server: LiveServer, label: str, url: str, script: Path) -> Round:
    before = server_cpu_seconds(server)
    result = run_wrk(label, url, script, ROUND)
    after = server_cpu_seconds(server)
    # A worker that exited during the round took its CPU time with it: no figure then.
    cpu = after - before if before is not None and after is not None else None
    return Round(result, cpu if cpu is not None and cpu > 0 else None)


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def weigh(cases_: list[PageCase], site: LiveServer) -> list[PageWeight]:
    """HTML + the stylesheets and scripts it links, as sent (uncompressed) and gzipped."""
    weights = []
    for case in (c for c in cases_ if c.weigh):
        headers = {"Cookie": case.cookie} if case.cookie else {}
        page = requests.get(site.url + case.path, headers=headers, timeout=30)
        html = page.content
        assets = [
            requests.get(site.url + (css or js), timeout=30).content
            for css, js in _ASSET_RE.findall(page.text)
        ]
        weights.append(
            PageWeight(
                label=case.label,
                path=case.path,
                html=len(html),
                assets=sum(len(a) for a in assets),
                html_gzip=len(gzip.compress(html, 6)),
                assets_gzip=sum(len(gzip.compress(a, 6)) for a in assets),
            )
        )
    return weights


def central(ratios: list[float]) -> float:
    """A row's figure from its pairs' ratios: the geometric mean without the highest and the
    lowest ratio (with three or more).

    Measured on the bare app against itself (7 pairs of 1 s, load average ~10): the row's figure
    strayed from 1.00 by a standard deviation of ~14 % this way, ~20 % with the median of the
    pairs and ~29 % with the two 3 s rounds per side used before. A geometric mean, because a
    ratio and its inverse must stray alike; trimmed, so one pair caught in another process's
    burst cannot move a row on its own.
    """
    ordered = sorted(ratios)
    if len(ordered) >= 3:
        ordered = ordered[1:-1]
    if not ordered or ordered[0] <= 0:
        return 0.0  # a round that served nothing: no figure to speak of
    return statistics.geometric_mean(ordered)


def _median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else 0.0


def _this_monday() -> str:
    today = datetime.now(ZoneInfo(CLINIC_TIMEZONE)).date()
    return (today - timedelta(days=today.weekday())).isoformat()


def spot(labels: list[str]) -> int:
    """`python -m bench.pages [label ...]`: the page rows alone (no bookings), for a quick look.

    Same servers, database and pairing as `make bench`; with labels, only the rows whose label
    contains one of them, after the calibration row. Prints the rows; docs/benchmarks.md is left
    alone.
    """
    import sys
    import tempfile

    from . import datasets, scenarios

    with tempfile.TemporaryDirectory(prefix="microsite-bench-pages-") as workdir_name:
        workdir = Path(workdir_name)
        demo_uri = f"sqlite:///{workdir / 'demo.sqlite3'}"
        demo = datasets.demo_database(demo_uri)
        with scenarios.page_servers(demo_uri, workdir) as (bare, site, nocache):
            listed = requests.get(
                f"{site.url}/api/slots?type={demo.type_id}&days=7", timeout=30
            ).json()["slots"]
            first = f"{listed[0]['clinician']['id']}-{listed[0]['key'].split('-', 1)[1]}"
            chosen = [
                case
                for case in cases(demo.type_id, first, confirmed_cookie="")
                if not case.cookie
                and (
                    not labels
                    or case.label == CALIBRATION
                    or any(part in case.label for part in labels)
                )
            ]
            results = run(chosen, bare, {"site": site, "nocache": nocache}, workdir)
    print("| page | requests/s | bare requests/s | × bare | pairs | CPU × bare |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        print(spot_row(result), file=sys.stdout)
    return 0


def spot_row(result: PageRun) -> str:
    low, high = result.spread
    cpu = result.cpu_ratio
    return (
        f"| {result.case.label} | {result.rps:,.0f} | {result.bare_rps:,.0f} | "
        f"{result.ratio:.2f} | {low:.2f}–{high:.2f} | {'—' if cpu is None else f'{cpu:.2f}'} |"
    )


if __name__ == "__main__":
    import sys

    raise SystemExit(spot(sys.argv[1:]))
