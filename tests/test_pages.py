"""Content pages: each answers with its own title and one h1, shows crisis help, and reads well."""

from __future__ import annotations

import os
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy.exc import OperationalError
from tests_support import PAGE_PATHS

from microsite import create_app
from microsite.views import pages

CRISIS_SENTENCE = "This site is not an emergency service."
PLACEHOLDER_LABEL = "Placeholder — the clinic will replace this text"


class PageOutline(HTMLParser):
    """What a reader (or a screen reader) meets: headings, links, landmarks, the crisis box."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1s: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.main_links: list[tuple[str, str]] = []
        self.tags: list[tuple[str, dict]] = []
        self.crisis_text = ""
        self.text = ""
        self._stack: list[tuple[str, dict]] = []
        self._link: list | None = None

    def _inside(self, predicate) -> bool:
        return any(predicate(tag, attrs) for tag, attrs in self._stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in {"meta", "link", "br", "img", "input"}:
            return
        self._stack.append((tag, attrs))
        if tag == "h1":
            self.h1s.append("")
        if tag == "a":
            self._link = [attrs.get("href", ""), ""]

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            link = (self._link[0], " ".join(self._link[1].split()))
            self.links.append(link)
            if self._inside(lambda t, _a: t == "main"):
                self.main_links.append(link)
            self._link = None
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._inside(lambda t, _a: t == "title"):
            self.title += data
            return
        if self._inside(lambda t, _a: t in {"script", "style"}):
            return
        self.text += data
        if self._inside(lambda t, _a: t == "h1"):
            self.h1s[-1] += data
        if self._link is not None:
            self._link[1] += data
        if self._inside(lambda _t, a: "crisis" in (a.get("class") or "").split()):
            self.crisis_text += data


def outline(html: str) -> PageOutline:
    parser = PageOutline()
    parser.feed(html)
    parser.title = " ".join(parser.title.split())
    parser.crisis_text = " ".join(parser.crisis_text.split())
    parser.text = " ".join(parser.text.split())
    return parser


def get_page(client, path: str, status: int = 200) -> tuple[str, PageOutline]:
    response = client.get(path)
    assert response.status_code == status, path
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    return html, outline(html)


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_page_answers_with_its_own_title_and_exactly_one_h1(client, path):
    _, page = get_page(client, path)
    assert page.title.endswith(" — Bluewater Psychiatry")
    assert len(page.title) > len(" — Bluewater Psychiatry") + 5
    assert len(page.h1s) == 1, f"{path} has {len(page.h1s)} h1 elements"
    assert page.h1s[0].strip()


def test_every_page_has_a_different_title_and_heading(client):
    outlines = [get_page(client, path)[1] for path in PAGE_PATHS]
    assert len({page.title for page in outlines}) == len(PAGE_PATHS)
    assert len({page.h1s[0].strip() for page in outlines}) == len(PAGE_PATHS)


@pytest.mark.parametrize("path", [*PAGE_PATHS, "/no-such-page"])
def test_crisis_help_is_on_every_page_before_the_content(client, path):
    response = client.get(path)
    html = response.get_data(as_text=True)
    page = outline(html)
    assert page.crisis_text.startswith(CRISIS_SENTENCE)
    assert "988 (Suicide & Crisis Lifeline)" in page.crisis_text
    assert "call 911" in page.crisis_text
    hrefs = {href for href, _ in page.links}
    assert {"tel:988", "sms:988", "tel:911"} <= hrefs
    # First in the page, so a phone shows it without scrolling, whatever the content below.
    assert html.index('class="crisis"') < html.index("<header") < html.index("<main")


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_offers_a_way_to_book(client, path):
    _, page = get_page(client, path)
    assert ("/book/", "Book a consultation") in page.links


def test_home_page_has_a_clear_call_to_action_in_its_content(client):
    _, page = get_page(client, "/")
    assert ("/book/", "Book a consultation") in page.main_links
    assert "treatment-resistant depression" in page.h1s[0]


def test_pages_have_landmarks_and_a_skip_link(client):
    html, page = get_page(client, "/safety")
    assert html.startswith('<!doctype html>\n<html lang="en">')
    first_link = page.links[0]
    assert first_link == ("#main", "Skip to main content")
    tags = [(tag, attrs) for tag, attrs in page.tags]
    assert [attrs.get("id") for tag, attrs in tags if tag == "main"] == ["main"]
    assert sum(tag == "header" for tag, _ in tags) == 1
    assert sum(tag == "footer" for tag, _ in tags) == 1
    assert ("nav", "Main") in [(tag, attrs.get("aria-label")) for tag, attrs in tags]
    # The current page is announced in the menu.
    assert any(a.get("aria-current") == "page" and a.get("href") == "/safety" for _, a in tags)


def test_footer_links_to_the_privacy_notice(client):
    _, page = get_page(client, "/faq")
    assert ("/privacy", "Privacy notice") in page.links


def test_unknown_url_shows_a_friendly_404(client):
    html, page = get_page(client, "/no-such-page", status=404)
    assert page.h1s == ["Page not found"]
    assert "Reference for the clinic:" in page.text
    assert ("/", "Go to the home page") in page.links
    assert '<meta name="robots" content="noindex">' in html


def test_wrong_method_is_405(client):
    response = client.post("/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert CRISIS_SENTENCE in response.get_data(as_text=True)


def test_safety_page_names_every_risk_the_clinic_lists(client):
    _, page = get_page(client, "/safety")
    text = page.text.lower()
    for risk in ("nausea", "vomiting", "dizziness", "disorientation", "confusion"):
        assert risk in text
    assert "hallucinations or dissociative states" in text
    assert "medical supervision" in text


def test_who_it_may_help_explains_treatment_resistant_depression(client):
    _, page = get_page(client, "/who-it-may-help")
    assert "Treatment-resistant depression (TRD)" in page.text
    assert "depression that has not improved with traditional treatments" in page.text


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_copy_is_calm_not_salesy(client, path):
    _, page = get_page(client, path)
    text = page.text.lower()
    for phrase in ("terrific", "happier life", "life-changing", "reaping", "today!"):
        assert phrase not in text


@pytest.mark.parametrize("path", ["/what-to-expect", "/faq", "/about", "/privacy"])
def test_text_the_clinic_must_write_is_visibly_marked(client, path):
    html, page = get_page(client, path)
    assert PLACEHOLDER_LABEL in page.text
    assert '<div class="admonition placeholder">' in html


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_no_unfilled_placeholder_reaches_a_reader(client, path):
    _, page = get_page(client, path)
    assert "{{" not in page.text
    assert "}}" not in page.text


def test_privacy_notice_says_what_is_collected_and_why(client):
    _, page = get_page(client, "/privacy")
    text = page.text
    for item in ("your name", "email address", "mobile phone number", "date of birth", "note"):
        assert item in text
    assert "only to book your first consultation and to contact you about it" in text
    assert "no analytics, advertising or social media trackers" in text
    assert "one session cookie" in text
    assert "confidential health information" in text
    retention = text.split("How long we keep your information", 1)[1]
    assert retention.lstrip().startswith(PLACEHOLDER_LABEL)


def test_clinic_facts_come_from_config(app_config):
    app_config.update(
        CLINIC_PHONE="+1 555 0100",
        CLINIC_EMAIL="front-desk@clinic.test",
        CLINIC_STREET="7 Quay Lane",
    )
    client = create_app(app_config).test_client()
    _, page = get_page(client, "/about")
    assert "+1 555 0100" in page.text
    assert "front-desk@clinic.test" in page.text
    assert "7 Quay Lane" in page.text
    assert ("tel:+15550100", "+1 555 0100") in page.links
    assert "207 555 0142" not in page.text
    # Copy in Markdown names the phone as {{clinic_phone}}, so it changes too.
    _, privacy = get_page(client, "/privacy")
    assert ("tel:+15550100", "+1 555 0100") in privacy.links


def test_clinic_facts_in_markdown_copy_are_escaped(app_config):
    app_config["CLINIC_NAME"] = "Smith & <b>Jones</b>"
    client = create_app(app_config).test_client()
    html, page = get_page(client, "/privacy")
    assert "Smith &amp; &lt;b&gt;Jones&lt;/b&gt;" in html
    assert "<b>Jones</b>" not in html
    assert "Smith & <b>Jones</b>," in page.text


def test_edited_copy_shows_without_a_restart(client, monkeypatch, tmp_path, frozen_clock):
    monkeypatch.setattr(pages, "content_dir", lambda: tmp_path)
    faq = tmp_path / "faq.md"
    faq.write_text("Title: Questions\nDescription: d\nHeading: Your questions\n\nFirst answer.\n")
    assert "First answer." in get_page(client, "/faq")[1].text
    assert "First answer." in get_page(client, "/faq")[1].text  # now served from the cache
    faq.write_text("Title: Questions\nDescription: d\nHeading: Your questions\n\nSecond answer.\n")
    stat = faq.stat()
    os.utime(faq, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    # The files are looked at once per CONTENT_CHECK_SECONDS (1 s), not on every request.
    frozen_clock.advance(timedelta(seconds=1))
    _, page = get_page(client, "/faq")
    assert "Second answer." in page.text
    assert "First answer." not in page.text
    assert page.h1s == ["Your questions"]


def test_home_shows_an_edited_topic_summary(client, monkeypatch, tmp_path, frozen_clock):
    for spec in pages.PAGES:  # the home page lists every topic's heading and summary
        (tmp_path / f"{spec.slug}.md").write_text(
            f"Title: {spec.slug}\nDescription: d\nHeading: {spec.slug} heading\n"
            f"Summary: old summary of {spec.slug}\n\nBody.\n"
        )
    monkeypatch.setattr(pages, "content_dir", lambda: tmp_path)
    assert "old summary of safety" in get_page(client, "/")[1].text
    (tmp_path / "safety.md").write_text(
        "Title: s\nDescription: d\nHeading: Safety heading\nSummary: new summary\n\nBody.\n"
    )
    stat = (tmp_path / "safety.md").stat()
    os.utime(tmp_path / "safety.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    frozen_clock.advance(timedelta(seconds=1))
    text = get_page(client, "/")[1].text
    assert "new summary" in text
    assert "old summary of safety" not in text


def test_a_content_file_cannot_add_a_second_h1():
    with pytest.raises(pages.ContentError, match="## headings"):
        pages.parse_content("Title: t\nDescription: d\nHeading: h\n\n# Another h1\n")


def test_a_content_file_needs_its_front_matter():
    with pytest.raises(pages.ContentError, match="description, heading"):
        pages.parse_content("Title: t\n\nBody.\n")


def _app_with_failing_route(app_config, error: Exception):
    app = create_app(app_config)

    def fail():
        raise error

    app.add_url_rule("/book/fail", "fail", fail, methods=["GET", "POST"])
    return app.test_client()


def test_server_error_page_is_friendly_and_hides_the_traceback(app_config):
    client = _app_with_failing_route(app_config, RuntimeError("secret internals"))
    html, page = get_page(client, "/book/fail", status=500)
    assert page.h1s == ["Something went wrong"]
    assert "call us so we can check whether your booking went through" in page.text
    assert "Reference for the clinic:" in page.text
    assert CRISIS_SENTENCE in page.text
    for leak in ("Traceback", "RuntimeError", "secret internals"):
        assert leak not in html


def test_database_outage_page_says_nothing_was_booked(app_config):
    outage = OperationalError("INSERT INTO booking", {}, Exception("database is locked"))
    app_config["WTF_CSRF_ENABLED"] = False
    client = _app_with_failing_route(app_config, outage)
    response = client.post("/book/fail")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    page = outline(response.get_data(as_text=True))
    assert "Nothing was booked." in page.text
    assert "Please try again in a minute." in page.text
    assert ("tel:+12075550142", "+1 207 555 0142") in page.main_links
    assert "database is locked" not in page.text
