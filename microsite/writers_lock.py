"""SQLite's line of writers: one flock() file per database, and a doorbell beside it.

Every write transaction of every process on one SQLite file takes this lock before BEGIN
IMMEDIATE (`database.write_transaction`): a waiting writer is woken the moment the lock frees,
instead of sleeping through SQLite's own retry pauses. flock() is released by the kernel when
its holder exits, however it exits, so a killed worker never leaves the line blocked.
"""

from __future__ import annotations

import fcntl
import math
import os
import select
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from .faults import StorageUnavailable, WriteLockTimeout

# How long a writer waiting for another process waits before it tries the file lock again, if
# no ring wakes it first: short enough to add little latency when a ring is missed, long enough
# to cost nothing while it waits; a retry is one non-blocking syscall.
POLL_SECONDS = 0.0005
POLL_MAX_SECONDS = 0.004


class Doorbell:
    """`<db>-writers.bell`, a FIFO every writer rings as it lets go of the lock.

    Without it, a writer of another process learned that the lock was free only when its poll
    pause ended, while the holder's own next thread took the lock at once: one process kept it
    for a burst and the other's patients waited out the burst (`make bench`, 2 workers: p95 of
    a booking 127-156 ms at 242-263 bookings/s; with the bell 80-87 ms at 286-377/s). A waiter
    sleeps in poll() on the bell instead, so a release wakes it at once and the processes take
    turns. The bell only wakes: the lock is still flock(), and a ring that is missed (a holder
    killed mid-booking) costs the waiter one poll pause, as before the bell. Rings nobody hears
    fill the FIFO's buffer (64 KiB) and are then dropped; a waiter empties it before it tries
    the lock, so old rings never make it spin.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll()  # used only by the thread that holds `in_process`
        self._poll.register(fd, select.POLLIN)

    @classmethod
    def beside(cls, path: str) -> Doorbell | None:
        """The bell of the database at `path`; None where no FIFO can be made (then: poll)."""
        name = f"{path}-writers.bell"
        try:
            with suppress(FileExistsError):
                os.mkfifo(name, 0o600)
            fd = os.open(name, os.O_RDWR | os.O_NONBLOCK)  # O_RDWR: never blocks, never ENXIO
        except OSError:  # a read-only folder, a file system without FIFOs
            return None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # a plain file would always be "readable"
            os.close(fd)
            return None
        return cls(fd)

    def ring(self) -> None:
        with suppress(BlockingIOError):  # the buffer is full of unheard rings already
            os.write(self.fd, b"\0")

    def clear(self) -> None:
        with suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def wait(self, seconds: float) -> None:
        """Until a ring, or at most `seconds` (rounded up to poll()'s milliseconds)."""
        self._poll.poll(math.ceil(max(0.0, seconds) * 1000))


@dataclass(frozen=True)
class WritersLock:
    """One process's way into the line of writers of one SQLite file."""

    in_process: threading.Lock  # this process's threads, one at a time
    fd: int  # the flock() file, `<db>-writers.lock`
    bell: Doorbell | None  # None where the FIFO cannot be made: waiters then only poll

    @contextmanager
    def held(self, give_up_at: float) -> Iterator[None]:
        """Hold the lock; WriteLockTimeout if it is not had by `give_up_at` (time.monotonic)."""
        # flock() excludes other processes; the thread lock excludes this process's other
        # threads, which share the file descriptor and so would all "hold" the flock at once.
        if not self.in_process.acquire(timeout=max(0.0, give_up_at - time.monotonic())):
            raise WriteLockTimeout("another writer in this process held the write lock too long")
        try:
            self._flock_until(give_up_at)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                if self.bell is not None:
                    self.bell.ring()
        finally:
            self.in_process.release()

    def _flock_until(self, give_up_at: float) -> None:
        pause = POLL_SECONDS
        while True:
            if self.bell is not None:
                self.bell.clear()  # before the try: a ring after a failed try ends the wait
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() + pause > give_up_at:
                    raise WriteLockTimeout("another process held the write lock too long") from None
                if self.bell is not None:
                    self.bell.wait(pause)
                else:
                    time.sleep(pause)
                pause = min(pause * 2, POLL_MAX_SECONDS)


_locks: dict[str, WritersLock] = {}
_locks_guard = threading.Lock()


def beside(path: str) -> WritersLock:
    """This process's lock for the SQLite file at `path`, opened on first use.

    StorageUnavailable if the lock file cannot be opened (a read-only folder or file, a full
    disk); nothing is kept then, so the next writer tries again.
    """
    with _locks_guard:
        if path not in _locks:
            try:
                fd = os.open(f"{path}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as error:
                raise StorageUnavailable(
                    f"cannot open the writers' lock: {error.strerror}"
                ) from None
            _locks[path] = WritersLock(threading.Lock(), fd, Doorbell.beside(path))
        return _locks[path]
