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

The same Gate bounds the SOS live streams: at most SOS_MAX_STREAMS in one
process (a stream holds a thread for its whole life). One more is no 503:
api/sos/views.py answers it at once with the status and a "busy" event.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
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


class Full(Exception):
    """Every slot of a Gate is taken: how many run, and their mean duration (seconds)."""

    def __init__(self, running: int, mean: float):
        super().__init__(running, mean)
        self.running = running
        self.mean = mean


class Gate:
    """Slots for one kind of long work in this process (a gunicorn worker): at most a
    limit of them at once, and how long each took (an exponentially weighted mean)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.mean = 0.05  # seconds

    def take(self, limit: int | None) -> Callable[[], None]:
        """Take a slot, or raise Full at once when `limit` run already (None: no limit).
        Returns the function that gives the slot back: call it once, when the work ends
        (a streamed response ends after its view has returned)."""
        with self.lock:
            if limit is not None and self.running >= limit:
                raise Full(self.running, self.mean)
            self.running += 1
        started = time.monotonic()

        def give_back() -> None:
            took = time.monotonic() - started
            with self.lock:
                self.running -= 1
                self.mean += 0.2 * (took - self.mean)

        return give_back


@contextmanager
def sync_slot():
    """Run one sync, or raise the 503 at once (SYNC_MAX_IN_FLIGHT 0: no limit)."""
    limit = int(current_app.config["SYNC_MAX_IN_FLIGHT"])
    try:
        give_back = current_app.extensions["qorgau_sync_gate"].take(limit if limit > 0 else None)
    except Full as full:
        raise busy(full.mean * full.running / limit,
                   f"The server is busy with {full.running} other batches. Nothing was "
                   "stored from this one; your records are safe on your phone. Try again "
                   "after Retry-After seconds.") from None
    try:
        yield
    finally:
        give_back()


def stream_slot() -> Callable[[], None]:
    """A slot for one SOS live stream, or Full (SOS_MAX_STREAMS 0: none at all)."""
    return current_app.extensions["qorgau_stream_gate"].take(
        int(current_app.config["SOS_MAX_STREAMS"]))


def init_shedding(app: Flask) -> None:
    """Before any other before_request (the session lookup is work, too)."""
    app.extensions["qorgau_sync_gate"] = Gate()
    app.extensions["qorgau_stream_gate"] = Gate()
    app.before_request(check_queue_deadline)
