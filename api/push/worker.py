"""The worker that drains the notification outbox, and checks escalations.

Rows are claimed a batch at a time (PUSH_SEND_BATCH, urgent ones first) with
SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL), sent side by side while the row
locks are held, and their outcomes and attempts committed in that same
transaction. A second worker skips the locked rows, and once the first commits
they are no longer pending, so two workers never send the same row. If a worker
dies mid-send its transaction rolls back and the rows are sent again later:
delivery is at least once, and the per-incident Topic and notification tag make a
repeat replace, not duplicate.

SQLite has no row locks: run one worker there (the local run's thread).

The worker wakes on LISTEN/NOTIFY (PostgreSQL) and otherwise polls every
PUSH_POLL_SECONDS. Tests drive `tick()` directly with an injected clock.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from flask import Flask
from pywebpush import WebPushException, webpush
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from api import listeners
from api.db import is_postgres, libpq_params, utcnow
from api.extensions import db
from api.push.endpoints import EndpointRefused, Policy, check_endpoint, pinned_session
from api.push.models import (
    AttemptOutcome,
    OutboxStatus,
    PushAttempt,
    PushOutbox,
    Urgency,
)
from api.push.service import NOTIFY_CHANNEL, encode_payload, expires_at
from api.push.vapid import vapid_key

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
GONE_STATUSES = {404, 410}


class SendResult:
    """What a push service answered: a status code, or an exception for no answer."""

    def __init__(self, status: int | None, retry_after: str | None = None,
                 error: str | None = None, permanent: bool = False):
        self.status = status
        self.retry_after = retry_after
        self.error = error
        self.permanent = permanent  # never sent, and sending again cannot help


def send_batch(config) -> int:
    """How many rows a worker claims and sends side by side (PUSH_SEND_BATCH, at least 1)."""
    return max(1, int(config["PUSH_SEND_BATCH"]))


def webpush_sender(app: Flask) -> Callable[[PushOutbox, bytes], SendResult]:
    """Send with pywebpush: VAPID-signed, aes128gcm, explicit TTL, Urgency and Topic.

    Only to an endpoint api.push.endpoints allows, connecting to the address it
    checked, and never following a redirect (a 3xx is a failed send)."""
    def policy() -> Policy:
        return Policy.of(app.config)  # read per send: settings may change

    # Keep-alive to the push services between sends, a connection per sending thread.
    session = pinned_session(policy, connections=send_batch(app.config))

    def send(row: PushOutbox, data: bytes) -> SendResult:
        try:
            check_endpoint(row.subscription.endpoint, policy())
        except EndpointRefused as err:
            return SendResult(None, error=f"endpoint refused: {err}"[:500],
                              permanent=not err.temporary)
        headers = {"Urgency": str(row.urgency)}
        if row.topic:
            headers["Topic"] = row.topic
        # A fresh dict each time: pywebpush writes this endpoint's aud and exp into it.
        claims = {"sub": app.config["PUSH_VAPID_SUBJECT"]}
        try:
            response = webpush(row.subscription.info(), data=data,
                               vapid_private_key=vapid_key(app), vapid_claims=claims,
                               content_encoding="aes128gcm", ttl=row.ttl, headers=headers,
                               timeout=app.config["PUSH_SEND_TIMEOUT"],
                               requests_session=session)
            return SendResult(response.status_code)
        except WebPushException as err:
            if err.response is None:  # bad subscription keys: nothing was sent
                return SendResult(None, error=str(err.message)[:500], permanent=True)
            return SendResult(err.status_code, err.retry_after,
                              f"{err.status_code} {getattr(err.response, 'reason', '')}"[:500])
        except EndpointRefused as err:  # its address changed since the check above
            return SendResult(None, error=f"endpoint refused: {err}"[:500],
                              permanent=not err.temporary)
        except requests.RequestException as err:  # timeouts, refused connections
            return SendResult(None, error=f"{type(err).__name__}: {err}"[:500])

    return send


def parse_retry_after(value: str | None, now: datetime) -> int | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((when - now).total_seconds()))


# How often a worker whose LISTEN connection was lost tries to listen again.
LISTEN_RETRY_SECONDS = 10

# Told on_tick(now) at the start of every tick, before the sends (see api.listeners):
# api.police.routing's escalation, registered in create_app.
tick_listeners: list = []


class PushWorker:
    def __init__(self, app: Flask, *, clock: Callable[[], datetime] = utcnow,
                 send: Callable[[PushOutbox, bytes], SendResult] | None = None,
                 name: str | None = None):
        self.app = app
        self.clock = clock
        self.send = send or webpush_sender(app)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        cfg = app.config
        self.max_attempts = int(cfg["PUSH_MAX_ATTEMPTS"])
        self.base = float(cfg["PUSH_RETRY_BASE_SECONDS"])
        self.cap = float(cfg["PUSH_RETRY_MAX_SECONDS"])
        # Rows claimed and sent together (PUSH_SEND_BATCH threads send a batch).
        self.batch = send_batch(cfg)
        self._gone: set[int] = set()  # subscriptions a 410 removed in this batch
        self._executor: ThreadPoolExecutor | None = None

    # One pass -------------------------------------------------------------

    def tick(self) -> int:
        """Run the tick listeners (api.police escalates overdue alerts), then send
        every due row. Needs an app context."""
        listeners.call(tick_listeners, "on_tick", self.clock())
        return self.drain()

    def drain(self, limit: int = 1000) -> int:
        """Send due rows, a batch at a time, until none is left (or `limit`);
        returns how many."""
        done = 0
        while done < limit and (sent := self.process_batch(min(self.batch, limit - done))):
            done += sent
        return done

    def claim(self, limit: int = 1) -> list[PushOutbox]:
        """Up to `limit` due rows, locked: the urgent ones (police alerts, SOS) first,
        so that in a storm of crews' confirmations an alert never queues behind them."""
        rows = self._due(limit, urgent=True)
        if len(rows) < limit:
            rows += self._due(limit - len(rows), urgent=False)
        return rows

    def _due(self, limit: int, urgent: bool) -> list[PushOutbox]:
        query = (select(PushOutbox)
                 .options(joinedload(PushOutbox.subscription))  # read by the sending threads
                 .where(PushOutbox.status == OutboxStatus.PENDING,
                        PushOutbox.next_attempt_at <= self.clock())
                 .order_by(PushOutbox.next_attempt_at, PushOutbox.id)
                 .limit(limit))
        # Not "any urgency" the second time: FOR UPDATE SKIP LOCKED skips only the
        # rows other transactions hold, and would hand back the urgent ones again.
        query = query.where((PushOutbox.urgency == Urgency.HIGH) if urgent
                            else (PushOutbox.urgency != Urgency.HIGH))
        if is_postgres():
            query = query.with_for_update(skip_locked=True, of=PushOutbox)
        return list(db.session.scalars(query).unique())

    def process_one(self) -> bool:
        """Claim, send and record one row in one transaction. False if none was due."""
        return self.process_batch(1) > 0

    def process_batch(self, limit: int) -> int:
        """Claim up to `limit` rows, send them at the same time (each send waits on
        the network, not the CPU) and record every outcome in one transaction.
        Returns how many were claimed (0: none was due)."""
        self._gone.clear()
        try:
            rows = self.claim(limit)
            if not rows:
                db.session.rollback()
                return 0
            now = self.clock()
            # One task per device and incident, its messages in the order claimed:
            # what a device hears of one case arrives in order (and a device that is
            # gone is tried once for it), while an officer's phone gets the alerts of
            # many cases side by side.
            tasks: dict[tuple, list[tuple[PushOutbox, bytes]]] = {}
            for row in rows:
                if self._sendable(row, now):
                    tasks.setdefault((row.subscription_id, row.incident_id), []).append(
                        (row, encode_payload(row.payload)))
            send_all = self._pool().map if len(tasks) > 1 else map
            for results in list(send_all(self._send_in_order, tasks.values())):
                for row, result in results:
                    self._deliver(row, now, result)
            db.session.commit()
            return len(rows)
        except Exception:
            db.session.rollback()
            raise

    def _send_in_order(self, messages: list[tuple[PushOutbox, bytes]]) -> list[tuple]:
        """(row, result) for one task's messages; after a 404/410 the rest are
        not sent (result None: the subscription is gone)."""
        results, gone = [], False
        for row, data in messages:
            result = None if gone else self.send(row, data)
            gone = gone or result.status in GONE_STATUSES
            results.append((row, result))
        return results

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.batch, thread_name_prefix="push-send")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _sendable(self, row: PushOutbox, now: datetime) -> bool:
        """False, with the row settled, when there is nothing to send it to or for."""
        if row.subscription is None:
            # The device unsubscribed, or answered 410 to another message, since queuing.
            row.status = OutboxStatus.GONE
            row.last_error = "subscription removed before sending"
            return False
        if now >= expires_at(row):
            self._record(row, now, None, AttemptOutcome.GAVE_UP, None,
                         "TTL passed before it could be delivered")
            row.status = OutboxStatus.FAILED
            return False
        return True

    def _deliver(self, row: PushOutbox, now: datetime, result: SendResult) -> None:
        """Record what the push service answered for `row` (None: never sent, as its
        device answered 404/410 to the message before it). What was sent is recorded
        as it went, even when another message of the batch found the device gone."""
        if result is None:
            row.status, row.last_error, row.subscription = (OutboxStatus.GONE,
                                                            "subscription gone", None)
            return
        gone = row.subscription_id in self._gone
        row.attempts += 1
        status = result.status
        if status is not None and 200 <= status < 300:
            self._record(row, now, status, AttemptOutcome.SENT)
            row.status, row.sent_at, row.last_error = OutboxStatus.SENT, now, None
            if gone:
                row.subscription = None
            else:
                row.subscription.last_success_at = now
        elif status in GONE_STATUSES:
            self._record(row, now, status, AttemptOutcome.GONE, None, result.error)
            if gone:  # a message of the batch said so first
                row.status, row.last_error, row.subscription = (
                    OutboxStatus.GONE, "push service: subscription gone", None)
            else:
                self._forget_subscription(row)
        elif gone:  # not worth trying again: the device is gone
            self._record(row, now, status, AttemptOutcome.FAILED, None, result.error)
            row.status, row.last_error, row.subscription = (OutboxStatus.GONE,
                                                            "subscription gone", None)
        elif result.permanent:
            self._record(row, now, None, AttemptOutcome.FAILED, None, result.error)
            row.status, row.last_error = OutboxStatus.FAILED, result.error
        elif status is None or status in RETRY_STATUSES:
            retry_after = parse_retry_after(result.retry_after, now)
            delay = self.backoff(row.attempts)
            if retry_after is not None:
                delay = max(delay, retry_after)
            # Keep trying for as long as the message is worth delivering (its TTL):
            # an outage of the push service must not cost the crew their confirmation.
            # PUSH_MAX_ATTEMPTS, when set, is an extra safety limit.
            out_of_tries = bool(self.max_attempts) and row.attempts >= self.max_attempts
            if out_of_tries or now + timedelta(seconds=delay) >= expires_at(row):
                self._record(row, now, status, AttemptOutcome.GAVE_UP, retry_after, result.error)
                row.status, row.last_error = OutboxStatus.FAILED, result.error
                return
            self._record(row, now, status, AttemptOutcome.RETRY, retry_after, result.error)
            row.next_attempt_at = now + timedelta(seconds=delay)
            row.last_error = result.error
        else:
            # 400, 401, 403 (VAPID key mismatch), 413...: retrying cannot help.
            self._record(row, now, status, AttemptOutcome.FAILED, None, result.error)
            row.status, row.last_error = OutboxStatus.FAILED, result.error

    def backoff(self, attempts: int) -> float:
        """Exponential: base, 2*base, 4*base, ... capped."""
        return min(self.cap, self.base * 2 ** (attempts - 1))

    def _record(self, row, now, status, outcome, retry_after=None, error=None) -> None:
        db.session.add(PushAttempt(outbox_id=row.id, attempted_at=now, worker=self.name[:64],
                                   status_code=status, outcome=outcome,
                                   retry_after=retry_after, error=error))

    def _forget_subscription(self, row: PushOutbox) -> None:
        sub = row.subscription
        self._gone.add(sub.id)
        row.status, row.last_error = OutboxStatus.GONE, "push service: subscription gone"
        # Its other queued messages can never arrive either.
        db.session.execute(
            update(PushOutbox)
            .where(PushOutbox.subscription_id == sub.id, PushOutbox.id != row.id,
                   PushOutbox.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.GONE, last_error="subscription gone",
                    subscription_id=None)
            .execution_options(synchronize_session=False))
        row.subscription = None
        db.session.delete(sub)

    # The loop -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, waking on NOTIFY (PostgreSQL) or the poll interval."""
        poll = float(self.app.config["PUSH_POLL_SECONDS"])
        with self.app.app_context():
            listener = _listen(self.app) if is_postgres() else None
            # A LISTEN lost (the database restarted, failed over) is tried again now
            # and then, so the worker goes back to waking on NOTIFY.
            listen_again = listener is not None
        retry_at = 0.0
        try:
            while not stop.is_set():
                if listener is None and listen_again and time.monotonic() >= retry_at:
                    retry_at = time.monotonic() + LISTEN_RETRY_SECONDS
                    with self.app.app_context():
                        listener = _listen(self.app)
                with self.app.app_context():
                    try:
                        self.tick()
                    except Exception:
                        log.exception("push worker tick failed; retrying after the poll")
                    finally:
                        db.session.remove()
                listener = _wait(listener, stop, poll)
        finally:
            if listener is not None:
                listener.close()
            self.close()


