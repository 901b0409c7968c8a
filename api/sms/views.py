"""/api/v1/sms: the gateway's inbound webhook (POST /inbound: signed with a shared
secret, no session) and the administrator's list of received messages (GET /messages)."""

import hashlib
import hmac
import time

from flask import Blueprint, current_app, request
from marshmallow import ValidationError

from api.auth.access import require
from api.db import utcnow
from api.errors import Problem
from api.openapi import query_schema, response_schema, spec
from api.orgs.models import Role
from api.requests import json_body
from api.sms import service
from api.sms.schemas import (
    InboundListSchema,
    InboundQuerySchema,
    ReceivedSmsSchema,
    WebhookAnswerSchema,
    WebhookSchema,
)

bp = Blueprint("sms", __name__)
TAGS = ["sms"]
RECEIVED = "sms:received"


def _answer(received: service.Received) -> dict:
    row = received.inbound
    return {"outcome": row.outcome, "reason": row.reason, "duplicate": received.duplicate,
            "case_number": row.case_number}


def check_signature(now: float) -> None:
    """The webhook's X-Signature and X-Timestamp, or a 401 (logged and kept as an event)."""
    secret = current_app.config["SMS_WEBHOOK_SECRET"]
    if not secret:
        raise Problem(404, "SMS fallback not configured",
                      "Set SMS_WEBHOOK_SECRET to accept the gateway's webhook.",
                      type_="sms-not-configured")
    stamp = request.headers.get("X-Timestamp", "")
    sent = request.headers.get("X-Signature", "")
    expected = hmac.new(secret.encode(), request.get_data(cache=True) + stamp.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sent.strip().lower().encode()):
        service.reject("bad_signature", event_id=None, sender="", now=utcnow(),
                       text=request.get_data(cache=True)[:480].decode("utf-8", "replace"))
        raise Problem(401, "Bad signature",
                      "X-Signature must be the hex HMAC-SHA256 of the body and X-Timestamp.",
                      type_="sms-signature")
    try:
        age = abs(now - int(stamp))
    except ValueError:
        age = None
    if age is None or age > float(current_app.config["SMS_WEBHOOK_MAX_AGE_SECONDS"]):
        service.reject("stale_timestamp", event_id=None, sender="", now=utcnow(),
                       text=request.get_data(cache=True)[:480].decode("utf-8", "replace"),
                       detail=f"X-Timestamp {stamp[:20]!r} is not within the allowed window.")
        raise Problem(401, "Stale request", "X-Timestamp is too far from the server's clock.",
                      type_="sms-stale")


@bp.post("/inbound")
@spec(summary="The SMS gateway's webhook: an incoming SMS (SMS Gateway for Android's "
              "payload, signed with the shared secret)", body=WebhookSchema,
      responses={200: WebhookAnswerSchema}, tags=TAGS)
@response_schema(WebhookAnswerSchema)
def inbound():
    """Every event is answered 200 once it is handled (accepted, rejected or a
    duplicate), so the gateway stops retrying; a bad signature is 401."""
    check_signature(time.time())
    event = WebhookSchema().load(json_body())
    now = utcnow()
    if event["event"] != RECEIVED:
        return _answer(service.Received(service.ignore(event["event"], event_id=event["id"],
                                                       now=now)))
    try:
        payload = ReceivedSmsSchema().load(event["payload"])
    except ValidationError as err:
        # Named as in the request: payload.message, not message.
        raise ValidationError({"payload": err.messages}) from err
    return _answer(service.receive(event_id=event["id"], sender=payload["phoneNumber"] or "",
                                   text=payload["message"], now=now))


@bp.get("/messages")
@spec(summary="Received SMS, newest first, with what became of each (administrators)",
      responses={200: InboundListSchema}, tags=TAGS)
@require(Role.ADMIN)
@query_schema(InboundQuerySchema)
@response_schema(InboundListSchema)
def inbound_list(query: dict):
    """Accepted, merged and rejected messages with the reason, for the administrator."""
    return {"items": service.recent(outcome=query["outcome"], limit=query["limit"])}
