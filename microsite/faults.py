"""Temporary faults: errors that mean "try again in a minute", never a server error.

Each is shown as the 503 page with Retry-After (see errors.py). None of them leaves anything
stored: they are raised before a commit, or by a commit that the database refused.
"""

from __future__ import annotations

import sqlite3


class TemporarilyUnavailable(Exception):  # noqa: N818 - reads as the state it describes
    """The site cannot do this right now; nothing was changed."""


class DeadlineExceeded(TemporarilyUnavailable):
    """The request outlived REQUEST_DEADLINE_SECONDS; its client has probably given up."""


class WriteLockTimeout(TemporarilyUnavailable):
    """Another writer held the database's write lock longer than DB_LOCK_TIMEOUT_SECONDS."""


class StorageUnavailable(TemporarilyUnavailable):
    """The database's file or folder is not writable, or its disk is (nearly) full."""


# SQLite result codes after which this connection (and its pool) must not be reused: it may have
# been opened read-only, or its file handle may point at storage that failed. A new connection
# opened once the operator has fixed the cause works; the old one would fail until a restart.
_SQLITE_STORAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_PERM,
    }
)


def is_sqlite_storage_error(error: BaseException | None) -> bool:
    """A sqlite3 error that says the file, its folder or its disk failed (not a busy lock)."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _SQLITE_STORAGE_CODES
