"""Request and response shapes of the sign-in, enrolment and device endpoints."""

from marshmallow import fields, validate

from api.orgs.models import Language, Position, Role
from api.requests import Schema

TOKEN = validate.Length(min=16, max=200)
LABEL = validate.Length(max=120)


class InvitationTokenSchema(Schema):
    invitation = fields.String(required=True, validate=TOKEN)


class RegisterVerifySchema(Schema):
    invitation = fields.String(required=True, validate=TOKEN)
    credential = fields.Dict(required=True, metadata={
        "description": "the PublicKeyCredential from navigator.credentials.create(), as JSON"})
    device_label = fields.String(load_default="", validate=LABEL)


class AddPasskeySchema(Schema):
    credential = fields.Dict(required=True)
    device_label = fields.String(load_default="", validate=LABEL)


class LoginVerifySchema(Schema):
    credential = fields.Dict(required=True, metadata={
        "description": "the PublicKeyCredential from navigator.credentials.get(), as JSON"})


class EmptySchema(Schema):
    pass


class DemoSignInSchema(Schema):
    person_id = fields.Integer(required=True, strict=True)


class StationRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class PostRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    hospital_name = fields.String()


class MePersonSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    role = fields.Enum(Role, by_value=True)
    position = fields.Enum(Position, by_value=True, allow_none=True)
    language = fields.Enum(Language, by_value=True)
    station = fields.Nested(StationRefSchema, allow_none=True)
    post = fields.Nested(PostRefSchema, allow_none=True)
    managed_stations = fields.Nested(StationRefSchema, many=True,
                                     metadata={"description": "a manager's stations"})


class SessionRefSchema(Schema):
    id = fields.Integer()
    expires_at = fields.DateTime()


class SmsCredentialsSchema(Schema):
    """What a crew phone needs to send an alarm by SMS (docs/sms.md)."""

    key_id = fields.Integer(metadata={"description": "The session's id: named in each SMS."})
    key = fields.String(metadata={"description": "HMAC-SHA256 key, base64url (32 bytes)."})
    number = fields.String(allow_none=True, metadata={
        "description": "The SMS number of the person's region (setting SMS_NUMBERS), "
                       "or null when the region has none."})


class MeSchema(Schema):
    person = fields.Nested(MePersonSchema)
    csrf_token = fields.String()
    session = fields.Nested(SessionRefSchema)
    demo = fields.Boolean()
    sms = fields.Nested(SmsCredentialsSchema, allow_none=True, metadata={
        "description": "Crew only: the device's SMS key, issued with the session."})


class PasskeyOutSchema(Schema):
    id = fields.Integer()
    device_label = fields.String()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    transports = fields.List(fields.String())
    aaguid = fields.String(allow_none=True)
    backed_up = fields.Boolean()
    flagged = fields.Boolean()
    current = fields.Boolean()


class SessionOutSchema(Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    expires_at = fields.DateTime()
    user_agent = fields.String()
    passkey_id = fields.Integer(allow_none=True)
    is_demo = fields.Boolean()
    current = fields.Boolean()


class DevicesSchema(Schema):
    passkeys = fields.Nested(PasskeyOutSchema, many=True)
    sessions = fields.Nested(SessionOutSchema, many=True)


class DemoPersonSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    role = fields.Enum(Role, by_value=True)
    position = fields.Enum(Position, by_value=True, allow_none=True)


class DemoPeopleSchema(Schema):
    people = fields.Nested(DemoPersonSchema, many=True)


class InvitationRequestSchema(Schema):
    hours = fields.Integer(load_default=72, strict=True,
                           validate=validate.Range(min=1, max=24 * 30))


class InvitationOutSchema(Schema):
    url = fields.String()
    expires_at = fields.DateTime()
    qr_svg = fields.String(metadata={"description": "the link as a QR code (SVG)"})


class RevokedSchema(Schema):
    passkeys = fields.Integer()
    sessions = fields.Integer()
    invitations = fields.Integer()


class WebAuthnOptionsSchema(Schema):
    """PublicKeyCredentialCreationOptions / RequestOptions in their JSON form."""

    challenge = fields.String()
    rp = fields.Dict()
    user = fields.Dict()
    rpId = fields.String()
    timeout = fields.Integer()
