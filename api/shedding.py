"""Load shedding: under overload, answer at once "come back in N seconds"
instead of letting requests queue past every phone's patience.

Two rules, both answered with 503 and a Retry-After computed from the
backlog actually seen (the phone's outbox keeps every record; pwa/js/backoff.js
never retries sooner than Retry-After, and adds its own jitter):

1. A request that has already waited longer than QUEUE_DEADLINE_SECONDS
   before the app saw it (in nginx, the listen queue, gunicorn's worker queue)
   is refused before any work starts: its phone may have given up, and work
   done for it would be done again at the retry. nginx stamps each request
   with `X-Request-Start: t=<seconds since the epoch>` (nginx/snippets/
   proxy-api.conf); Retry-After is the time it waited, which is how long the
   queue ahead of a new request takes to drain. Without the header (no
   proxy, the tests) this rule does nothing.
2. At most SYNC_MAX_IN_FLIGHT syncs run at once in one process (gunicorn
   worker); one more is refused at once, with Retry-After from the running
   syncs' mean duration. nginx bounds the syncs in flight across all workers
   (limit_conn, the render option --sync-in-flight), so the queue in front of
   gunicorn stays short.

nginx always replaces the header; without nginx, a forged one can only get
its own request refused (a time in the future counts as no wait).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager

from flask import Flask, current_app, request

from api.errors import Problem

REQUEST_START = "X-Request-Start"
BUSY_TYPE = "server-busy"
MAX_RETRY_AFTER = 60


def _retry_after(seconds: float) -> str:
    return str(min(MAX_RETRY_AFTER, max(1, math.ceil(seconds))))


def busy(seconds: float, detail: str) -> Problem:
    return Problem(503, "Service Unavailable", detail, type_=BUSY_TYPE,
                   headers={"Retry-After": _retry_after(seconds)})


def queued_for(header: str | None, now: float) -> float | None:
    """Seconds since the proxy received the request, from `t=<epoch seconds>`
    (also milli- or microseconds, as other proxies write it); None if absent
    or unreadable."""
    if not header:
        return None
    value = header.strip()
    if value.startswith("t="):
        value = value[2:]
    try:
        stamp = float(value)
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0:
        return None
    while stamp > now * 100:  # milliseconds or microseconds since the epoch
        stamp /= 1000
    return max(0.0, now - stamp)


def check_queue_deadline() -> None:
    """before_request: refuse API work for a request that waited too long."""
    if not request.path.startswith("/api/") or request.path == "/api/health":
        return
    deadline = float(current_app.config["QUEUE_DEADLINE_SECONDS"])
    waited = queued_for(request.headers.get(REQUEST_START), time.time())
    if deadline > 0 and waited is not None and waited > deadline:
        raise busy(waited, f"The server is busy: this request waited {waited:.1f} s before "
                           "it could start. Nothing was stored from it; your records are "
                           "safe on your phone. Try again after Retry-After seconds.")


class SyncGate:
    """The syncs running in this process, and how long they take."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.mean = 0.05  # seconds; an exponentially weighted mean of sync durations

    @contextmanager
    def slot(self, limit: int):
        with self.lock:
            if limit > 0 and self.running >= limit:
                wait = self.mean * self.running / limit
                raise busy(wait, f"The server is busy with {self.running} other batches. "
                                 "Nothing was stored from this one; your records are safe on "
                                 "your phone. Try again after Retry-After seconds.")
            self.running += 1
        started = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - started
            with self.lock:
                self.running -= 1
                self.mean += 0.2 * (took - self.mean)


def sync_slot():
    """A context manager: run one sync, or raise the 503 at once."""
    gate = current_app.extensions["qorgau_sync_gate"]
    return gate.slot(int(current_app.config["SYNC_MAX_IN_FLIGHT"]))


def init_shedding(app: Flask) -> None:
    """Before any other before_request (the session lookup is work, too)."""
    app.extensions["qorgau_sync_gate"] = SyncGate()
    app.before_request(check_queue_deadline)
