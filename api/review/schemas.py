"""Request and response shapes of the station managers' endpoints."""

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from api.incidents.models import IncidentStatus
from api.incidents.schemas import (
    KINDS,
    ActorSchema,
    EventSchema,
    IncidentSchema,
    ReceiptSchema,
)
from api.law.schemas import Instant
from api.ledger.schemas import ChainSchema
from api.police.schemas import AlertSchema
from api.requests import Schema

MAX_NOTE = 2000
MAX_RANGE_DAYS = 366 * 10
SORTS = ["-occurred_at", "occurred_at", "-received_at", "received_at",
         "-case_number", "case_number"]


class DateRangeSchema(Schema):
    """Local (Asia/Almaty) calendar dates, both ends included."""

    class Meta:
        unknown = EXCLUDE  # cache-busting or tracking parameters are harmless

    date_from = fields.Date(data_key="from", load_default=None, metadata={
        "description": "First local date (YYYY-MM-DD, Asia/Almaty), included."})
    date_to = fields.Date(data_key="to", load_default=None, metadata={
        "description": "Last local date (YYYY-MM-DD, Asia/Almaty), included."})

    @validates_schema
    def _range(self, data, **kwargs):
        start, end = data.get("date_from"), data.get("date_to")
        for name, value in (("from", start), ("to", end)):
            if value is not None and not 2000 <= value.year <= 2100:
                raise ValidationError("Must be a date in the years 2000-2100.", name)
        if start and end and start > end:
            raise ValidationError("Must not be before 'from'.", "to")
        if start and end and (end - start).days > MAX_RANGE_DAYS:
            raise ValidationError(f"The range may span at most {MAX_RANGE_DAYS} days.", "to")


class FilterSchema(DateRangeSchema):
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    part = fields.Integer(load_default=None, validate=validate.Range(1, 6), metadata={
        "description": "Article 380-3 part of the provisional classification."})
    status = fields.Enum(IncidentStatus, by_value=True, load_default=None)
    reporter_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1),
                                 metadata={"description": "The crew member who logged it."})
    post_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1),
                             metadata={"description": "The police post it was routed to."})
    police_needed = fields.Boolean(load_default=None, metadata={
        "description": "Urgency: the crew asked for police at once."})
    q = fields.String(load_default=None, validate=validate.Length(1, 100),
                      metadata={"description": "Text in the note, case or ЕРДР number."})
    sort = fields.String(load_default="-occurred_at", validate=validate.OneOf(SORTS))


class ListQuerySchema(FilterSchema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=300))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AccessLogQuerySchema(DateRangeSchema):
    person_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1))
    incident_id = fields.UUID(load_default=None)
    cursor = fields.Integer(load_default=None, validate=validate.Range(1, 2**63 - 1),
                            metadata={"description": "next_cursor of the previous page."})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class NoteSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(max=MAX_NOTE),
                         metadata={"description": "The manager's note; empty clears it."})


class TimeDecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["confirm", "reject"]))
    occurred_at = Instant(required=True, metadata={
        "description": "The pending time as shown to the manager (occurred_at_pending)."})


class PersonRefSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    position = fields.String(allow_none=True)


class NamedSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class PostRefSchema(Schema):
    id = fields.Integer()
    hospital_name = fields.String()


class ReviewItemSchema(Schema):
    """One row of the manager's list: what a desk needs to pick an incident."""

    id = fields.UUID()
    case_number = fields.String(allow_none=True)
    occurred_at = fields.AwareDateTime()
    logged_at = fields.AwareDateTime()
    occurred_at_pending = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime()
    status = fields.Enum(IncidentStatus, by_value=True)
    kind = fields.String()
    legal_status = fields.String(allow_none=True)
    legal_part = fields.Integer(allow_none=True)
    victim_role = fields.String()
    police_needed = fields.Boolean()
    reporter = fields.Nested(PersonRefSchema)
    station = fields.Nested(NamedSchema)
    post = fields.Nested(PostRefSchema, allow_none=True)
    erdr_number = fields.String(allow_none=True)
    has_location = fields.Function(lambda i: i.lat is not None)


class ReviewPageSchema(Schema):
    items = fields.List(fields.Nested(ReviewItemSchema))
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass as ?cursor= (with the same filters and sort); null on the last."})
    total = fields.Integer(metadata={"description": "Incidents matching the filters (at "
                                     "least this many when total_exact is false)."})
    total_exact = fields.Boolean(metadata={
        "description": "False when a text search (q) matched more than the configured "
                       "cap (REVIEW_SEARCH_TOTAL_CAP, default 1000) and counting stopped."})


