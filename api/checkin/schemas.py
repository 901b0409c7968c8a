"""Request and response shapes of the check-in timer endpoints."""

from marshmallow import fields, validate

from api.requests import Schema

MAX_ADDRESS = 200
MAX_MINUTES = 240


class PointSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    accuracy_m = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                              validate=validate.Range(0, 100_000))


class StartSchema(Schema):
    id = fields.UUID(required=True, metadata={
        "description": "Made by the phone: registering the same timer again (a retry after "
                       "a lost answer) changes nothing."})
    address = fields.String(required=True, validate=validate.Length(3, MAX_ADDRESS),
                            metadata={"description": "The call's address, as typed."})
    minutes = fields.Integer(required=True, strict=True,
                             validate=validate.Range(1, MAX_MINUTES),
                             metadata={"description": "10, 20, 30 or any 1-240."})
    started_at = fields.AwareDateTime(required=True, metadata={
        "description": "When the phone started it (a retried registration keeps its end). "
                       "Not in the future, nor more than the timer's length ago."})
    location = fields.Nested(PointSchema, load_default=None, allow_none=True, metadata={
        "description": "Where the phone was, if it knew: the last known location."})


class TimerSchema(Schema):
    id = fields.UUID()
    person_id = fields.Integer()
    person_name = fields.Function(lambda t: t.person.display_name)
    station_id = fields.Integer()
    address = fields.String()
    minutes = fields.Integer()
    started_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    state = fields.String(metadata={"description": "running, overdue (the managers were "
                                                   "told), police (the post was alerted) "
                                                   "or safe."})
    overdue_at = fields.AwareDateTime(allow_none=True)
    police_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    incident_id = fields.UUID(allow_none=True)
    location = fields.Function(lambda t: None if t.lat is None else {
        "lat": t.lat, "lon": t.lon, "accuracy_m": t.accuracy_m})


class TimerListSchema(Schema):
    items = fields.List(fields.Nested(TimerSchema))


class PostShareSchema(Schema):
    post_id = fields.Integer()
    post_name = fields.String()
    alerts = fields.Integer(metadata={"description": "SOS / police-needed-now alerts routed."})
    within_10s = fields.Float(allow_none=True, metadata={
        "description": "Share (0-1) taken by an officer within 10 s (BS 8484: 0.8)."})
    within_40s = fields.Float(allow_none=True, metadata={
        "description": "Share (0-1) taken within 40 s (BS 8484: 0.985)."})


class AlarmFiguresSchema(Schema):
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    target_10s = fields.Float()
    target_40s = fields.Float()
    posts = fields.List(fields.Nested(PostShareSchema))


class AlarmQuerySchema(Schema):
    date_from = fields.Date(data_key="from", load_default=None)
    date_to = fields.Date(data_key="to", load_default=None)
