"""SQLite's storage: can the database file, its folder and its disk take a booking right now?

Asked before every write transaction (a few system calls, no database access) and by /readyz,
so the two always agree. The disk counts as full below STORAGE_MIN_FREE_BYTES rather than at
zero: SQLite fails only when its WAL must grow, which may be half-way through a commit, and the
operator needs a warning before the last byte goes. PostgreSQL's disk is the server's business:
its errors (disk full included) reach us as database errors and give the same 503.
"""

from __future__ import annotations

import os

from flask import current_app, has_app_context

from .faults import StorageUnavailable

DEFAULT_MIN_FREE_BYTES = 50 * 1024 * 1024


def writable(path: str) -> bool:
    """The database file and its WAL companions (those that exist) and their folder can be
    written by this process: SQLite opens a connection read-only if any of them cannot."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return all(
        not os.path.exists(name) or os.access(name, os.R_OK | os.W_OK)
        for name in (path, f"{path}-wal", f"{path}-shm")
    )


def free_bytes(path: str) -> int:
    """Bytes free for this process on the disk holding the database's folder."""
    stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    return stats.f_bavail * stats.f_frsize


def min_free_bytes() -> int:
    if has_app_context():
        return int(current_app.config.get("STORAGE_MIN_FREE_BYTES", DEFAULT_MIN_FREE_BYTES))
    return DEFAULT_MIN_FREE_BYTES


def problems(path: str) -> dict[str, str]:
    """What stops the database taking a write: {"file": ..., "disk": ...}, empty when nothing."""
    found = {}
    if not writable(path):
        found["file"] = "not writable"
    try:
        if free_bytes(path) < min_free_bytes():
            found["disk"] = "nearly full"
    except OSError as error:
        found["disk"] = f"cannot be checked ({error.strerror})"
    return found


def refuse_writes_if_unavailable(path: str | None) -> None:
    """Raise StorageUnavailable (503, nothing stored) before a write that could not succeed."""
    if not path or path == ":memory:":
        return
    found = problems(path)
    if found:
        raise StorageUnavailable(", ".join(f"{what} {state}" for what, state in found.items()))
