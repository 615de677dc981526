"""The clinic's informational pages: Markdown copy from microsite/content/ in templates."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import markdown
from flask import Blueprint, Response, current_app, render_template, request, url_for
from markupsafe import Markup, escape

from .. import clock, fast_path, page_cache

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

MARKDOWN_EXTENSIONS = ["meta", "admonition", "attr_list", "sane_lists", "smarty", "toc"]
REQUIRED_FRONT_MATTER = ("title", "description", "heading")
# `{{clinic_phone}}` and friends: clinic facts live in config, so the copy never goes stale.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
# `!!! placeholder` blocks are text the clinic has not written yet; say so in words, not colour.
PLACEHOLDER_LABEL = "Placeholder — the clinic will replace this text"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


@dataclass(frozen=True)
class PageSpec:
    """One content page: its Markdown file (slug.md), URL, menu label and layout."""

    slug: str
    nav_label: str
    template: str = "pages/page.html"
    in_nav: bool = True
    reading_path: bool = True  # part of the "Next:" chain through the topic pages
    booking_prompt: bool = True  # the "Talk it through with us" box beside the copy

    @property
    def path(self) -> str:
        return "/" if self.slug == "home" else f"/{self.slug}"

    @property
    def endpoint(self) -> str:
        return self.slug.replace("-", "_")


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home", "Home", "pages/home.html", in_nav=False, reading_path=False),
    PageSpec("ketamine-therapy", "Ketamine therapy"),
    PageSpec("how-it-works", "How it works"),
    PageSpec("safety", "Safety"),
    PageSpec("who-it-may-help", "Who it may help"),
    PageSpec("what-to-expect", "What to expect"),
    PageSpec("faq", "FAQ"),
    PageSpec("about", "About & contact", "pages/about.html", reading_path=False),
    # A legal notice, not a place to sell.
    PageSpec("privacy", "Privacy", in_nav=False, reading_path=False, booking_prompt=False),
)
READING_PATH = tuple(spec for spec in PAGES if spec.reading_path)


class ContentError(ValueError):
    """A content file the site cannot show (missing front matter, a second h1)."""


@dataclass(frozen=True)
class Content:
    """A page's copy. `body` is HTML whose {{placeholders}} are filled per request."""

    title: str
    description: str
    heading: str
    lead: str
    summary: str
    body: str


def parse_content(text: str, source: str = "<text>") -> Content:
    """Front matter (Title:, Description:, Heading:, Lead:, Summary:) plus a Markdown body."""
    converter = markdown.Markdown(extensions=MARKDOWN_EXTENSIONS)
    body = converter.convert(text)
    meta = {key: " ".join(lines).strip() for key, lines in converter.Meta.items()}
    missing = [key for key in REQUIRED_FRONT_MATTER if not meta.get(key)]
    if missing:
        raise ContentError(f"{source}: front matter lacks {', '.join(missing)}")
    if "<h1" in body:
        raise ContentError(f"{source}: use ## headings; the page template shows the one h1")
    body = body.replace(
        '<p class="admonition-title">Placeholder</p>',
        f'<p class="admonition-title">{PLACEHOLDER_LABEL}</p>',
    )
    return Content(
        title=meta["title"],
        description=meta["description"],
        heading=meta["heading"],
        lead=meta.get("lead", ""),
        summary=meta.get("summary", ""),
        body=body,
    )


# Parsed files keyed by path, re-read when the file changes so edits show without a restart.
_cache: dict[Path, tuple[int, Content]] = {}


def content_dir() -> Path:
    return Path(current_app.root_path) / "content"


def load_content(slug: str) -> Content:
    """The parsed copy of content/<slug>.md, cached until the file changes."""
    path = content_dir() / f"{slug}.md"
    modified = path.stat().st_mtime_ns
    cached = _cache.get(path)
    if cached is None or cached[0] != modified:
        cached = (modified, parse_content(path.read_text(encoding="utf-8"), source=path.name))
        _cache[path] = cached
    return cached[1]


def fill_placeholders(text: str, values: Mapping[str, str], escape_value: Callable = str) -> str:
    """Replace {{name}} with values[name]; an unknown name stays visible so an editor spots it."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            log.warning("content: unknown placeholder {{%s}}", name)
            return match.group(0)
        return str(escape_value(values[name]))

    return PLACEHOLDER_RE.sub(replace, text)


def placeholder_values() -> dict[str, str]:
    """The facts a content file may name, taken from the same `clinic` the templates see."""
    context: dict[str, Any] = {}
    current_app.update_template_context(context)
    clinic = context["clinic"]
    return {
        "clinic_name": clinic["name"],
        "clinic_phone": clinic["phone"],
        "clinic_phone_href": clinic["phone_href"],
        "clinic_email": clinic["email"],
        "clinic_address": (
            f"{clinic['street']}, {clinic['city']}, {clinic['region']} {clinic['postcode']}"
        ),
        "book_url": url_for("booking.start"),
    }


@dataclass(frozen=True)
class Page:
    """What a page template receives: copy with the clinic's facts filled in."""

    spec: PageSpec
    title: str
    description: str
    heading: str
    lead: str
    summary: str
    body: Markup


