"""The WSGI fast path in front of Flask: byte-identical answers, or Flask itself.

Every fast-pathed URL is asked three times with the same request: once to let Flask answer
(and the fast path record), once straight to Flask's own WSGI app, once to the fast path. With
the nonce and request id made predictable, the last two must be equal to the byte: status,
every header in order, body, and the request log line. Then the conditions under which the
fast path must step aside, and the invalidations it must honour.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import timedelta

import pytest
from booking_helpers import submit
from flask import g, make_response, session
from werkzeug.test import EnvironBuilder, run_wsgi_app

from microsite import create_app, fast_path, security
from microsite.extensions import db
from microsite.models.feeds import FeedToken
from microsite.services import feeds
from microsite.views import pages

TUESDAY = "2026-12-01"
TUESDAY_9AM_KEY = "any-20261201T1400Z"
FIXED_NONCE = "FixedNonceForParity_22"  # 22 characters, like secrets.token_urlsafe(16)
FIXED_UUID = uuid.UUID("0123456789abcdef0123456789abcdef")
NONCE_IN_HEADER = re.compile(r"'nonce-([^']+)'")


@pytest.fixture
def app_config(app_config):
    # Production defaults for every cache the fast path leans on.
    app_config.update(SLOT_CACHE_SECONDS=2, SCHEDULE_CACHE_SECONDS=60)
    return app_config


@pytest.fixture
def consultation_type(app, frozen_clock, make_clinician, make_consultation_type):
    make_clinician()
    return make_consultation_type()


class Counting:
    """Stands in for Flask's WSGI app behind the fast path, counting the requests it gets."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.inner(environ, start_response)


@pytest.fixture
def fast(app) -> fast_path.FastPath:
    layer = app.extensions["fast_path"]
    layer.app = Counting(layer.app)
    return layer


def ask(wsgi_app, path: str, method: str = "GET", https: bool = False, **headers):
    base = "https://localhost" if https else "http://localhost"
    environ = EnvironBuilder(path=path, method=method, base_url=base, headers=headers).get_environ()
    body, status, response_headers = run_wsgi_app(wsgi_app, environ, buffered=True)
    return status, list(response_headers.items()), b"".join(body)


def request_lines(caplog) -> list[dict]:
    lines = []
    for record in caplog.records:
        if record.name == "microsite.request":
            fields = {k: getattr(record, k) for k in ("event", "request_id", "method", "path")}
            fields.update(status=record.status, level=record.levelno, message=record.getMessage())
            lines.append(fields)
    caplog.clear()
    return lines


def fast_pathed_urls(type_id: int) -> list[str]:
    return [
        *(spec.path for spec in pages.PAGES),
        "/book/",
        f"/book/?type={type_id}&week={TUESDAY}",
        f"/book/?type={type_id}",
        f"/api/slots?type={type_id}&days=7",
        f"/api/slots?type={type_id + 1000}&days=7",  # a cached 400
        f"/book/first-available?type={type_id}",  # a 303 to the first free day
        "/sitemap.xml",
        "/robots.txt",
    ]


def assert_parity(fast, caplog, path: str, method="GET", https=False, **headers):
    """Flask answers once (recorded); then Flask directly and the fast path must agree."""
    caplog.set_level(logging.DEBUG, logger="microsite.request")
    ask(fast, path, method, https, **headers)  # Flask's, unless already recorded
    request_lines(caplog)
    by_flask = ask(fast.app, path, method, https, **headers)
    flask_line = request_lines(caplog)
    calls = fast.app.calls
    by_fast = ask(fast, path, method, https, **headers)
    assert fast.app.calls == calls, f"{method} {path} was not answered by the fast path"
    fast_line = request_lines(caplog)
    assert by_fast == by_flask, f"{method} {path}: the fast answer differs from Flask's"
    assert fast_line == flask_line
    assert len(fast_line) == 1
    return by_fast


