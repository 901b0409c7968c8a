"""Request and response schemas of the incident endpoints.

The choices (kinds, circumstances, victim roles) come from the law rules
document, so the classifier, the PWA and this validation always agree.
"""


from marshmallow import EXCLUDE, ValidationError, fields, validate

from api.incidents.models import DeviceTimeFlag, IncidentStatus, LocationSource
from api.law.schemas import Instant, StrictBoolean
from api.law.service import rules
from api.requests import Schema

_RULES = rules()
KINDS = [k["id"] for k in _RULES["kinds"]]
CIRCUMSTANCES = [c["id"] for c in _RULES["aggravating_circumstances"]]
VICTIM_ROLES = [r["id"] for r in _RULES["victim_roles"]]
MAX_BATCH = 100
MAX_NOTE = 2000
MAX_REVISION = 2**31 - 1  # the column is a 32-bit integer


def _one_of(choices) -> validate.OneOf:
    return validate.OneOf(list(choices), error="Must be one of: {choices}.")


def _no_duplicates(values: list) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValidationError(f"Each circumstance may be given once; repeated: "
                              f"{', '.join(repeated)}.")


class ReceiptSchema(Schema):
    """The server's signed word that it stored this revision, with the chain head after it
    (made by api.ledger, a listener of the sync)."""

    algorithm = fields.String()
    key_id = fields.String()
    incident_id = fields.UUID()
    revision = fields.Integer()
    event_hash = fields.String(metadata={
        "description": "The incident's hash-chain head after this revision (hex SHA-256)."})
    received_at = fields.String(metadata={"description": "ISO 8601 UTC, microseconds."})
    payload = fields.String(metadata={
        "description": "The exact canonical JSON that was signed (sorted keys, no spaces)."})
    signature = fields.String(metadata={
        "description": "Ed25519 over the payload's UTF-8 bytes, base64url."})


class StrictInteger(fields.Integer):
    """A JSON integer: not 1.5, not "7", not true."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class LocationSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    accuracy_m = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                              validate=validate.Range(0, 100_000),
                              metadata={"description": "Radius of the fix, metres."})
    fixed_at = Instant(load_default=None, allow_none=True,
                       metadata={"description": "When the position was fixed."})
    source = fields.Enum(LocationSource, by_value=True, required=True)


class SyncRecordSchema(Schema):
    """One incident as the phone holds it. On a revision, a field left out is kept.

    Defaults (applied when the incident is first created): kind "unspecified",
    aggravating [], victim_role the reporter's position, on_duty true,
    police_needed false, location null, destination_post_id null, note "".
    """

    id = fields.UUID(required=True, metadata={"description": "Made by the phone; the identity."})
    revision = StrictInteger(required=True, validate=validate.Range(1, MAX_REVISION))
    tapped_at = Instant(required=True, metadata={
        "description": "Device time of the tap, with its UTC offset. Fixed at creation: "
                       "a record for a stored incident with another tapped_at is rejected "
                       "(field tapped_at)."})
    occurred_at = Instant(metadata={
        "description": "When the incident happened, as the crew member states it (default: "
                       "the tap). Not in the future; more than STATED_TIME_MAX_DAYS_BEFORE_TAP "
                       "(default 7) days before the tap it waits for a manager's "
                       "confirmation (the result lists it under pending)."})
    kind = fields.String(validate=_one_of(KINDS))
    aggravating = fields.List(fields.String(validate=_one_of(CIRCUMSTANCES)),
                              validate=_no_duplicates)
    victim_role = fields.String(allow_none=True, validate=_one_of(VICTIM_ROLES))
    on_duty = StrictBoolean()
    police_needed = StrictBoolean()
    sos = StrictBoolean(metadata={
        "description": "An SOS (api.sos): read when the incident is created and never "
                       "changed; an SOS is always police_needed."})
    location = fields.Nested(LocationSchema, allow_none=True)
    destination_post_id = StrictInteger(allow_none=True, validate=validate.Range(1, 2**31 - 1))
    note = fields.String(validate=validate.Length(max=MAX_NOTE))


class RecordBatch(fields.List):
    """Documented as a list of records; each record is validated on its own
    later, so one bad record is answered by itself and never rejects the rest."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return list(value)


class SyncRequestSchema(Schema):
    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    outbox_size = StrictInteger(required=True, validate=validate.Range(0, 1_000_000))
    set_aside = StrictInteger(load_default=0, validate=validate.Range(0, 1_000_000), metadata={
        "description": "Records the phone stopped sending because the server failed on "
                       "each of them alone (they stay on the phone; device health shows it)."})
    app_version = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=40))
    sent_at = Instant(required=True, metadata={
        "description": "Device clock when sending; the skew is receipt minus this."})
    records = RecordBatch(fields.Nested(SyncRecordSchema), required=True,
                          validate=validate.Length(max=MAX_BATCH))


class FieldErrorSchema(Schema):
    field = fields.String()
    message = fields.String()


