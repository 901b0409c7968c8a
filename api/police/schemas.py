"""Request and response shapes of the police endpoints."""

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from api.incidents.models import IncidentStatus
from api.incidents.schemas import ActorSchema, IncidentDetailSchema, IncidentSchema
from api.requests import Schema

# ЕРДР numbers are issued by the police (usually 15 digits); stored as entered,
# but only digits, spaces and hyphens, so Qorgau's own "QG-..." can never pass.
ERDR = validate.Regexp(r"^[0-9][0-9 -]{4,38}[0-9]$",
                       error="Enter the ЕРДР number as issued: digits (spaces or '-' allowed).")
MAX_NOTE = 2000


class AlertSchema(Schema):
    post_id = fields.Integer(allow_none=True, metadata={"description": "The post first chosen."})
    reason = fields.String(metadata={"description": (
        "destination_hospital | nearest_in_region | station_default | no_post")})
    distance_km = fields.Float(allow_none=True)
    routed_at = fields.AwareDateTime()
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by = fields.Nested(ActorSchema, allow_none=True)
    escalated_at = fields.AwareDateTime(allow_none=True)


class PoliceIncidentSchema(IncidentSchema):
    case_post_name = fields.String(attribute="post.hospital_name", allow_none=True)
    station_name = fields.String(attribute="station.name")
    alert = fields.Nested(AlertSchema, allow_none=True)
    urgent = fields.Boolean(metadata={"description": "Not yet acknowledged."})


class PoliceIncidentDetailSchema(IncidentDetailSchema, PoliceIncidentSchema):
    pass


class PoliceIncidentListSchema(Schema):
    items = fields.List(fields.Nested(PoliceIncidentSchema))


class PoliceListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.Enum(IncidentStatus, by_value=True, load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10000))


class ErdrSchema(Schema):
    erdr_number = fields.String(required=True, validate=ERDR)


class StatusChangeSchema(Schema):
    status = fields.Enum(IncidentStatus, by_value=True, required=True)
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=MAX_NOTE))

    @validates_schema
    def _rules(self, data, **kwargs):
        if data["status"] not in (IncidentStatus.INVESTIGATING, IncidentStatus.CLOSED):
            raise ValidationError("Police set investigating or closed.", "status")
        note = (data.get("note") or "").strip()
        if data["status"] == IncidentStatus.CLOSED and not note:
            raise ValidationError("Say why the incident is closed.", "note")
        data["note"] = note or None
