"""The replies' outbox: each reply is sent through the gateway's send API by
the push worker's tick (a listener of api.push.worker, wired in create_app) or
`flask sms send`; retried with backoff, never sent twice.

Never twice: a row is claimed with FOR UPDATE SKIP LOCKED (PostgreSQL), so two
workers never hold it at once, and it is sent with its own id as the gateway's
message id: if the gateway took a message but its answer was lost, the retry
names the same id and the gateway sends nothing new (it answers 409, or the
message it already has), which counts as sent.

The payload is SMS Gateway for Android's (docs/sms.md):
POST {SMS_GATEWAY_URL} {"id", "textMessage": {"text"}, "phoneNumbers": [...]},
HTTP Basic auth with SMS_GATEWAY_USER / SMS_GATEWAY_PASSWORD.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from api.db import is_postgres, utcnow
from api.extensions import db
from api.sms.models import ReplyStatus, SmsReply

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
ALREADY_SENT = 409  # the gateway holds a message with this id: our earlier try got through


@dataclass
class SendResult:
    status: int | None  # None: no answer (connection refused, timeout)
    error: str | None = None


def gateway_send(row: SmsReply) -> SendResult:
    cfg = current_app.config
    body = json.dumps({"id": str(row.id), "textMessage": {"text": row.text},
                       "phoneNumbers": [row.to_number]}).encode()
    url = cfg["SMS_GATEWAY_URL"]
    if not url.startswith(("http://", "https://")):
        return SendResult(None, "SMS_GATEWAY_URL must be an http(s) URL")
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (checked above)
                                     headers={"Content-Type": "application/json"})
    if cfg["SMS_GATEWAY_USER"]:
        pair = f"{cfg['SMS_GATEWAY_USER']}:{cfg['SMS_GATEWAY_PASSWORD'] or ''}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        with urllib.request.urlopen(request, timeout=float(cfg["SMS_SEND_TIMEOUT"])) as answer:  # noqa: S310  (the administrator's URL)
            return SendResult(answer.status)
    except urllib.error.HTTPError as err:
        return SendResult(err.code, f"gateway answered {err.code}")
    except (OSError, ValueError) as err:
        return SendResult(None, f"{type(err).__name__}: {err}"[:300])


def backoff(attempts: int) -> float:
    cfg = current_app.config
    return min(float(cfg["SMS_RETRY_MAX_SECONDS"]),
               float(cfg["SMS_RETRY_BASE_SECONDS"]) * 2 ** (attempts - 1))


def claim(now: datetime) -> SmsReply | None:
    query = (select(SmsReply)
             .where(SmsReply.status == ReplyStatus.PENDING, SmsReply.next_attempt_at <= now)
             .order_by(SmsReply.next_attempt_at, SmsReply.id).limit(1))
    if is_postgres():
        query = query.with_for_update(skip_locked=True, of=SmsReply)
    return db.session.scalars(query).first()


def deliver(row: SmsReply, now: datetime, send=gateway_send) -> None:
    cfg = current_app.config
    if now - row.created_at >= timedelta(seconds=float(cfg["SMS_REPLY_GIVE_UP_SECONDS"])):
        row.status, row.last_error = ReplyStatus.FAILED, "gave up: too late to be useful"
        log.warning("SMS reply %s given up after %d attempts", row.id, row.attempts)
        return
    result = send(row)
    row.attempts += 1
    row.last_status = result.status
    if result.status is not None and (200 <= result.status < 300
                                      or result.status == ALREADY_SENT):
        row.status, row.sent_at, row.last_error = ReplyStatus.SENT, now, None
        log.info("SMS reply %s sent to %s (attempt %d)", row.id, row.to_number, row.attempts)
    elif result.status is None or result.status in RETRY_STATUSES:
        row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts))
        row.last_error = result.error
        log.warning("SMS reply %s not sent (%s); retrying", row.id, result.error)
    else:
        row.status, row.last_error = ReplyStatus.FAILED, result.error
        log.error("SMS reply %s refused by the gateway: %s", row.id, result.error)


def drain(now: datetime | None = None, *, send=gateway_send, limit: int = 100) -> int:
    """Send every due reply, one transaction each; returns how many were tried."""
    if not current_app.config["SMS_GATEWAY_URL"]:
        return 0
    done = 0
    while done < limit:
        try:
            row = claim(now or utcnow())
            if row is None:
                db.session.rollback()
                break
            deliver(row, now or utcnow(), send)
            unreachable = row.status == ReplyStatus.PENDING and row.last_status is None
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        done += 1
        if unreachable:
            break  # the gateway does not answer: the others wait for the next tick
    return done


def on_tick(now: datetime) -> None:
    """The push worker's tick (a listener of api.push.worker, wired in create_app)."""
    try:
        drain(now)
    except Exception:
        # A failing gateway must never stop the pushes of the same tick.
        log.exception("sending SMS replies failed; next tick tries again")
