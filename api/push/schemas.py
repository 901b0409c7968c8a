"""Request and response shapes of the push endpoints."""

import base64
import binascii

from flask import current_app
from marshmallow import ValidationError, fields, validate, validates

from api.push.endpoints import EndpointRefused, Policy, check_endpoint
from api.requests import Schema


def _b64url_bytes(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as err:
        raise ValidationError("Not base64url.") from err


class SubscriptionKeysSchema(Schema):
    p256dh = fields.String(required=True, validate=validate.Length(min=1, max=128))
    auth = fields.String(required=True, validate=validate.Length(min=1, max=64))

    @validates("p256dh")
    def _p256dh(self, value, **kwargs):
        raw = _b64url_bytes(value)
        # An uncompressed P-256 point, as PushSubscription.getKey("p256dh") gives.
        if len(raw) != 65 or raw[0] != 0x04:
            raise ValidationError("Must be a base64url uncompressed P-256 public key (65 bytes).")

    @validates("auth")
    def _auth(self, value, **kwargs):
        if len(_b64url_bytes(value)) != 16:
            raise ValidationError("Must be a base64url 16-byte authentication secret.")


class SubscriptionSchema(Schema):
    """PushSubscription.toJSON() from the browser, with an optional device id."""

    endpoint = fields.String(required=True,
                             validate=validate.Length(min=1, max=2048))
    keys = fields.Nested(SubscriptionKeysSchema, required=True)
    device_id = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(min=1, max=100))
    # Browsers send it in toJSON(); accepted and ignored.
    expirationTime = fields.Raw(load_default=None, allow_none=True, load_only=True)

    @validates("endpoint")
    def _endpoint(self, value, **kwargs):
        # The server will POST there from inside the network: public push services only.
        try:
            check_endpoint(value, Policy.of(current_app.config))
        except EndpointRefused as err:
            raise ValidationError(str(err)) from err


class SubscriptionOutSchema(Schema):
    id = fields.Integer()
    endpoint = fields.String()
    device_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class UnsubscribeSchema(Schema):
    endpoint = fields.String(required=True, validate=validate.Length(min=1, max=2048))


class VapidKeySchema(Schema):
    public_key = fields.String(metadata={
        "description": "base64url applicationServerKey for PushManager.subscribe()"})
