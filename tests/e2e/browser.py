"""Browser support for the e2e suite: Debian's Chromium under Playwright, watched for privacy.

One Chromium per test session (`launch_chromium`); each scenario opens its own context through
`Watched`, which records every request the page makes, every Content-Security-Policy violation
and every script error, so a scenario can assert that nothing left the site. `assert_accessible`
runs axe-core (bundled by axe-playwright-python; injected through the DevTools protocol, so the
page's CSP is not loosened) at WCAG 2.2 A/AA.

No browser is downloaded: Playwright drives /usr/bin/chromium (`.ci/run` installs it with apt).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: without these flags Chromium keeps calling home at start.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
WAIT_MS = 10_000  # every wait in a scenario is bounded by this
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}

# Reports a CSP violation to the test, on every page of the context (only where scripts run;
# without JavaScript the browser's own console message is the report).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def launch_chromium(playwright: Playwright) -> tuple[Browser, Path]:
    """Headless Debian Chromium with a fresh, throwaway profile directory."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    args = list(CHROMIUM_ARGS)
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    profile = Path(tempfile.mkdtemp(prefix="e2e-chromium-"))
    # Playwright gives each launch its own empty profile; keep its temporary files with ours.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=args,
        env={**os.environ, "TMPDIR": str(profile), "HOME": str(profile)},
        timeout=30_000,
    )
    return browser, profile


def remove_profile(profile: Path) -> None:
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Watched:
    """A browser context whose requests, CSP violations and page errors are recorded."""

    context: BrowserContext
    origin: str
    requests: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, origin: str, **options) -> Watched:
        context = browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        watched = cls(context, origin)
        context.expose_function("__reportCspViolation", watched._csp_report)
        context.add_init_script(CSP_LISTENER)
        context.on("request", lambda request: watched.requests.append(request.url))
        context.on("console", watched._console)
        context.on("weberror", lambda error: watched.page_errors.append(str(error.error)))
        return watched

    def _csp_report(self, report: str) -> None:
        self.csp_violations.append(report)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def new_page(self) -> Page:
        return self.context.new_page()

    def foreign_requests(self) -> list[str]:
        own = self.origin.rstrip("/") + "/"
        return [url for url in self.requests if not url.startswith((own, "data:", "about:"))]

    def assert_private(self) -> None:
        """Nothing went to another origin, the CSP refused nothing, no script failed."""
        assert self.requests, "the scenario made no request at all"
        assert self.foreign_requests() == [], "requests to another origin"
        assert self.csp_violations == [], "Content-Security-Policy violations"
        assert self.page_errors == [], "script errors on the page"

    def close(self) -> None:
        self.context.close()


@contextmanager
def watched_contexts(browser: Browser, origin: str) -> Iterator[Callable[..., Watched]]:
    """A function that opens recorded contexts on `origin` (a desktop unless told); each must
    have stayed private when the block ends."""
    opened: list[Watched] = []

    def open_context(**options) -> Watched:
        options.setdefault("viewport", DESKTOP)
        context = Watched.open(browser, origin, base_url=origin, **options)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()
    for context in opened:
        context.assert_private()


@contextmanager
def private_context(browser: Browser, origin: str, **options) -> Iterator[Watched]:
    """A recorded context for a fixture wider than one test (the `watched` fixture is per
    test); it must have stayed private when the block ends."""
    options.setdefault("viewport", DESKTOP)
    context = Watched.open(browser, origin, base_url=origin, **options)
    try:
        yield context
    finally:
        context.close()
    context.assert_private()


_axe = Axe()


def assert_accessible(page: Page, label: str = "") -> None:
    """Zero axe-core violations at WCAG 2.2 A and AA on the page as it is now.

    axe is a script: in a context without JavaScript it would wait for ever, so do not call it
    there (the same pages are checked in a scenario with JavaScript)."""
    results = _axe.run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]},
    )
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
    ]
    assert problems == [], f"axe on {label or page.url}:\n" + "\n".join(problems)


FOCUSED_JS = """() => {
  const el = document.activeElement;
  const about = {tag: el.tagName.toLowerCase(), id: el.id || "",
                 text: (el.innerText || el.value || "").trim().replace(/\\s+/g, " "),
                 href: el.getAttribute("href") || "", visible: false};
  if (el === document.body) return about;
  // Focus inside a control's own browser-drawn part (the date field's calendar button)
  // leaves the field itself unmatched by :focus; Chromium draws its own ring there.
  if (el.type === "date" && !el.matches(":focus")) return {...about, visible: true};
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {...about, visible: outline || (!!style.boxShadow && style.boxShadow !== "none")};
}"""


def focused(page: Page) -> dict:
    """What has focus (tag, id, text, href) and whether it draws an outline or a box-shadow."""
    return page.evaluate(FOCUSED_JS)


MAX_TABS = 120  # a keyboard path longer than this is itself a failure


def tab_until(page: Page, wanted, what: str) -> dict:
    """Press Tab until `wanted(focused element)`; every stop must show where focus is."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["tag"] != "body":
            assert now["visible"], f"focus is invisible on {now}"
        if wanted(now):
            return now
    raise AssertionError(f"{what} not reached in {MAX_TABS} presses of Tab")