@pytest.fixture
def predictable(monkeypatch):
    """The same nonce and request id for every response, so answers can be compared whole."""
    monkeypatch.setattr(security, "new_nonce", lambda: FIXED_NONCE)
    monkeypatch.setattr(uuid, "uuid4", lambda: FIXED_UUID)


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_fast_pathed_url_answers_exactly_as_flask(
    fast, consultation_type, caplog, predictable, method, https
):
    for path in fast_pathed_urls(consultation_type.id):
        status, headers, body = assert_parity(fast, caplog, path, method, https)
        names = [name for name, _ in headers]
        assert ("Strict-Transport-Security" in names) == https
        assert "X-Request-Id" in names
        assert "Set-Cookie" not in names
        if method == "HEAD":
            assert body == b""
    # And with the proxy's own request id.
    for path in ("/faq", f"/api/slots?type={consultation_type.id}&days=7"):
        _, headers, _ = assert_parity(
            fast, caplog, path, method, https, **{"X-Request-Id": "proxy-id-12345"}
        )
        assert ("X-Request-Id", "proxy-id-12345") in headers


def test_the_feeds_304_answers_exactly_as_flask(fast, consultation_type, caplog, predictable):
    token = feeds.create_feed(None)
    path = feeds.FEED_PATH.format(token=token)
    first = ask(fast, path)
    etag = dict(first[1])["ETag"]
    last_modified = dict(first[1])["Last-Modified"]
    for method in ("GET", "HEAD"):
        status, _, body = assert_parity(fast, caplog, path, method, **{"If-None-Match": etag})
        assert status.startswith("304")
        assert body == b""
        assert_parity(fast, caplog, path, method, **{"If-Modified-Since": last_modified})
    # The log line never holds the token, from either path.
    caplog.set_level(logging.INFO, logger="microsite.request")
    ask(fast, path, **{"If-None-Match": etag})
    assert [line["path"] for line in request_lines(caplog)] == ["/feeds/….ics"]
    assert token not in caplog.text


def test_each_fast_answer_has_its_own_nonce_and_request_id(client, fast, consultation_type):
    seen = set()
    for _ in range(3):
        response = client.get("/faq")
        nonce = NONCE_IN_HEADER.search(response.headers["Content-Security-Policy"]).group(1)
        page_nonces = set(re.findall(r'nonce="([^"]*)"', response.get_data(as_text=True)))
        assert page_nonces == {nonce}
        seen.add((nonce, response.headers["X-Request-Id"]))
    assert fast.app.calls == 1
    assert len({n for n, _ in seen}) == len({r for _, r in seen}) == 3


def test_a_request_with_a_cookie_goes_through_flask(fast, consultation_type):
    ask(fast, "/faq")
    calls = fast.app.calls
    ask(fast, "/faq", Cookie="session=anything")
    ask(fast, "/faq", Authorization="Basic eDp5")
    assert fast.app.calls == calls + 2


def test_writes_and_other_queries_go_through_flask(fast, consultation_type):
    ask(fast, "/faq")
    ask(fast, f"/api/slots?type={consultation_type.id}&days=7")
    calls = fast.app.calls
    assert ask(fast, "/faq", method="POST")[0].startswith("405")
    ask(fast, "/faq?utm=1")
    ask(fast, f"/api/slots?type={consultation_type.id}&days=6")
    ask(fast, f"/api/slots?days=7&type={consultation_type.id}")
    assert fast.app.calls == calls + 4


def test_an_unknown_host_is_refused_by_flask_every_time(fast, consultation_type):
    ask(fast, "/faq")
    for _ in range(2):
        environ = EnvironBuilder(path="/faq", base_url="http://evil.example").get_environ()
        _body, status, _headers = run_wsgi_app(fast, environ, buffered=True)
        assert status.startswith("400")
    assert fast.app.calls == 3


@pytest.mark.parametrize("setting", [{"PAGE_CACHE": False}, {"DEBUG": True}])
def test_off_with_the_page_cache_and_in_debug_mode(app_config, setting):
    app = create_app({**app_config, **setting})
    layer = app.extensions["fast_path"]
    layer.app = Counting(layer.app)
    for _ in range(3):
        assert ask(layer, "/faq")[0].startswith("200")
    assert layer.app.calls == 3
    assert len(layer) == 0