class ManagerNoteSchema(Schema):
    note = fields.String()
    author = fields.Nested(ActorSchema)
    updated_at = fields.AwareDateTime()


class ReviewDetailSchema(IncidentSchema):
    reporter = fields.Nested(PersonRefSchema)
    station = fields.Nested(NamedSchema)
    post = fields.Nested(PostRefSchema, allow_none=True)
    destination_post = fields.Nested(PostRefSchema, allow_none=True)
    legal_status = fields.String(allow_none=True)
    legal_part = fields.Integer(allow_none=True)
    alert = fields.Nested(AlertSchema, allow_none=True)
    map_url = fields.String(allow_none=True, metadata={
        "description": "The location on OpenStreetMap (opened by the person, never fetched)."})
    manager_note = fields.Nested(ManagerNoteSchema, allow_none=True)
    events = fields.List(fields.Nested(EventSchema))
    chain = fields.Nested(ChainSchema, metadata={
        "description": "Whether the incident's hash chain verifies (api.ledger)."})
    receipts = fields.List(fields.Nested(ReceiptSchema), metadata={
        "description": "The signed receipts given for its synced revisions."})


class CountSchema(Schema):
    key = fields.String()
    label = fields.String(allow_none=True)
    count = fields.Integer()


class MonthSchema(Schema):
    month = fields.String(metadata={"description": "YYYY-MM, local."})
    total = fields.Integer()
    by_part = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "part number, or 'none' (not an Article 380-3 offence), -> count"})


class DurationSchema(Schema):
    count = fields.Integer()
    median_s = fields.Float(allow_none=True)
    p90_s = fields.Float(allow_none=True)


class FiguresSchema(Schema):
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    total = fields.Integer()
    by_month = fields.List(fields.Nested(MonthSchema))
    by_station = fields.List(fields.Nested(CountSchema))
    by_job = fields.List(fields.Nested(CountSchema))
    tap_to_sync = fields.Nested(DurationSchema)
    sync_to_ack = fields.Nested(DurationSchema)


class PushStateSchema(Schema):
    status = fields.String(metadata={"description": "subscribed | none"})
    last_success_at = fields.AwareDateTime(allow_none=True)


class MediaHeldSchema(Schema):
    pending = fields.Integer(metadata={"description": "Photos and recordings not uploaded yet."})
    pending_bytes = fields.Integer()
    refused = fields.Integer(metadata={"description": "Files the server refused (kept on "
                                                      "the phone, shown to the crew member)."})
    reported_at = fields.AwareDateTime()
    quota_bytes = fields.Integer(allow_none=True)
    usage_bytes = fields.Integer(allow_none=True)


class DeviceHealthSchema(Schema):
    person = fields.Nested(PersonRefSchema)
    station = fields.Nested(NamedSchema)
    device_id = fields.String()
    app_version = fields.String(allow_none=True)
    last_sync_at = fields.AwareDateTime()
    outbox_size = fields.Integer(metadata={"description": "Unsynced records it reported."})
    left_unsynced = fields.Integer(metadata={
        "description": "Reported minus the batch it sent then: still on the phone."})
    set_aside = fields.Integer(metadata={
        "description": "Records the phone stopped sending because the server failed on "
                       "each of them alone: still on the phone; a server fault to look into."})
    stale = fields.Boolean(metadata={
        "description": "Holds records unsynced for more than an hour."})
    push = fields.Nested(PushStateSchema)
    storage_persisted = fields.Boolean(allow_none=True, metadata={
        "description": "null: the device has not reported it."})
    media = fields.Nested(MediaHeldSchema, allow_none=True, metadata={
        "description": "The phone's media not yet uploaded (api.media); null: never reported."})


class DeviceHealthListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceHealthSchema))
    stale_after_s = fields.Integer()


class AccessLogEntrySchema(Schema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    person_id = fields.Integer()
    person_name = fields.String(attribute="person.display_name")
    role = fields.String()
    incident_id = fields.UUID()
    via = fields.String()


class AccessLogPageSchema(Schema):
    items = fields.List(fields.Nested(AccessLogEntrySchema))
    next_cursor = fields.Integer(allow_none=True)


_LANG = fields.String(load_default=None, validate=validate.OneOf(["ru", "kk", "en"]),
                      metadata={"description": "Language of labels (default: the person's)."})


class ExportQuerySchema(FilterSchema):
    lang = _LANG


class FiguresQuerySchema(DateRangeSchema):
    lang = _LANG


class OptionsSchema(Schema):
    stations = fields.List(fields.Nested(NamedSchema))
    crew = fields.List(fields.Nested(PersonRefSchema))
    posts = fields.List(fields.Nested(PostRefSchema))
