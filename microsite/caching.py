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

from . import clock

MAX_ENTRIES = 512
_EXTENSION_KEY = "short_caches"
_MISSING = object()


class ShortCache:
    """A TTL cache timed by the clock seam, so tests that freeze the clock control expiry."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()  # the dev server and threaded workers share the process
        self._entries: TTLCache = TTLCache(
            maxsize=MAX_ENTRIES, ttl=max(seconds, 0.001), timer=lambda: clock.now().timestamp()
        )

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if self.seconds <= 0:
            return compute()
        with self._lock:
            # One look-up, not `in` then `[]`: the entry can expire between the two (the timer
            # is read each time), which raised KeyError under load.
            value = self._entries.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = compute()
        with self._lock:
            self._entries[key] = value
        return value

    def get(self, key: Hashable) -> Any:
        """The entry, or None when absent, expired or caching is off (a `page_cache` store)."""
        if self.seconds <= 0:
            return None
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        if self.seconds > 0:
            with self._lock:
                self._entries[key] = value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


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
