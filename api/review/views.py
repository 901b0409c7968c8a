"""Station managers' endpoints (/api/v1/review), and the administrator's access log."""

import csv
import io
import json
import uuid
from datetime import timedelta

from flask import Blueprint, Response, current_app, stream_with_context
from marshmallow import ValidationError

from api import access_log as access
from api.auth.access import current_person, require
from api.db import utcnow
from api.errors import Problem
from api.openapi import body_schema, query_schema, response_schema, spec
from api.orgs.models import Role
from api.replica import reads_from_replica
from api.requests import endpoint_name
from api.review import export, service
from api.review import figures as figures_service
from api.review.schemas import (
    AccessLogPageSchema,
    AccessLogQuerySchema,
    DeviceHealthListSchema,
    ExportQuerySchema,
    FiguresQuerySchema,
    FiguresSchema,
    ListQuerySchema,
    NoteSchema,
    OptionsSchema,
    ReviewDetailSchema,
    ReviewPageSchema,
    TimeDecisionSchema,
)

bp = Blueprint("review", __name__)

EXPORT_MAX_ROWS = 100_000
# Spreadsheets run a cell starting with these as a formula: neutralise them.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _lang(args: dict) -> str:
    return args.get("lang") or current_person().language.value


@bp.get("/incidents")
@spec(summary="The manager's incidents: filters, sort, keyset pages, total", tags=["review"])
@require(Role.MANAGER)
@query_schema(ListQuerySchema)
@response_schema(ReviewPageSchema)
@reads_from_replica
def list_incidents(query: dict):
    """Incidents of the stations the manager runs; filters combine with AND."""
    args = query
    try:
        items, next_cursor, total = service.list_incidents(
            current_person(), args, limit=args["limit"], cursor=args["cursor"],
            search_cap=current_app.config["REVIEW_SEARCH_TOTAL_CAP"])
    except service.FilterError as err:
        raise ValidationError({err.field: [str(err)]}) from err
    return {"items": items, "next_cursor": next_cursor,
            "total": total.count, "total_exact": total.exact}


def _detail_or_404(detail):
    """What ReviewDetailSchema dumps, or a 404 for an incident outside the scope."""
    if detail is None:
        raise Problem(404, "Not Found", "No such incident at your stations.", type_="not-found")
    return service.detail_view(detail)


@bp.get("/incidents/<uuid:incident_id>")
@spec(summary="One incident: facts, classification, route, police, history, note",
      tags=["review"])
@require(Role.MANAGER)
@response_schema(ReviewDetailSchema)
def get_incident(incident_id: uuid.UUID):
    """Everything recorded about the incident; the view is written to the access log."""
    person = current_person()
    detail = service.get_detail(person, incident_id)
    body = _detail_or_404(detail)
    access.log_access(person, detail.incident, endpoint_name())
    return body


@bp.put("/incidents/<uuid:incident_id>/note")
@spec(summary="Set the manager's note (recorded in the history)", tags=["review"])
@require(Role.MANAGER)
@body_schema(NoteSchema)
@response_schema(ReviewDetailSchema)
def put_note(incident_id: uuid.UUID, body: dict):
    """Replace the note; an empty note clears it. Each change is an event."""
    return _detail_or_404(service.set_note(current_person(), incident_id, body["note"]))


@bp.post("/incidents/<uuid:incident_id>/time-correction")
@spec(summary="Confirm or reject a stated time awaiting a manager (recorded in the history)",
      tags=["review"])
@require(Role.MANAGER)
@body_schema(TimeDecisionSchema)
@response_schema(ReviewDetailSchema)
def decide_time_correction(incident_id: uuid.UUID, body: dict):
    """A time stated too long before the tap waits for a manager of the station."""
    try:
        detail = service.decide_time_correction(
            current_person(), incident_id, confirm=body["decision"] == "confirm",
            occurred_at=body["occurred_at"])
    except service.TimeCorrectionConflict as err:
        raise Problem(409, "Conflict", str(err), type_="time-correction-conflict",
                      errors=[{"field": "occurred_at", "message": str(err)}]) from err
    return _detail_or_404(detail)


@bp.get("/figures")
@spec(summary="Counts per month, part, station and job; delay medians and 90th percentiles",
      tags=["review"])
