"""Short-lived, per-process caches for the two hottest reads: free-slot answers and the schedule.

Neither is ever the decision: every booking re-reads the bookings themselves inside its write
transaction, and the database refuses any overlap. So an answer a second or two old costs at
worst the "just taken" page, and the site's busiest reads skip the database. This process clears
its slot answers whenever it books or cancels; other processes' answers simply expire
(`SLOT_CACHE_SECONDS`; 0 turns both caches off).
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
            if key in self._entries:
                return self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def init_app(app: Flask) -> None:
    seconds = app.config["SLOT_CACHE_SECONDS"]
    app.extensions[_EXTENSION_KEY] = {
        "availability": ShortCache(seconds),  # free slots: change with every booking
        "schedule": ShortCache(seconds),  # hours, closures, consultation rules: rarely change
    }


def availability_cache() -> ShortCache:
    return current_app.extensions[_EXTENSION_KEY]["availability"]


def schedule_cache() -> ShortCache:
    return current_app.extensions[_EXTENSION_KEY]["schedule"]