def test_an_answer_that_sets_a_cookie_or_shows_its_request_id_is_never_kept(app, fast):
    def writes_session():
        fast_path.mark_shareable()
        session["seen"] = True
        return "hello"

    def sets_cookie():
        fast_path.mark_shareable()
        response = make_response("hello")
        response.set_cookie("seen", "1")
        return response

    def shows_id():
        fast_path.mark_shareable()
        return f"request {g.request_id}"

    app.add_url_rule("/test/session", "test_session", writes_session)
    app.add_url_rule("/test/cookie", "test_cookie", sets_cookie)
    app.add_url_rule("/test/id", "test_id", shows_id)
    for path in ("/test/session", "/test/cookie", "/test/id"):
        answers = [ask(fast, path) for _ in range(2)]
        assert answers[0][0].startswith("200")
    assert answers[0][2] != answers[1][2]  # each shows its own id
    assert fast.app.calls == 6
    assert len(fast) == 0


def test_a_content_edit_shows_within_the_content_check(
    client, fast, monkeypatch, tmp_path, frozen_clock
):
    monkeypatch.setattr(pages, "content_dir", lambda: tmp_path)
    faq = tmp_path / "faq.md"
    faq.write_text("Title: Q\nDescription: d\nHeading: Your questions\n\nFirst answer.\n")
    assert "First answer." in client.get("/faq").get_data(as_text=True)
    faq.write_text("Title: Q\nDescription: d\nHeading: Your questions\n\nSecond answer.\n")
    assert "First answer." in client.get("/faq").get_data(as_text=True)  # from memory
    assert fast.app.calls == 1
    frozen_clock.advance(timedelta(seconds=1))  # CONTENT_CHECK_SECONDS
    assert "Second answer." in client.get("/faq").get_data(as_text=True)


def slot_keys(client, type_id: int) -> list[str]:
    answer = json.loads(client.get(f"/api/slots?type={type_id}&days=7").get_data())
    return [slot["key"] for slot in answer["slots"]]


def test_a_booking_in_this_process_clears_the_fast_slot_answers(client, fast, consultation_type):
    assert TUESDAY_9AM_KEY in slot_keys(client, consultation_type.id)
    assert TUESDAY_9AM_KEY in slot_keys(client, consultation_type.id)
    patient = client.application.test_client()  # a browser with its own session
    assert submit(patient, consultation_type.id, TUESDAY_9AM_KEY).status_code == 303
    calls_after_booking = fast.app.calls
    assert TUESDAY_9AM_KEY not in slot_keys(client, consultation_type.id)
    assert fast.app.calls == calls_after_booking + 1  # Flask answered it, not the memory


def test_slot_answers_live_no_longer_than_their_cache(
    client, fast, consultation_type, make_booking, frozen_clock
):
    from datetime import UTC, datetime

    assert TUESDAY_9AM_KEY in slot_keys(client, consultation_type.id)
    # Booked by another process: this one learns of it when its cached answer expires.
    from microsite.models import Clinician

    clinician = db.session.query(Clinician).one()
    make_booking(clinician, consultation_type, datetime(2026, 12, 1, 14, 0, tzinfo=UTC))
    assert TUESDAY_9AM_KEY in slot_keys(client, consultation_type.id)
    frozen_clock.advance(timedelta(seconds=2))  # SLOT_CACHE_SECONDS
    assert TUESDAY_9AM_KEY not in slot_keys(client, consultation_type.id)


