"""A TCP proxy on a loopback port that a test can cut or stall, to fault a real database server.

`forward` passes bytes both ways; `cut` closes the listening socket and every connection (the
database is unreachable: connections are refused); `stall` keeps every socket open but moves no
byte and answers no handshake (the database hangs). Ending a stall drops the connections that
were stalled, as TCP gives up on them after a long partition, so nothing a client sent into
the stall reaches the server later. Only the proxy is faulted, never the server behind it.
"""

from __future__ import annotations

import selectors
import socket
import threading
from contextlib import suppress

_CHUNK = 65536
_POLL_SECONDS = 0.05


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._mode = "forward"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- control ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self) -> None:
        """Unreachable: refuse new connections and reset the open ones."""
        with self._lock:
            self._mode = "cut"
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._close_all()

    def stall(self) -> None:
        """Hanging: accept connections and hold every one without moving a byte."""
        with self._lock:
            self._mode = "stall"

    def forward(self) -> None:
        """Back to normal; connections opened before a stall or cut are gone."""
        with self._lock:
            was, self._mode = self._mode, "forward"
        if was == "stall":
            self._close_all()
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stopped.set()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    # --- machinery -------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(_POLL_SECONDS)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._spawn(self._accept_loop, listener)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        with self._lock:
            self._pairs.append((client, None))
        try:
            while self._mode == "stall" and not self._stopped.is_set():
                self._stopped.wait(_POLL_SECONDS)  # the handshake is never answered
            if self._mode != "forward" or self._is_closed(client):
                return
            upstream = socket.create_connection(self.target, timeout=5)
            with self._lock:
                self._pairs = [(c, u) for c, u in self._pairs if c is not client]
                self._pairs.append((client, upstream))
            self._pump(client, upstream)
        except (OSError, ValueError):  # a socket closed under us by cut() or forward()
            pass
        finally:
            self._close_pair(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not self._stopped.is_set():
                if self._mode == "stall":
                    self._stopped.wait(_POLL_SECONDS)  # bytes stay where they are
                    continue
                if self._mode == "cut":
                    return
                for key, _ in selector.select(_POLL_SECONDS):
                    data = key.fileobj.recv(_CHUNK)
                    if not data:
                        return
                    key.data.sendall(data)

    def _is_closed(self, sock: socket.socket) -> bool:
        return sock.fileno() == -1

    def _close_pair(self, client: socket.socket, upstream: socket.socket | None) -> None:
        for sock in (client, upstream):
            if sock is not None:
                with suppress(OSError):
                    sock.close()
        with self._lock:
            self._pairs = [(c, u) for c, u in self._pairs if c is not client]

    def _close_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                if sock is not None:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with suppress(OSError):
                        sock.close()
