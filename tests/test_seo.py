"""Web conventions: titles, descriptions, canonical and Open Graph tags, JSON-LD, sitemap, robots,
favicon, no third-party origins, and a light home page."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from tests_support import PAGE_PATHS

from microsite import create_app

SITE_URL = "http://127.0.0.1:5000"  # the default config's SITE_URL
SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}
HOME_PAGE_BUDGET_BYTES = 40 * 1024


class HeadTags(HTMLParser):
    """The tags a browser, a search engine or a link preview reads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.meta: dict[str, str] = {}
        self.links: list[dict] = []
        self.scripts: list[tuple[dict, str]] = []
        self.resources: list[str] = []  # what the browser fetches on its own
        self.style_attributes = 0
        self.style_elements = 0
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.style_attributes += 1
        if tag == "meta":
            key = attrs.get("name") or attrs.get("property")
            if key:
                self.meta[key] = attrs.get("content", "")
        elif tag == "link":
            self.links.append(attrs)
            self.resources.append(attrs.get("href", ""))
        elif tag in {"script", "img", "iframe", "source", "video", "audio"}:
            if attrs.get("src"):
                self.resources.append(attrs["src"])
            if tag == "script":
                self.scripts.append((attrs, ""))
                self._in = "script"
        elif tag == "style":
            self.style_elements += 1
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag):
        if tag in {"script", "title"}:
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def link(self, rel: str) -> dict | None:
        return next((attrs for attrs in self.links if rel in attrs.get("rel", "").split()), None)


def head_tags(client, path: str, status: int = 200) -> tuple[HeadTags, object]:
    response = client.get(path)
    assert response.status_code == status, path
    parser = HeadTags()
    parser.feed(response.get_data(as_text=True))
    return parser, response


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_page_has_description_canonical_and_open_graph_tags(client, path):
    tags, _ = head_tags(client, path)
    title = tags.title.removesuffix(" — Bluewater Psychiatry")
    description = tags.meta["description"]
    assert 50 <= len(description) <= 200, description
    canonical = tags.link("canonical")["href"]
    assert canonical == SITE_URL + path
    assert tags.meta["og:url"] == canonical
    assert tags.meta["og:title"] == title
    assert tags.meta["og:description"] == description
    assert tags.meta["og:type"] == "website"
    assert tags.meta["og:site_name"] == "Bluewater Psychiatry"
    assert tags.meta["viewport"] == "width=device-width, initial-scale=1"


def test_every_page_has_its_own_description(client):
    descriptions = [head_tags(client, path)[0].meta["description"] for path in PAGE_PATHS]
    assert len(set(descriptions)) == len(PAGE_PATHS)


def test_error_pages_are_kept_out_of_search_results(client):
    tags, _ = head_tags(client, "/no-such-page", status=404)
    assert tags.meta["robots"] == "noindex"
    assert tags.link("canonical") is None


def _sitemap_urls(client) -> list[str]:
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ElementTree.fromstring(response.data)  # noqa: S314 - our own output, not user input
    return [loc.text for loc in root.findall("sm:url/sm:loc", SITEMAP_NS)]


def test_sitemap_lists_every_page_and_the_booking_page(client):
    urls = _sitemap_urls(client)
    assert sorted(urls) == sorted(SITE_URL + path for path in [*PAGE_PATHS, "/book/"])
    for url in urls:
        assert client.get(url.removeprefix(SITE_URL)).status_code == 200, url


def test_sitemap_uses_the_configured_site_url(app_config):
    app_config["SITE_URL"] = "https://bluewater.example/"
    client = create_app(app_config).test_client()
    urls = _sitemap_urls(client)
    assert "https://bluewater.example/" in urls
    assert "https://bluewater.example/safety" in urls
    assert all(url.startswith("https://bluewater.example/") and "//" not in url[8:] for url in urls)


def test_robots_txt_allows_pages_and_points_to_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    assert "User-agent: *" in lines
    assert "Disallow: /api/" in lines
    assert "Disallow: /book/confirmed" in lines
    assert f"Sitemap: {SITE_URL}/sitemap.xml" in lines
    assert "Disallow: /" not in lines


