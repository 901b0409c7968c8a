"""The inbound webhook's payload (SMS Gateway for Android's, docs/sms.md) and
the administrator's list of received messages."""

from marshmallow import EXCLUDE, fields, validate

from api.requests import Schema
from api.sms.models import SmsOutcome


class ReceivedSmsSchema(Schema):
    """The `payload` of an `sms:received` event."""

    class Meta:
        unknown = EXCLUDE

    messageId = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=64))
    message = fields.String(required=True, validate=validate.Length(max=2000),
                            metadata={"description": "The SMS text."})
    phoneNumber = fields.String(load_default="", allow_none=True,
                                validate=validate.Length(max=32),
                                metadata={"description": "The sender; the reply goes there."})
    simNumber = fields.Integer(load_default=None, allow_none=True)
    receivedAt = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=64))


class WebhookSchema(Schema):
    """One webhook event. Signed: X-Timestamp (Unix seconds) and X-Signature, the hex
    HMAC-SHA256 under SMS_WEBHOOK_SECRET of the raw body followed by the timestamp."""

    class Meta:
        unknown = EXCLUDE

    event = fields.String(required=True, validate=validate.Length(1, 64), metadata={
        "description": "Only sms:received is handled; other events are acknowledged."})
    id = fields.String(required=True, validate=validate.Length(1, 64), metadata={
        "description": "The event's id: a second delivery of it is answered as a duplicate."})
    deviceId = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=64))
    webhookId = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=64))
    payload = fields.Dict(required=True)


class WebhookAnswerSchema(Schema):
    outcome = fields.Enum(SmsOutcome, by_value=True)
    reason = fields.String(allow_none=True)
    duplicate = fields.Boolean()
    case_number = fields.String(allow_none=True)


class InboundSchema(Schema):
    id = fields.Integer()
    event_id = fields.String(allow_none=True)
    received_at = fields.DateTime()
    sender = fields.String()
    text = fields.String()
    outcome = fields.Enum(SmsOutcome, by_value=True)
    reason = fields.String(allow_none=True)
    detail = fields.String()
    session_id = fields.Integer(allow_none=True)
    person_id = fields.Integer(allow_none=True)
    incident_id = fields.UUID(allow_none=True)
    case_number = fields.String(allow_none=True)


class InboundListSchema(Schema):
    items = fields.List(fields.Nested(InboundSchema))


class InboundQuerySchema(Schema):
    outcome = fields.Enum(SmsOutcome, by_value=True, load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
