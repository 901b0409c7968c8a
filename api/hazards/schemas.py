"""Request and response shapes of the hazard-flag endpoints.

What a phone downloads (RegionFlagSchema) carries no incident, no person and
no address text: the point, the radius, the reason, the dates and the
building's normalised key, which is all the phone needs to warn.
"""

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates

from api.hazards.address import address_key
from api.hazards.models import HazardReason
from api.requests import Schema

MAX_ADDRESS = 200
DEFAULT_RADIUS_M = 50
DEFAULT_MONTHS = 12
MAX_MONTHS = 24


class RaiseSchema(Schema):
    incident_id = fields.UUID(required=True, metadata={
        "description": "The incident (of one of your stations) the flag comes from."})
    address = fields.String(required=True, validate=validate.Length(3, MAX_ADDRESS),
                            metadata={"description": (
                                "Street (or microdistrict) and house number, e.g. "
                                "\"ул. Абая, д. 10\". No names, no health data; a flat "
                                "number may be given but the flag covers the building.")})
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    radius_m = fields.Integer(load_default=DEFAULT_RADIUS_M, validate=validate.Range(10, 500),
                              metadata={"description": "Metres around the point (10-500)."})
    reason = fields.Enum(HazardReason, by_value=True, required=True)
    months = fields.Integer(load_default=DEFAULT_MONTHS, validate=validate.Range(1, MAX_MONTHS),
                            metadata={"description": "Months until it expires (renewable)."})

    @validates("address")
    def _has_house(self, value, **kwargs):
        if not address_key(value):
            raise ValidationError("Give the street (or microdistrict) and the house number.")


class RenewSchema(Schema):
    months = fields.Integer(load_default=DEFAULT_MONTHS, validate=validate.Range(1, MAX_MONTHS))


class FlagSchema(Schema):
    """A flag as its station's manager sees it (the console's incident page)."""

    id = fields.UUID()
    incident_id = fields.UUID()
    address = fields.String()
    address_key = fields.String()
    lat = fields.Float()
    lon = fields.Float()
    radius_m = fields.Integer()
    reason = fields.Enum(HazardReason, by_value=True)
    raised_at = fields.AwareDateTime()
    renewed_at = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime()
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    live = fields.Boolean()


class FlagListSchema(Schema):
    items = fields.List(fields.Nested(FlagSchema))


class RegionFlagSchema(Schema):
    """A flag as a phone keeps it offline: where, why and until when; nothing else."""

    id = fields.UUID()
    address_key = fields.String()
    lat = fields.Float()
    lon = fields.Float()
    radius_m = fields.Integer()
    reason = fields.Enum(HazardReason, by_value=True)
    raised_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()


class PostFlagSchema(RegionFlagSchema):
    """What a police post sees: the same, with the address as it was written."""

    address = fields.String()


class RegionFlagsSchema(Schema):
    region = fields.String(metadata={"description": "ISO 3166-2:KZ code, e.g. KZ-75."})
    generated_at = fields.AwareDateTime()
    items = fields.List(fields.Nested(RegionFlagSchema))


class PostFlagsSchema(RegionFlagsSchema):
    items = fields.List(fields.Nested(PostFlagSchema))


class LookupQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    address = fields.String(required=True, validate=validate.Length(3, MAX_ADDRESS),
                            metadata={"description": "One address, as typed."})


class LookupSchema(Schema):
    address_key = fields.String(metadata={
        "description": "The building the address was read as (\"\" when no house number)."})
    items = fields.List(fields.Nested(RegionFlagSchema))