def _listen(app: Flask):
    """A separate autocommit psycopg connection that LISTENs; None if that fails."""
    import psycopg

    # PUSH_LISTEN_DATABASE_URL: PostgreSQL itself when DATABASE_URL is PgBouncer's
    # transaction mode (a LISTEN lives on one server session, which that mode does not keep).
    url = app.config.get("PUSH_LISTEN_DATABASE_URL")
    if not url and app.config.get("DATABASE_PGBOUNCER"):
        # Through PgBouncer the LISTEN would seem to work and never hear a thing.
        log.warning("DATABASE_PGBOUNCER is set but PUSH_LISTEN_DATABASE_URL is not: "
                    "the push worker polls every %s s instead of waking on NOTIFY",
                    app.config["PUSH_POLL_SECONDS"])
        return None
    url = url or db.engine.url.render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(autocommit=True, **libpq_params(url))
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return conn
    except psycopg.Error:
        log.warning("LISTEN failed; the push worker falls back to polling", exc_info=True)
        return None


def _wait(listener, stop: threading.Event, poll: float):
    """Sleep until a NOTIFY, the poll interval or `stop`; returns the listener still usable."""
    if listener is None:
        stop.wait(poll)
        return None
    # In slices of at most a second, so SIGTERM (`stop`) ends the worker at once, not
    # after a whole poll interval.
    deadline = time.monotonic() + poll
    try:
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            for _ in listener.notifies(timeout=min(left, 1.0), stop_after=1):
                return listener
        return listener
    except Exception:
        log.warning("LISTEN connection lost; the push worker falls back to polling",
                    exc_info=True)
        listener.close()
        stop.wait(poll)
        return None


def start_worker_thread(app: Flask) -> tuple[threading.Thread, threading.Event] | None:
    """Run a worker in a daemon thread when PUSH_WORKER_THREAD is set (one-process run).

    Returns (thread, stop event), or None when the setting is off.
    """
    if not app.config.get("PUSH_WORKER_THREAD"):
        return None
    stop = threading.Event()
    worker = PushWorker(app)
    thread = threading.Thread(target=worker.run, args=(stop,), name="qorgau-push-worker",
                              daemon=True)
    thread.start()
    return thread, stop