def test_the_first_free_time_leads_on_when_what_it_read_changes(
    client, fast, consultation_type, frozen_clock
):
    from datetime import UTC, datetime

    from microsite.models import Closure

    def leads_to() -> str:
        status, headers, _ = ask(fast, f"/book/first-available?type={consultation_type.id}")
        assert status.startswith("303")
        return dict(headers)["Location"]

    assert "day=2026-12-01" in leads_to()  # Tuesday: Monday 8 am is inside the notice
    calls = fast.app.calls
    assert "day=2026-12-01" in leads_to()
    assert fast.app.calls == calls  # answered from memory
    # The whole of Tuesday closed by another process: seen once the schedule it was read from
    # (SCHEDULE_CACHE_SECONDS) and a free-slot answer built just before that (SLOT_CACHE_SECONDS)
    # have expired, as on the picker it leads to.
    tuesday_utc = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # midnight in New York
    db.session.add(
        Closure(starts_at=tuesday_utc, ends_at=tuesday_utc + timedelta(days=1), reason="x")
    )
    db.session.commit()
    assert "day=2026-12-01" in leads_to()
    frozen_clock.advance(timedelta(seconds=59))
    assert "day=2026-12-01" in leads_to()
    frozen_clock.advance(timedelta(seconds=3))  # 60 + 2
    assert "day=2026-12-02" in leads_to()
    # A booking in this process forgets the stored redirect at once.
    patient = client.application.test_client()
    assert submit(patient, consultation_type.id, "any-20261202T1400Z").status_code == 303
    calls = fast.app.calls
    assert "day=2026-12-02" in leads_to()
    assert fast.app.calls == calls + 1  # Flask answered it, not the memory


def test_without_the_slot_cache_every_answer_is_flasks(app_config, consultation_type):
    app = create_app({**app_config, "SLOT_CACHE_SECONDS": 0})
    layer = app.extensions["fast_path"]
    layer.app = Counting(layer.app)
    for _ in range(3):
        ask(layer, f"/api/slots?type={consultation_type.id}&days=7")
    assert layer.app.calls == 3


def test_a_revoked_feed_is_404_at_once_here_and_within_the_ttl_elsewhere(
    app, fast, consultation_type, frozen_clock
):
    token = feeds.create_feed(None)
    path = feeds.FEED_PATH.format(token=token)
    etag = dict(ask(fast, path)[1])["ETag"]
    for _ in range(2):
        assert ask(fast, path, **{"If-None-Match": etag})[0].startswith("304")
    assert feeds.revoke_feed(None)
    assert ask(fast, path, **{"If-None-Match": etag})[0].startswith("404")

    token = feeds.create_feed(None)
    path = feeds.FEED_PATH.format(token=token)
    etag = dict(ask(fast, path)[1])["ETag"]
    assert ask(fast, path, **{"If-None-Match": etag})[0].startswith("304")
    # Revoked by another process: a 304 (no data) until FEED_VALIDATOR_SECONDS have passed.
    db.session.query(FeedToken).update({"revoked_at": frozen_clock()})
    db.session.commit()
    assert ask(fast, path, **{"If-None-Match": etag})[0].startswith("304")
    frozen_clock.advance(timedelta(seconds=app.config["FEED_VALIDATOR_SECONDS"]))
    assert ask(fast, path, **{"If-None-Match": etag})[0].startswith("404")
    # A request whose validators do not match is always Flask's (a full feed, or a 404).
    calls = fast.app.calls
    ask(fast, path, **{"If-None-Match": '"other"'})
    assert fast.app.calls == calls + 1


def test_behind_proxyfix_the_fast_path_sees_the_forwarded_scheme(app_config, consultation_type):
    app = create_app({**app_config, "PROXY_FIX_X_PROTO": 1})
    layer = app.extensions["fast_path"]
    assert app.wsgi_app.app is layer  # ProxyFix outside, then the fast path, then Flask
    layer.app = Counting(layer.app)
    for _ in range(2):
        _, over_https, _ = ask(app.wsgi_app, "/faq", **{"X-Forwarded-Proto": "https"})
        _, over_http, _ = ask(app.wsgi_app, "/faq")
        assert "Strict-Transport-Security" in dict(over_https)
        assert "Strict-Transport-Security" not in dict(over_http)
    assert layer.app.calls == 2  # one Flask answer per scheme, then memory


def test_an_answer_computed_across_a_clear_is_not_kept(frozen_clock):
    from microsite.caching import ShortCache

    cache = ShortCache(2)

    def compute_while_someone_books():
        cache.clear()  # another thread's booking lands while this answer is being built
        return "stale"

    assert cache.get_or_compute("k", compute_while_someone_books) == "stale"
    assert cache.get("k") is None
    assert cache.get_or_compute("k", lambda: "fresh") == "fresh"
    assert cache.get("k") == "fresh"
