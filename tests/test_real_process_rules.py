"""With real gunicorn workers, buffers and daily caps hold under concurrency, and the rate limit
is shared by every worker through Redis.

Buffers are refused by the database itself (the buffered-span constraint); the daily cap, which
no constraint can express, by the re-check under the per-clinician lock (PostgreSQL) or the
single-writer lock (SQLite). SQLite always; PostgreSQL when MICROSITE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from live_server import (
    BACKENDS,
    REQUEST_TIMEOUT_S,
    LiveServer,
    all_at_once,
    app_env,
    assert_clean_server_log,
    migrated_database,
    open_forms,
    post_booking,
    scalar,
    seed_app_on,
    seed_clinic,
    slot_key,
    tomorrow_at,
)

pytestmark = pytest.mark.slow

RACERS = 30
DAILY_CAP = 3
REDIS_URL = "redis://127.0.0.1:6379/11"  # this project's Redis database: number 11 only


@pytest.fixture(scope="module", params=BACKENDS)
def live_database(request, tmp_path_factory) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("rules")) as url:
        yield url


@pytest.fixture(scope="module")
def seed_app(live_database):
    with seed_app_on(live_database) as app:
        yield app


@pytest.fixture(scope="module")
def server(live_database, tmp_path_factory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("rules") / "gunicorn.log"
    with LiveServer(app_env(live_database), log, workers=4) as live:
        yield live


def make_clinic(seed_app, **rules) -> tuple[int, int]:
    """A clinician working 07:00-21:00 daily and a 15-minute video type bookable at once."""
    return seed_clinic(
        seed_app, duration_minutes=15, slot_interval_minutes=15, mode="video", **rules
    )


def distinct_times(clinician_id: int, count: int) -> list[str]:
    """`count` back-to-back 15-minute times from 07:00 tomorrow: no two appointments overlap."""
    return [
        slot_key(clinician_id, tomorrow_at(7 + (15 * n) // 60, (15 * n) % 60)) for n in range(count)
    ]


def race(server: LiveServer, type_id: int, keys: list[str]) -> Counter:
    forms = open_forms(server, type_id, keys)
    responses = all_at_once(
        [lambda b=browser, d=body: post_booking(b, server, d) for browser, body in forms]
    )
    return Counter(response.status_code for response in responses)


def active_count(seed_app, clinician_id: int) -> int:
    sql = "SELECT count(*) FROM booking WHERE clinician_id = :c AND status <> 'cancelled'"
    return scalar(seed_app, sql, c=clinician_id)


def test_thirty_times_that_conflict_only_through_buffers_make_one_booking(
    server,
    seed_app,
):
    # 15-minute consultations back to back, each followed by 8 hours' buffer: every pair
    # conflicts through a buffer, none through the appointments themselves.
    clinician_id, type_id = make_clinic(seed_app, buffer_after_minutes=8 * 60)
    codes = race(server, type_id, distinct_times(clinician_id, RACERS))
    assert codes == {303: 1, 409: RACERS - 1}
    assert active_count(seed_app, clinician_id) == 1
    assert_clean_server_log(server)


def test_thirty_times_racing_past_a_daily_cap_make_exactly_the_cap(
    server,
    seed_app,
):
    clinician_id, type_id = make_clinic(seed_app, daily_cap=DAILY_CAP)
    codes = race(server, type_id, distinct_times(clinician_id, RACERS))
    assert codes == {303: DAILY_CAP, 409: RACERS - DAILY_CAP}
    assert active_count(seed_app, clinician_id) == DAILY_CAP
    assert_clean_server_log(server)


# --- the rate limit, shared by four workers through Redis ----------------------------------------


@pytest.fixture
def redis_db() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL} ({error}); CI and this machine have one")
    client.flushdb()  # database 11 only: ours
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def test_four_workers_share_one_limit_through_redis_and_spoofed_headers_do_not_escape(
    live_database,
    seed_app,
    redis_db,
    tmp_path,
):
    if live_database.startswith("postgresql"):
        pytest.skip("the limiter does not depend on the database: proven once, on SQLite")
    env = app_env(
        live_database,
        MICROSITE_RATELIMIT_ENABLED="true",
        MICROSITE_RATELIMIT_STORAGE_URI=redis_db,
        MICROSITE_RATELIMIT_BOOKING="5 per minute",
    )
    clinician_id, type_id = make_clinic(seed_app)
    with LiveServer(env, tmp_path / "limited.log", workers=4) as limited:
        forms = open_forms(limited, type_id, distinct_times(clinician_id, 40))

        def send(browser: requests.Session, body: dict, n: int) -> requests.Response:
            return browser.post(
                f"{limited.url}/book/details",
                data=body,
                headers={"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"203.0.113.{n}"},
                allow_redirects=False,
                timeout=REQUEST_TIMEOUT_S,
            )

        responses = all_at_once(
            [lambda b=b, d=d, n=n: send(b, d, n) for n, (b, d) in enumerate(forms)]
        )
        assert_clean_server_log(limited)
    codes = Counter(response.status_code for response in responses)
    assert codes == {303: 5, 429: 35}
    assert all(r.headers["Retry-After"].isdigit() for r in responses if r.status_code == 429)
    assert active_count(seed_app, clinician_id) == 5