def _json_ld(tags: HeadTags) -> tuple[dict, dict]:
    blocks = [(a, text) for a, text in tags.scripts if a.get("type") == "application/ld+json"]
    assert len(blocks) == 1
    attrs, text = blocks[0]
    return attrs, json.loads(text)


def test_json_ld_describes_the_clinic(client):
    tags, response = head_tags(client, "/")
    attrs, clinic = _json_ld(tags)
    assert f"'nonce-{attrs['nonce']}'" in response.headers["Content-Security-Policy"]
    assert clinic["@context"] == "https://schema.org"
    assert clinic["@type"] == "MedicalClinic"
    assert clinic["name"] == "Bluewater Psychiatry"
    assert clinic["telephone"] == "+1 207 555 0142"
    assert clinic["email"] == "hello@bluewater-psychiatry.example"
    assert clinic["url"] == SITE_URL + "/"
    assert clinic["medicalSpecialty"] == "Psychiatric"
    address = clinic["address"]
    assert address["@type"] == "PostalAddress"
    assert address["streetAddress"] == "100 Harbor Street, Suite 200"
    assert (address["addressLocality"], address["addressRegion"]) == ("Portland", "ME")
    assert (address["postalCode"], address["addressCountry"]) == ("04101", "US")


def test_json_ld_cannot_be_broken_out_of_by_a_config_value(app_config):
    hostile = "Blue</script><script>alert(1)</script>"
    app_config.update(CLINIC_NAME=hostile, CLINIC_PHONE="+1 555 0100")
    client = create_app(app_config).test_client()
    tags, response = head_tags(client, "/")
    assert "<script>alert(1)" not in response.get_data(as_text=True)
    _, clinic = _json_ld(tags)
    assert clinic["name"] == hostile
    assert clinic["telephone"] == "+1 555 0100"


@pytest.mark.parametrize("path", [*PAGE_PATHS, "/no-such-page"])
def test_nothing_is_loaded_from_another_origin(client, path):
    tags, response = head_tags(client, path, status=404 if "no-such" in path else 200)
    assert tags.resources, "expected at least the stylesheet"
    for url in tags.resources:
        # Relative, or the site's own absolute URL (a canonical link); nothing else.
        local = url.removeprefix(SITE_URL) if url.startswith(SITE_URL + "/") else url
        parts = urlsplit(local)
        assert not parts.scheme, f"{path} references {url}"
        assert not parts.netloc, f"{path} references {url}"
        assert client.get(local).status_code == 200, url
    # The CSP allows no inline style and only nonce-carrying inline scripts.
    assert tags.style_attributes == 0
    assert tags.style_elements == 0
    nonce = response.headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    for attrs, _ in tags.scripts:
        assert attrs.get("src") or attrs.get("nonce") == nonce


def test_home_page_with_its_css_and_js_stays_under_40_kb(client):
    response = client.get("/")
    total = len(response.data)
    tags = HeadTags()
    tags.feed(response.get_data(as_text=True))
    stylesheets = [a["href"] for a in tags.links if "stylesheet" in a.get("rel", "").split()]
    scripts = [a["src"] for a, _ in tags.scripts if a.get("src")]
    assert stylesheets
    for url in stylesheets + scripts:
        asset = client.get(url)
        assert asset.status_code == 200, url
        total += len(asset.data)
        asset.close()
    assert total < HOME_PAGE_BUDGET_BYTES, f"home page weighs {total} bytes"


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.data[:4] == b"\x00\x00\x01\x00"  # ICO header: reserved 0, type 1 (icon)
    assert response.mimetype in {"image/vnd.microsoft.icon", "image/x-icon"}
    response.close()
    tags, _ = head_tags(client, "/")
    svg_icon = next(a for a in tags.links if a.get("type") == "image/svg+xml")
    svg = client.get(svg_icon["href"])
    root = ElementTree.fromstring(svg.data)  # noqa: S314 - our own static file
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    svg.close()
