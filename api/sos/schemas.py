"""Request and response schemas of the SOS endpoints (/api/v1/sos)."""

from marshmallow import fields, validate

from api.incidents.schemas import StrictInteger
from api.law.schemas import Instant
from api.requests import Schema

HEX64 = validate.Regexp(r"^[0-9a-f]{64}$", error="Must be 64 lower-case hex digits.")
HEX32 = validate.Regexp(r"^[0-9a-f]{32}$", error="Must be 32 lower-case hex digits.")


class FixSchema(Schema):
    """One location fix from the phone's GPS (hostile input: every range is checked)."""

    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    accuracy_m = fields.Float(required=True, allow_nan=False,
                              validate=validate.Range(0, 100_000),
                              metadata={"description": "Radius of the fix, metres."})
    fixed_at = Instant(required=True, metadata={
        "description": "When the position was fixed (not in the future)."})


class TrackSchema(Schema):
    track = fields.Boolean(metadata={
        "description": "Keep sending fixes (false once the alarm is over)."})


class OnTheWaySchema(Schema):
    eta_minutes = StrictInteger(load_default=None, allow_none=True,
                                validate=validate.Range(1, 240),
                                metadata={"description": "Estimated arrival, minutes."})


class StandDownSchema(Schema):
    key = fields.String(required=True, validate=HEX64, metadata={
        "description": "PBKDF2-SHA256(PIN, salt, 100000) as hex, made on the phone."})


class StandDownResultSchema(Schema):
    status = fields.String(metadata={"description": "Always \"cancelled\"."})


class PinsSchema(Schema):
    salt = fields.String(required=True, validate=HEX32)
    pin_key = fields.String(required=True, validate=HEX64)
    duress_key = fields.String(required=True, validate=HEX64)


class PinsOutSchema(Schema):
    set = fields.Boolean()
    salt = fields.String(allow_none=True)
    verifiers = fields.List(fields.String(), metadata={
        "description": "SHA-256 of each key, sorted: a phone checks a PIN offline "
                       "without learning which of the two it is."})
    updated_at = fields.AwareDateTime()


class FixOutSchema(Schema):
    lat = fields.Float()
    lon = fields.Float()
    accuracy_m = fields.Float(allow_none=True)
    fixed_at = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime(allow_none=True)


class TrailFixSchema(FixOutSchema):
    fixed_at = fields.String(allow_none=True)


class OnTheWayOutSchema(Schema):
    at = fields.AwareDateTime()
    eta_minutes = fields.Integer(allow_none=True)
    officer = fields.String(allow_none=True)
    post = fields.String(allow_none=True)


class TakenSchema(Schema):
    at = fields.AwareDateTime()
    officer = fields.String(allow_none=True)
    post = fields.String(allow_none=True)


class CrewAlarmSchema(Schema):
    """The crew member's view: each step as it happens."""

    id = fields.UUID()
    case_number = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "open | cancelled"})
    received_at = fields.AwareDateTime()
    post = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    taken = fields.Nested(TakenSchema, allow_none=True)
    on_the_way = fields.Nested(OnTheWayOutSchema, allow_none=True)


class PoliceAlarmSchema(Schema):
    """The police's and managers' view: state, duress, newest fix and the trail."""

    id = fields.UUID()
    case_number = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "open | stood_down"})
    open = fields.Boolean()
    duress = fields.Boolean()
    duress_at = fields.AwareDateTime(allow_none=True)
    opened_at = fields.AwareDateTime()
    stood_down_at = fields.AwareDateTime(allow_none=True)
    fix = fields.Nested(FixOutSchema, allow_none=True)
    fixes = fields.Integer()
    trail = fields.List(fields.Nested(TrailFixSchema))
    on_the_way = fields.Nested(OnTheWayOutSchema, allow_none=True)
    person = fields.String()
    station = fields.String()
