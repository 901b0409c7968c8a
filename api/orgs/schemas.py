"""Validation of organisation data, shared by the CSV import and the API."""

from marshmallow import ValidationError, fields, validate, validates_schema

from api.orgs.models import Language, Position, Role
from api.requests import Schema

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
                       error="Use 1-40 letters, digits, '-', '_' or '.'.")


class RegionSchema(Schema):
    code = fields.String()
    iso_code = fields.String()
    name_ru = fields.String()
    name_kk = fields.String()
    name_en = fields.String()
    is_city = fields.Boolean()


class PostSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    hospital_name = fields.String()
    region_code = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)


class PostListSchema(Schema):
    posts = fields.List(fields.Nested(PostSchema))


class OrgRowSchema(Schema):
    """One row of `flask orgs import`: a station or a police post."""

    type = fields.String(required=True, validate=validate.OneOf(["station", "post"]))
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    region = fields.String(required=True)
    address = fields.String(load_default=None, validate=validate.Length(max=300))
    lat = fields.Float(load_default=None, allow_nan=False,
                       validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_nan=False,
                       validate=validate.Range(-180, 180))
    default_post = fields.String(load_default=None, validate=CODE)

    @validates_schema
    def _coordinates_together(self, data, **kwargs):
        if (data.get("lat") is None) != (data.get("lon") is None):
            raise ValidationError("Give both lat and lon, or neither.", "lat")
        if data.get("type") == "post" and data.get("default_post"):
            raise ValidationError("Only a station names a default post.", "default_post")


class PersonSchema(Schema):
    id = fields.Integer(dump_only=True)
    display_name = fields.String(required=True,
                                 validate=validate.Length(min=1, max=120))
    role = fields.Enum(Role, by_value=True, required=True)
    position = fields.Enum(Position, by_value=True, load_default=None)
    station = fields.String(load_default=None, metadata={"description": "station code"})
    post = fields.String(load_default=None, metadata={"description": "police post code"})
    language = fields.Enum(Language, by_value=True, load_default=Language.RU)
    active = fields.Boolean(dump_only=True)


class ManagedPersonSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    role = fields.Enum(Role, by_value=True)
    position = fields.Enum(Position, by_value=True, allow_none=True)
    station = fields.String(allow_none=True, metadata={"description": "station code"})
    station_name = fields.String(allow_none=True)
    active = fields.Boolean()
    passkeys = fields.Integer(metadata={"description": "live passkeys"})


class StationChoiceSchema(Schema):
    code = fields.String()
    name = fields.String()


class ManagedPeopleSchema(Schema):
    people = fields.Nested(ManagedPersonSchema, many=True)
    stations = fields.Nested(StationChoiceSchema, many=True,
                             metadata={"description": "stations a new person may join"})


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Give the person's name.")


class NewPersonSchema(Schema):
    """POST /api/v1/people: checked in full by api.orgs.service.add_person."""

    display_name = fields.String(required=True, validate=[
        validate.Length(min=1, max=120), _not_blank])
    role = fields.String(load_default="crew", validate=validate.OneOf([r.value for r in Role]))
    position = fields.String(load_default=None,
                             validate=validate.OneOf([p.value for p in Position]))
    station = fields.String(load_default=None, validate=CODE,
                            metadata={"description": "station code"})
    post = fields.String(load_default=None, validate=CODE,
                         metadata={"description": "police post code (police officers)"})
    language = fields.String(load_default="ru",
                             validate=validate.OneOf([lang.value for lang in Language]))
