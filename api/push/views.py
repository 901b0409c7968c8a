"""Push endpoints: the VAPID public key, and a device's subscription."""

from flask import Blueprint, current_app, request

from api.auth.access import current_person, current_session, require
from api.openapi import body_schema, response_schema, spec
from api.push import service
from api.push.schemas import (
    SubscriptionOutSchema,
    SubscriptionSchema,
    UnsubscribeSchema,
    VapidKeySchema,
)
from api.push.vapid import public_key

bp = Blueprint("push", __name__)


@bp.get("/vapid-public-key")
@spec(summary="The applicationServerKey to subscribe with", tags=["push"])
@require()
@response_schema(VapidKeySchema)
def vapid_public_key():
    """base64url uncompressed P-256 point, for PushManager.subscribe()."""
    return {"public_key": public_key(current_app)}


@bp.post("/subscriptions")
@spec(summary="Save this device's push subscription (upsert by endpoint)", tags=["push"])
@require()
@body_schema(SubscriptionSchema)
@response_schema(SubscriptionOutSchema, status=(200, 201))
def subscribe(body: dict):
    """Send PushSubscription.toJSON() (plus an optional device_id) after the person opts in."""
    sub, created = service.subscribe(current_person(), body,
                                     request.headers.get("User-Agent", ""),
                                     session_id=current_session().id)
    return sub, 201 if created else 200


@bp.delete("/subscriptions")
@spec(summary="Remove this device's subscription (sign-out)", responses={204: None},
      tags=["push"])
@require()
@body_schema(UnsubscribeSchema)
def unsubscribe(body: dict):
    """Idempotent: 204 whether or not the endpoint was known."""
    service.unsubscribe(current_person(), body["endpoint"])
    return "", 204
