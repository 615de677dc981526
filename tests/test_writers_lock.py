"""SQLite's line of writers: a writer waiting for another process is woken by the doorbell.

The other process is a second open of the same lock file: flock() treats it as another holder,
and it rings the same FIFO, as another gunicorn worker would.
"""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from microsite import writers_lock
from microsite.faults import WriteLockTimeout

LONG_PAUSE_S = 60.0  # a waiter woken only by its pause would wait this long


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.setattr(writers_lock, "_locks", {})
    return str(tmp_path / "site.sqlite3")


def another_process(path: str) -> writers_lock.WritersLock:
    fd = os.open(f"{path}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    return writers_lock.WritersLock(threading.Lock(), fd, writers_lock.Doorbell.beside(path))


def waits_counted(monkeypatch) -> tuple[list[float], threading.Event]:
    """Record each pause a waiter starts; the event is set at the first."""
    pauses: list[float] = []
    waiting = threading.Event()
    real_wait = writers_lock.Doorbell.wait

    def wait(self, seconds):
        pauses.append(seconds)
        waiting.set()
        real_wait(self, seconds)

    monkeypatch.setattr(writers_lock.Doorbell, "wait", wait)
    return pauses, waiting


def waits_half_a_second_in_vain(lock: writers_lock.WritersLock) -> None:
    with lock.held(give_up_at=time.monotonic() + 0.5):
        pytest.fail("the lock was had while another process held it")


def test_a_waiting_writer_gets_the_lock_as_soon_as_the_other_process_lets_go(path, monkeypatch):
    monkeypatch.setattr(writers_lock, "POLL_SECONDS", LONG_PAUSE_S)
    monkeypatch.setattr(writers_lock, "POLL_MAX_SECONDS", LONG_PAUSE_S)
    pauses, waiting = waits_counted(monkeypatch)
    mine, other = writers_lock.beside(path), another_process(path)
    got_it = threading.Event()

    def book():
        with mine.held(give_up_at=time.monotonic() + 2 * LONG_PAUSE_S):
            got_it.set()

    with other.held(give_up_at=time.monotonic() + 5):
        waiter = threading.Thread(target=book, daemon=True)
        waiter.start()
        assert waiting.wait(timeout=10), "the writer never had to wait"
        assert not got_it.is_set()
    # Woken by the ring, not by the end of its 60 s pause.
    assert got_it.wait(timeout=10)
    waiter.join(timeout=10)
    assert pauses == [LONG_PAUSE_S]


def test_rings_nobody_heard_do_not_make_a_waiter_spin(path, monkeypatch):
    monkeypatch.setattr(writers_lock, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(writers_lock, "POLL_MAX_SECONDS", 0.1)
    pauses, _ = waits_counted(monkeypatch)
    mine, other = writers_lock.beside(path), another_process(path)
    for _ in range(70_000):  # more than the FIFO holds: the rest are dropped, quietly
        other.bell.ring()
    with other.held(give_up_at=time.monotonic() + 5), pytest.raises(WriteLockTimeout):
        waits_half_a_second_in_vain(mine)
    # Five pauses of 0.1 s fit in 0.5 s; a bell left full would have returned at once, each time.
    assert 3 <= len(pauses) <= 6


def test_the_bell_is_a_fifo_only_its_owner_can_open(path):
    with writers_lock.beside(path).held(give_up_at=time.monotonic() + 5):
        pass
    mode = os.stat(f"{path}-writers.bell").st_mode
    assert stat.S_ISFIFO(mode)
    assert mode & 0o077 == 0


def test_without_a_bell_a_waiter_still_gets_the_lock_by_polling(path, monkeypatch):
    with open(f"{path}-writers.bell", "w") as squatter:  # not a FIFO: not used
        squatter.write("x")
    mine, other = writers_lock.beside(path), another_process(path)
    assert mine.bell is None
    assert other.bell is None
    got_it = threading.Event()

    def book():
        with mine.held(give_up_at=time.monotonic() + 30):
            got_it.set()

    with other.held(give_up_at=time.monotonic() + 5):
        waiter = threading.Thread(target=book, daemon=True)
        waiter.start()
        time.sleep(0.05)
        assert not got_it.is_set()
    assert got_it.wait(timeout=10)
    waiter.join(timeout=10)
