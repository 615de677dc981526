"""Short-lived, per-process caches for the two hottest reads: free-slot answers and the schedule.

Neither is ever the decision: every booking re-reads the bookings themselves inside its write
transaction, and the database refuses any overlap. So an answer a second or two old costs at
worst the "just taken" page, and the site's busiest reads skip the database. This process clears
its slot answers whenever it books or cancels; other processes' answers simply expire
(`SLOT_CACHE_SECONDS` for answers, `SCHEDULE_CACHE_SECONDS` for the schedule; 0 turns one off).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache
from flask import Flask, current_app

from . import clock, fast_path

MAX_ENTRIES = 512
_EXTENSION_KEY = "short_caches"
_MISSING = object()


class ShortCache:
    """A TTL cache timed by the clock seam, so tests that freeze the clock control expiry.

    Every read inside a request tells `fast_path` how long the answer it feeds stays good (the
    entry's own expiry) and that it must be forgotten when this cache is cleared (`generation`).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.generation = 0  # bumped by clear(): answers built from the old entries are stale
        self._lock = threading.Lock()  # the dev server and threaded workers share the process
        self._entries: TTLCache = TTLCache(
            maxsize=MAX_ENTRIES, ttl=max(seconds, 0.001), timer=_timestamp
        )

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if self.seconds <= 0:
            fast_path.limit(0.0)  # nothing cached: nothing built from this may be kept
            return compute()
        with self._lock:
            # One look-up, not `in` then `[]`: the entry can expire between the two (the timer
            # is read each time), which raised KeyError under load.
            stored = self._entries.get(key, _MISSING)
        if stored is not _MISSING:
            value, expires_at = stored
            fast_path.limit(expires_at, self)
            return value
        generation = self.generation
        value = compute()
        self._store(key, value, generation)
        return value

    def get(self, key: Hashable) -> Any:
        """The entry, or None when absent, expired or caching is off (a `page_cache` store)."""
        if self.seconds <= 0:
            return None
        with self._lock:
            stored = self._entries.get(key)
        if stored is None:
            return None
        value, expires_at = stored
        fast_path.limit(expires_at, self)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.seconds > 0:
            self._store(key, value, self.generation)
        else:
            fast_path.limit(0.0)

    def _store(self, key: Hashable, value: Any, generation: int) -> None:
        expires_at = _timestamp() + self.seconds
        with self._lock:
            # A clear() while this was computed (a booking in another thread) makes it stale:
            # serve it to this request, but keep it for no one else.
            if self.generation == generation:
                self._entries[key] = (value, expires_at)
        # A clear() while computing leaves the answer stale from the start.
        fast_path.limit(expires_at, self, generation)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1


def _timestamp() -> float:
    return clock.now().timestamp()


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION_KEY] = {
        # free slots (and pages listing them): change with every booking
        "availability": ShortCache(app.config["SLOT_CACHE_SECONDS"]),
        # hours, closures, clinicians, consultation types: change only when staff edit them
        "schedule": ShortCache(app.config["SCHEDULE_CACHE_SECONDS"]),
    }


def availability_cache() -> ShortCache:
    return current_app.extensions[_EXTENSION_KEY]["availability"]


def schedule_cache() -> ShortCache:
    return current_app.extensions[_EXTENSION_KEY]["schedule"]
