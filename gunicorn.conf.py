"""gunicorn settings for the booking site: `make serve` locally, the same file in production.

Serving model: `gthread` workers, a few processes each with a pool of threads. A connection that
has not sent its request (an idle or slow client) waits in the worker's event loop, not in a
thread, so idle connections cannot occupy every worker the way they took all four sync workers;
while one thread waits on the database, the others keep serving pages. gunicorn defers such a
connection only after it has waited for data in a thread for DEFAULT_WORKER_DATA_TIMEOUT (5 s);
we shorten that below, so a burst of idle connections costs the threads a fraction of a second.
A client that trickles its request slowly still holds a thread: in production the TLS proxy
buffers requests (docs/deploy.md), and the thread pool is large enough to ride out a few.

Graceful reload (SIGHUP) drops nothing. gunicorn 27's gthread parks a deferred connection only on
a live worker: a connection accepted just before its worker was told to stop, whose bytes came
after the 20 ms, was closed without an answer (a patient's "connection reset" under load, when
clients are slow to send). The worker class is therefore gthread's with that one path fixed
(microsite/gunicorn_worker.py): the stopping worker parks the connection and answers it when its
request arrives. A longer data timeout would only narrow that window, and bring back the cost of
idle connections that the short one removes; so the timeout stays short and the worker is fixed.
The same worker gives a deferred connection 10 s (FIRST_REQUEST_TIMEOUT_S) to send its request
instead of gthread's `keepalive` (2 s, counted from the deferral, which with a 20 ms thread wait
left a slow client 2 s where gunicorn's defaults give it 7 s): a socket each, no thread.
The old workers stop accepting as soon as they are told to stop: a request arriving while the
new workers boot waits in the listen backlog (never refused) and is answered a boot time later.

The time budget, every wait bounded below the one after it (microsite/config.py):
    DB_LOCK_TIMEOUT_SECONDS       3 s  a lock (PostgreSQL lock_timeout, a pooled connection)
    SQLITE_BUSY_TIMEOUT_MS     3000 ms  SQLite's lock held by another process; the app's own
                                       writers queue in line until their request's deadline
    DB_CONNECT_TIMEOUT_SECONDS    3 s  opening a PostgreSQL connection
    DB_STATEMENT_TIMEOUT_SECONDS  5 s  one statement (server-side, plus a client-side guard
                                       against a database that stops answering)
    READYZ_TIMEOUT_SECONDS        2 s  /readyz answers within this, whatever the database does
    REQUEST_DEADLINE_SECONDS     10 s  a request; no booking is committed after it
    timeout (below)              30 s  gunicorn kills a worker that stopped responding
Reaching any limit gives the 503 page with Retry-After (the patient is told what is true); the
worker timeout is only the backstop for a bug, never the way a wait ends.

Environment: GUNICORN_BIND (127.0.0.1:8000), GUNICORN_WORKERS (CPU count, at least 2),
GUNICORN_THREADS (16), GUNICORN_TIMEOUT (30), GUNICORN_KEEPALIVE (2),
GUNICORN_FORWARDED_ALLOW_IPS (127.0.0.1).
"""

import multiprocessing
import os

import gunicorn.workers.gthread

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gthread's worker with one fix: a reload never closes a connection it accepted without an answer
# (microsite/gunicorn_worker.py; drill 2 in tests/test_fault_drills.py fails without it).
worker_class = "microsite.gunicorn_worker.ThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Connections a worker holds open at once, idle ones included (they cost a socket, no thread).
worker_connections = 1000
# Never preload: each worker must open its own database connections and SQLite lock file after
# the fork (a lock file descriptor shared across a fork is one lock holder, not several).
preload_app = False

# A worker that does not report for this long is killed; well above the request deadline.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM or a SIGHUP reload, old workers finish their requests for up to this long.
graceful_timeout = 30
# Kept-alive connections wait in the event loop; closed after this many idle seconds (behind
# nginx, which opens a connection per request unless told otherwise, this rarely matters).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "2"))
# Seconds a new connection may occupy a thread waiting for its first bytes (gunicorn's own
# default is 5 s: 200 idle connections would then hold 16 threads for a minute). After that it
# waits in the event loop without a thread and gets one the moment its bytes arrive, so a short
# value costs a slow client nothing but a hop through the loop. (A module constant in gunicorn
# 27, pinned in requirements.txt; tests/test_fault_drills.py drill 8 fails if it stops working.)
gunicorn.workers.gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.02

# Requests are small: a long request line or many headers is not a patient.
limit_request_line = 4094
limit_request_fields = 50

# X-Forwarded-* is believed only from these addresses (gunicorn's own default: loopback). The
# app's own trust in forwarded headers is Werkzeug's ProxyFix, configured by PROXY_FIX_* (off
# by default); keep this at the proxy's address only.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Access log: method, path (never the query string: %(U)s, not %(r)s), status, size, duration.
# RedactingLogger also replaces the tokens in /manage/<token> and /feeds/<token>.ics paths.
accesslog = "-"
errorlog = "-"
logger_class = "microsite.access_log.RedactingLogger"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'

# SIGHUP reloads gracefully: new workers start with re-read code and settings, then the old
# ones finish their requests and exit; no request is dropped (tests/test_fault_drills.py).
proc_name = "bluewater-microsite"
# No runtime control socket ($HOME/.gunicorn/gunicorn.ctl is one path for every instance of
# the user's): workers and reloads are managed by signals and the process manager.
control_socket_disable = True