def build_page(spec: PageSpec, values: Mapping[str, str]) -> Page:
    content = load_content(spec.slug)

    def plain(text: str) -> str:
        return fill_placeholders(text, values)  # the template escapes these

    return Page(
        spec=spec,
        title=plain(content.title),
        description=plain(content.description),
        heading=plain(content.heading),
        lead=plain(content.lead),
        summary=plain(content.summary),
        # The body is already HTML, so the values are escaped as they go in.
        body=Markup(fill_placeholders(content.body, values, escape)),  # noqa: S704  # nosec B704
    )


def next_in_reading_path(spec: PageSpec) -> PageSpec | None:
    if spec not in READING_PATH:
        return None
    index = READING_PATH.index(spec)
    return READING_PATH[index + 1] if index + 1 < len(READING_PATH) else None


def content_version() -> tuple:
    """Which copy the pages show: the content folder and each file's mtime.

    Looked at no more than once per CONTENT_CHECK_SECONDS (timed by the clock seam), so a
    shared page costs no file system calls on most requests and an edit shows within that time.
    """
    state: dict = current_app.extensions.setdefault("content_version", {})
    now = clock.now().timestamp()
    checked_at = state.get("checked_at")
    # A clock that went back (a test's frozen clock) counts as due, not as fresh.
    if (
        checked_at is None
        or not 0 <= now - checked_at < current_app.config["CONTENT_CHECK_SECONDS"]
    ):
        directory = content_dir()
        mtimes = tuple(_mtime_ns(directory / f"{spec.slug}.md") for spec in PAGES)
        state.update(checked_at=now, version=(str(directory), mtimes))
    # A page built from this version is answered from memory only until the next look.
    fast_path.limit(state["checked_at"] + current_app.config["CONTENT_CHECK_SECONDS"])
    return state["version"]


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1  # missing: the page itself then fails as before, with the file's name


def _view_for(spec: PageSpec) -> Callable[[], str]:
    def render() -> str:
        values = placeholder_values()
        page = build_page(spec, values)
        following = next_in_reading_path(spec)
        extra: dict[str, Any] = {}
        if spec.slug == "home":
            extra["topics"] = [build_page(s, values) for s in READING_PATH]
        return render_template(
            spec.template,
            page=page,
            next_page=build_page(following, values) if following else None,
            **extra,
        )

    def view() -> str:
        # The same for every visitor until a content file changes: rendered once per version.
        return page_cache.shared_html(("content", content_version()), render)

    view.__name__ = spec.endpoint
    return view


for _spec in PAGES:
    bp.add_url_rule(_spec.path, endpoint=_spec.endpoint, view_func=_view_for(_spec))


@bp.app_template_global()
def site_nav() -> list[dict[str, Any]]:
    """Menu entries for base.html; a function, so emails rendered outside a request never pay."""
    return [
        {"label": label, "url": url, "current": request.endpoint == endpoint}
        for label, url, endpoint in _nav_links(request.script_root)
    ]


def _nav_links(script_root: str) -> tuple[tuple[str, str, str], ...]:
    """(label, url, endpoint) of the menu, built once per app and script root."""
    links: dict = current_app.extensions.setdefault("site_nav", {})
    if script_root not in links:
        links[script_root] = tuple(
            (spec.nav_label, url_for(f"pages.{spec.endpoint}"), f"pages.{spec.endpoint}")
            for spec in PAGES
            if spec.in_nav
        )
    return links[script_root]


@bp.app_template_global()
def clinic_schema() -> dict[str, Any]:
    """schema.org facts about the clinic for the JSON-LD block (base.html escapes via tojson)."""
    config = current_app.config
    return {
        "@context": "https://schema.org",
        "@type": "MedicalClinic",
        "name": config["CLINIC_NAME"],
        "url": config["SITE_URL"].rstrip("/") + url_for("pages.home"),
        "telephone": config["CLINIC_PHONE"],
        "email": config["CLINIC_EMAIL"],
        "medicalSpecialty": "Psychiatric",
        "address": {
            "@type": "PostalAddress",
            "streetAddress": config["CLINIC_STREET"],
            "addressLocality": config["CLINIC_CITY"],
            "addressRegion": config["CLINIC_REGION"],
            "postalCode": config["CLINIC_POSTCODE"],
            "addressCountry": config["CLINIC_COUNTRY"],
        },
    }


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    site_url = current_app.config["SITE_URL"].rstrip("/")
    paths = [url_for(f"pages.{spec.endpoint}") for spec in PAGES] + [url_for("booking.start")]
    urlset = ElementTree.Element("urlset", xmlns=SITEMAP_NS)
    for path in paths:
        ElementTree.SubElement(ElementTree.SubElement(urlset, "url"), "loc").text = site_url + path
    body = ElementTree.tostring(urlset, encoding="utf-8", xml_declaration=True)
    fast_path.mark_shareable()  # config and routes only: the same for everyone
    return Response(body, mimetype="application/xml")


@bp.get("/robots.txt")
def robots() -> Response:
    site_url = current_app.config["SITE_URL"].rstrip("/")
    lines = [
        "User-agent: *",
        "Allow: /",
        # The API and a patient's confirmation page are nobody's search result.
        "Disallow: /api/",
        "Disallow: /book/confirmed",
        f"Sitemap: {site_url}{url_for('pages.sitemap')}",
    ]
    fast_path.mark_shareable()  # config and routes only: the same for everyone
    return Response("\n".join(lines) + "\n", mimetype="text/plain")


@bp.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for /favicon.ico whatever the page says; serve the static copy.
    return current_app.send_static_file("img/favicon.ico")