class IncidentSummarySchema(Schema):
    """What the phone needs back about a stored incident."""

    id = fields.UUID()
    case_number = fields.String()
    revision = fields.Integer()
    status = fields.Enum(IncidentStatus, by_value=True)
    classification = fields.Dict(allow_none=True)
    post_id = fields.Integer(allow_none=True)
    received_at = fields.AwareDateTime()
    logged_at = fields.AwareDateTime(metadata={
        "description": "The instant the server takes as the tap's; never changes."})
    occurred_at = fields.AwareDateTime(metadata={"description": "When it happened."})
    occurred_at_pending = fields.AwareDateTime(allow_none=True, metadata={
        "description": "A stated time awaiting a manager's confirmation."})


class SyncResultSchema(Schema):
    id = fields.String(allow_none=True, metadata={"description": "The record's id as sent."})
    status = fields.String(validate=validate.OneOf(
        ["created", "updated", "pending", "unchanged", "rejected", "conflict"]), metadata={
        "description": "pending: the revision is stored, but the fields listed under "
                       "pending wait for a manager's confirmation and are not applied yet. "
                       "conflict: the server holds this revision with other content; "
                       "nothing was changed. The app keeps its version by sending it "
                       "as a new revision (incident.revision + 1); both stay in the history."})
    pending = fields.List(fields.String(), metadata={
        "description": "Fields stored but not applied until a manager confirms them."})
    errors = fields.List(fields.Nested(FieldErrorSchema),
                         metadata={"description": "For rejected records; for a conflict, "
                                                  "the fields that differ."})
    problem = fields.Dict(metadata={
        "description": "Only for a conflict: an RFC 9457 problem (type .../sync-conflict, "
                       "status 409, next_revision)."})
    incident = fields.Nested(IncidentSummarySchema,
                             metadata={"description": "Absent for rejected records; for a "
                                                      "conflict, the server's version."})
    receipt = fields.Nested(ReceiptSchema, allow_none=True, metadata={
        "description": "The server's signed receipt for this revision (api.ledger); "
                       "absent for rejected records."})


class SyncResponseSchema(Schema):
    server_time = fields.AwareDateTime()
    results = fields.List(fields.Nested(SyncResultSchema), metadata={
        "description": "results[i] answers records[i]."})


class LocationOutSchema(Schema):
    lat = fields.Float()
    lon = fields.Float()
    accuracy_m = fields.Float(allow_none=True)
    fixed_at = fields.AwareDateTime(allow_none=True)
    source = fields.Enum(LocationSource, by_value=True)


class ActorSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    role = fields.String()


class EventSchema(Schema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    kind = fields.String()
    revision = fields.Integer(allow_none=True)
    actor = fields.Nested(ActorSchema, allow_none=True)
    changes = fields.Dict(metadata={"description": "field: [before, after]"})


class IncidentSchema(Schema):
    id = fields.UUID()
    case_number = fields.String()
    revision = fields.Integer()
    status = fields.Enum(IncidentStatus, by_value=True)
    reporter_id = fields.Integer()
    reporter_position = fields.String()
    station_id = fields.Integer()
    post_id = fields.Integer(allow_none=True)
    destination_post_id = fields.Integer(allow_none=True)
    tapped_at = fields.AwareDateTime(attribute="tapped_at_local", metadata={
        "description": "As the device wrote it, with its offset."})
    logged_at = fields.AwareDateTime(metadata={
        "description": "The instant the server takes as the tap's (tapped_at, or corrected "
                       "by the clock skew when device_time_flag is set); never changes."})
    occurred_at = fields.AwareDateTime(metadata={
        "description": "When the incident happened: logged_at unless the crew stated "
                       "another time. The legal date and the MCI year follow it."})
    occurred_at_pending = fields.AwareDateTime(allow_none=True, metadata={
        "description": "A stated time too long before the tap, awaiting a manager's "
                       "confirmation; occurred_at is unchanged meanwhile."})
    received_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    clock_skew_s = fields.Float()
    device_time_flag = fields.Enum(DeviceTimeFlag, by_value=True, allow_none=True)
    kind = fields.String()
    aggravating = fields.List(fields.String())
    victim_role = fields.String()
    on_duty = fields.Boolean()
    police_needed = fields.Boolean()
    sos = fields.Boolean()
    location = fields.Nested(LocationOutSchema, allow_none=True)
    note = fields.String()
    erdr_number = fields.String(allow_none=True)
    classification = fields.Dict(allow_none=True)


class IncidentDetailSchema(IncidentSchema):
    events = fields.List(fields.Nested(EventSchema))


class IncidentPageSchema(Schema):
    items = fields.List(fields.Nested(IncidentSchema))
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass as ?cursor= for the next page; null on the last page."})


class ListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # cache-busting or tracking parameters are harmless

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class DeviceSchema(Schema):
    person_id = fields.Integer()
    display_name = fields.String(attribute="person.display_name")
    device_id = fields.String()
    station_id = fields.Integer()
    app_version = fields.String(allow_none=True)
    outbox_size = fields.Integer()
    set_aside = fields.Integer()
    last_sync_at = fields.AwareDateTime()
    clock_skew_s = fields.Float()


class DeviceListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceSchema))

