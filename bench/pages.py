"""Every patient page and the API under gunicorn, each beside the bare Flask app, plus page weight.

The machine is shared (wrk, gunicorn and whatever else runs), so a ratio is only as good as the
pairing: each page is measured in short rounds that alternate with the bare app, and its ratio
is its requests per second over the bare app's in those same rounds.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from microsite.views.pages import PAGES
from tests.live_server import CLINIC_TIMEZONE, LiveServer, open_form, post_booking

from .http_load import GET_LUA, LoadResult, WrkSettings, run_wrk

ROUND = WrkSettings(threads=2, connections=20, duration_s=3)
WARMUP = WrkSettings(threads=2, connections=20, duration_s=1)
ROUNDS = 2
WEIGHT_LIMIT_BYTES = 40 * 1024
_ASSET_RE = re.compile(
    r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"|<script[^>]*\bsrc="([^"]+)"', re.IGNORECASE
)


@dataclass(frozen=True)
class PageCase:
    label: str
    path: str
    target: float | None  # ratio to the bare app (0.2 is the floor); None: shown, no target
    server: str = "site"  # "site" (default settings) or "nocache" (SLOT_CACHE_SECONDS=0)
    cookie: str = ""
    status: int = 200
    weigh: bool = False  # a patient page: report its HTML + CSS + JS


@dataclass
class PageRun:
    case: PageCase
    runs: list[LoadResult] = field(default_factory=list)
    bare_runs: list[LoadResult] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return _rps(self.runs)

    @property
    def bare_rps(self) -> float:
        return _rps(self.bare_runs)

    @property
    def ratio(self) -> float:
        return self.rps / self.bare_rps if self.bare_rps else 0.0

    @property
    def met(self) -> bool:
        return self.case.target is None or self.ratio >= self.case.target

    @property
    def p50_ms(self) -> float:
        return max(run.p50_ms for run in self.runs)

    @property
    def p95_ms(self) -> float:
        return max(run.p95_ms for run in self.runs)

    @property
    def unexpected(self) -> int:
        return sum(run.others(self.case.status) for run in self.runs)


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
    found = [PageCase("home", "/", 0.8, weigh=True)]
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
    plain = workdir / "get.lua"
    plain.write_text(GET_LUA)
    results = []
    for case in cases_:
        script = plain
        if case.cookie:
            script = workdir / "get_cookie.lua"
            script.write_text(GET_LUA + f'\nwrk.headers["Cookie"] = "{case.cookie}"\n')
        url = servers[case.server].url + case.path
        result = PageRun(case)
        run_wrk(f"{case.label} (warm-up)", url, script, WARMUP)
        for _ in range(ROUNDS):
            result.bare_runs.append(run_wrk("bare Flask GET /", f"{bare.url}/", plain, ROUND))
            result.runs.append(run_wrk(case.label, url, script, ROUND))
        print(
            f"bench: {case.label}: {result.rps:,.0f} rps, bare {result.bare_rps:,.0f}, "
            f"ratio {result.ratio:.2f} (target {case.target})",
            flush=True,
        )
        results.append(result)
    return results


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


def _rps(runs: list[LoadResult]) -> float:
    seconds = sum(run.duration_s for run in runs)
    return sum(run.requests for run in runs) / seconds if seconds else 0.0


def _this_monday() -> str:
    today = datetime.now(ZoneInfo(CLINIC_TIMEZONE)).date()
    return (today - timedelta(days=today.weekday())).isoformat()


def spot(labels: list[str]) -> int:
    """`python -m bench.pages [label ...]`: the page rows alone (no bookings), for a quick look.

    Same servers, database and pairing as `make bench`; with labels, only the rows whose label
    contains one of them. Prints the rows; docs/benchmarks.md is left alone.
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
                if not case.cookie and (not labels or any(part in case.label for part in labels))
            ]
            results = run(chosen, bare, {"site": site, "nocache": nocache}, workdir)
    for result in results:
        print(
            f"| {result.case.label} | {result.rps:,.0f} | {result.bare_rps:,.0f} | "
            f"{result.ratio:.2f} |",
            file=sys.stdout,
        )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(spot(sys.argv[1:]))