@require(Role.MANAGER)
@query_schema(FiguresQuerySchema)
@response_schema(FiguresSchema)
@reads_from_replica
def figures(query: dict):
    """Local dates; twelve months up to today when no range is given."""
    return figures_service.figures(current_person(), query["date_from"], query["date_to"],
                                   _lang(query))


def _export_args(args: dict) -> dict:
    limit = current_app.config.get("REVIEW_EXPORT_MAX_ROWS", EXPORT_MAX_ROWS)
    if service.count(current_person(), args, at_most=limit + 1) > limit:
        raise Problem(422, "Too many rows to export",
                      f"More than {limit} incidents match; an export holds at most {limit}. "
                      "Narrow the dates (from, to) or other filters.", type_="export-too-large",
                      errors=[{"field": "from", "message": "Narrow the date range."},
                              {"field": "to", "message": "Narrow the date range."}])
    return args


def _filename(ext: str) -> str:
    return f"qorgau-incidents-{service.today_local(utcnow()).isoformat()}.{ext}"


def _cell(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        value = ", ".join(value)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@bp.get("/export.csv")
@spec(summary="The filtered list as CSV (UTF-8 with BOM, for Excel)", tags=["review"])
@require(Role.MANAGER)
@query_schema(ExportQuerySchema)
def export_csv(query: dict):
    """Same filters and order as the list; headers in the chosen language; times local."""
    args = _export_args(query)
    person = current_person()
    headers = export.EXPORT_HEADERS[_lang(args)]

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        buffer.write("\ufeff")
        writer.writerow(headers)
        for n, row in enumerate(export.export_rows(person, args), 1):
            writer.writerow([_cell(row[c]) for c in export.EXPORT_COLUMNS])
            if n % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{_filename("csv")}"',
                             "Cache-Control": "no-store"})


@bp.get("/export.json")
@spec(summary="The filtered list as JSON", tags=["review"])
@require(Role.MANAGER)
@query_schema(ExportQuerySchema)
def export_json(query: dict):
    """{"exported_at", "filters", "items": [...]}, streamed; same filters and order as the list."""
    args = _export_args(query)
    person = current_person()
    filters = {k: (v.isoformat() if hasattr(v, "isoformat") else
                   v.value if hasattr(v, "value") else v)
               for k, v in args.items() if v is not None}

    def generate():
        head = {"exported_at": utcnow().isoformat(), "filters": filters}
        yield json.dumps(head, ensure_ascii=False)[:-1] + ', "items": ['
        for n, row in enumerate(export.export_rows(person, args)):
            yield ("," if n else "") + json.dumps(row, ensure_ascii=False)
        yield "]}"

    return Response(stream_with_context(generate()), mimetype="application/json",
                    headers={"Content-Disposition":
                             f'attachment; filename="{_filename("json")}"',
                             "Cache-Control": "no-store"})


@bp.get("/options")
@spec(summary="Choices for the list's filters: crew members and police posts",
      tags=["review"])
@require(Role.MANAGER)
@response_schema(OptionsSchema)
def options():
    """The crew of the manager's stations and the police posts of their regions."""
    return service.filter_options(current_person())


@bp.get("/devices")
@spec(summary="Crew devices of the manager's stations: last sync, unsynced, push, storage",
      tags=["review"])
@require(Role.MANAGER)
@response_schema(DeviceHealthListSchema)
def devices():
    """Devices holding records unsynced for more than an hour come first (stale)."""
    return {
        "devices": service.device_health(current_person()),
        "stale_after_s": int(service.STALE_AFTER.total_seconds())}


@bp.get("/access-log")
@spec(summary="Who viewed which incident, and when (administrators)", tags=["review"])
@require(Role.ADMIN)
@query_schema(AccessLogQuerySchema)
@response_schema(AccessLogPageSchema)
def access_log(query: dict):
    """Newest first; the incidents' contents are not part of it."""
    args = dict(query)
    date_from, date_to = args.pop("date_from", None), args.pop("date_to", None)
    items, next_cursor = access.access_log(
        **args, since=date_from and service.local_midnight(date_from),
        before=date_to and service.local_midnight(date_to + timedelta(days=1)))
    return {"items": items, "next_cursor": next_cursor}

