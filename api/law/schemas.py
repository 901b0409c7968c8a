"""Request and response schemas of the law endpoints.

The choices come from the rules document itself, so adding a circumstance or
a role to the JSON is the only change needed to accept it.
"""

import re
from typing import ClassVar

from marshmallow import ValidationError, fields, validate

from api.law.service import MAX_YEAR, MIN_YEAR, parse_instant, rules
from api.requests import Schema

_RULES = rules()
KINDS = [k["id"] for k in _RULES["kinds"]]
CIRCUMSTANCES = [c["id"] for c in _RULES["aggravating_circumstances"]]
ROLES = [r["id"] for r in _RULES["victim_roles"]]
LANGUAGES = list(_RULES["languages"])
STATUSES = ["within", "outside", "pending"]
PENALTY_TYPES = sorted(_RULES["penalty_templates"])
REASON_CODES = [r["code"] for r in _RULES["reasons"]]
WARNING_CODES = sorted(_RULES["warnings"])


def _one_of(choices: list[str]) -> validate.OneOf:
    return validate.OneOf(choices, error="Must be one of: {choices}.")


def _no_duplicates(values: list) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValidationError(
            f"Each circumstance may be given once; repeated: {', '.join(repeated)}.")


_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?$", re.ASCII)


class Instant(fields.DateTime):
    """An RFC 3339 date-time with an offset: exactly what the classifier and
    the PWA accept (marshmallow's own parser takes more spellings)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "Not a valid date-time; use ISO 8601 with a UTC offset, "
                   "e.g. 2026-03-07T10:15:00+05:00.",
        "naive": "Must include a UTC offset, e.g. 2026-03-07T10:15:00+05:00; "
                 "a time without one is ambiguous.",
        "range": f"Must be in the years {MIN_YEAR}-{MAX_YEAR}.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if _NAIVE.match(value):
            raise self.make_error("naive")
        try:
            return parse_instant(value)
        except ValueError as err:
            if value[:4].isdigit() and not MIN_YEAR <= int(value[:4]) <= MAX_YEAR:
                raise self.make_error("range") from err
            raise self.make_error("invalid") from err


class StrictBoolean(fields.Boolean):
    """JSON true or false only: "yes", 1 or "false" are mistakes, not answers."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ClassifyRequestSchema(Schema):
    """The facts of one incident, to classify without storing anything."""

    kind = fields.String(required=True, validate=_one_of(KINDS),
                         metadata={"description": "What was done."})
    aggravating = fields.List(
        fields.String(validate=_one_of(CIRCUMSTANCES)),
        load_default=list, validate=_no_duplicates,
        metadata={"description": "Aggravating circumstances of Article 380-3, by id."},
    )
    victim_role = fields.String(required=True, validate=_one_of(ROLES))
    on_duty = StrictBoolean(
        required=True,
        metadata={"description": "On duty, in connection with duty, or in revenge for it."},
    )
    occurred_at = Instant(
        required=True,
        metadata={"description": "When it happened, ISO 8601 with a UTC offset."},
    )
    lang = fields.String(load_default="en", validate=_one_of(LANGUAGES))


class PenaltySchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(PENALTY_TYPES))
    min_mci = fields.Integer()
    max_mci = fields.Integer()
    min_kzt = fields.Integer(metadata={"description": "min_mci at the MCI of the incident's "
                                                      "year; absent while that MCI is unknown."})
    max_kzt = fields.Integer(metadata={"description": "max_mci at the MCI of the incident's "
                                                      "year; absent while that MCI is unknown."})
    max_hours = fields.Integer()
    min_years = fields.Integer()
    max_years = fields.Integer()
    text = fields.String(required=True)


class ReasonSchema(Schema):
    code = fields.String(required=True, validate=validate.OneOf(REASON_CODES))
    text = fields.String(required=True)


class WarningSchema(Schema):
    code = fields.String(required=True, validate=validate.OneOf(WARNING_CODES))
    year = fields.Integer(metadata={"description": "mci_missing: the year the MCI table lacks."})
    text = fields.String(required=True)


class ClassificationSchema(Schema):
    """A provisional classification; the investigator decides."""

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    article = fields.String(required=True)
    part = fields.Integer(allow_none=True, validate=validate.Range(1, 6))
    aggravated = fields.Boolean(required=True)
    aggravating = fields.List(fields.String(validate=validate.OneOf(CIRCUMSTANCES)))
    penalties = fields.List(fields.Nested(PenaltySchema))
    mci_year = fields.Integer(required=True,
                              metadata={"description": "Local year of the incident."})
    mci_kzt = fields.Integer(allow_none=True, metadata={"description": "1 MCI in tenge that year."})
    investigated_by = fields.String(allow_none=True)
    summary = fields.String(required=True)
    reason = fields.Nested(ReasonSchema, allow_none=True,
                           metadata={"description": "First reason when outside or pending."})
    reasons = fields.List(fields.Nested(ReasonSchema))
    warnings = fields.List(fields.Nested(WarningSchema), required=True, metadata={
        "description": "Empty, or e.g. mci_missing: no MCI for the year, so "
                       "amounts are in MCI only (min_kzt and max_kzt absent)."})
    disclaimer = fields.String(required=True)
    local_date = fields.String(required=True,
                               metadata={"description": "Legal date in Asia/Almaty, YYYY-MM-DD.",
                                         "format": "date"})
    rules_version = fields.String(required=True)
    lang = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
