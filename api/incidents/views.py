"""Incident endpoints: the crew's batch sync, and reading within one's scope."""

import hashlib

from flask import Blueprint, Response, abort, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from api.access_log import log_access
from api.auth.access import current_person, require
from api.db import utcnow
from api.errors import Problem
from api.incidents import records
from api.incidents import sync as sync_service
from api.incidents.schemas import (
    DeviceListSchema,
    IncidentDetailSchema,
    IncidentPageSchema,
    ListQuerySchema,
    SyncRequestSchema,
    SyncResponseSchema,
)
from api.openapi import query_schema, response_schema, spec
from api.orgs.models import Role
from api.requests import endpoint_name, json_body
from api.shedding import sync_slot

bp = Blueprint("incidents", __name__)

# 100 records with 2,000-character Cyrillic notes are 450 KB of JSON as a
# browser writes it, 1.2 MB from an encoder that escapes to \uXXXX: more than
# the app-wide body limit, so sync has its own, still bounded, limit.
SYNC_MAX_BODY = 2 * 1024 * 1024


@bp.post("/incidents/sync")
@spec(summary="Store a batch of incidents from a crew device (idempotent by id)",
      body=SyncRequestSchema, responses={200: SyncResponseSchema}, tags=["incidents"])
@require(Role.CREW)
def sync():
    """Store a batch of incidents; one result per record, a bad record never blocks the rest."""
    received_at = utcnow()
    limit = current_app.config.get("SYNC_MAX_CONTENT_LENGTH", SYNC_MAX_BODY)
    request.max_content_length = limit
    # Over this process's limit of syncs in flight: 503 + Retry-After at once.
    with sync_slot():
        try:
            body = SyncRequestSchema().load(json_body())
        except RequestEntityTooLarge as err:
            raise Problem(413, "Request Entity Too Large",
                          f"The request body is larger than the limit of {limit} bytes; "
                          "send fewer records per batch.") from err
        # Each incident comes back already as IncidentSummarySchema's plain dict
        # (sync_service.summary), taken before the commit: no reload, no per-record dump.
        results = sync_service.sync(current_person(), received_at=received_at, **body)
    return {"server_time": utcnow().isoformat(), "results": results}


@bp.get("/incidents")
@spec(summary="Incidents in the caller's scope, newest first (keyset pagination)",
      responses={304: None}, tags=["incidents"])
@require(Role.CREW, Role.MANAGER, Role.POLICE)
@query_schema(ListQuerySchema)
@response_schema(IncidentPageSchema)
def list_incidents(query: dict):
    """Crew see their own, managers their stations', police those routed to their post.

    The page has a weak ETag: a phone that sends it back in If-None-Match gets
    304 and no body while nothing on the page changed.
    """
    person = current_person()
    try:
        items, next_cursor = records.list_incidents(person, query["limit"], query["cursor"])
    except ValueError as err:
        raise ValidationError({"cursor": [str(err)]}) from err
    etag = _page_etag(person, query, items, next_cursor)
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = jsonify(IncidentPageSchema().dump({"items": items,
                                                      "next_cursor": next_cursor}))
    response.set_etag(etag, weak=True)
    return response


def _page_etag(person, query: dict, items, next_cursor) -> str:
    """Who asks, which page, and each row's version: every change to an
    incident appends an event, which moves its updated_at (records._new_event);
    the other columns a phone shows are in it too, as a second guard."""
    digest = hashlib.sha256(repr((
        person.id, person.role.value, sorted(person.station_ids_in_scope())
        if person.role == Role.MANAGER else person.post_id,
        query["limit"], query["cursor"], next_cursor,
        [(str(i.id), i.updated_at.isoformat(), i.revision, str(i.status), i.post_id,
          i.case_number, i.erdr_number, i.legal_status, i.legal_part) for i in items],
    )).encode())
    return digest.hexdigest()[:32]


@bp.get("/incidents/<uuid:incident_id>")
@spec(summary="One incident with its history and classification",
      responses={200: IncidentDetailSchema}, tags=["incidents"])
@require(Role.CREW, Role.MANAGER, Role.POLICE)
def get_incident(incident_id):
    """One incident; unknown and out-of-scope ids get the same 404."""
    incident = records.get_incident(current_person(), incident_id)
    if incident is None:
        abort(404)
    body = IncidentDetailSchema().dump(incident)
    if incident.reporter_id == current_person().id:
        body["events"] = [e for e in body.get("events", [])
                          if e.get("kind") not in records.HIDDEN_FROM_REPORTER]
    log_access(current_person(), incident, endpoint_name())  # managers' and officers' views only
    return body


@bp.get("/sync/devices")
@spec(summary="Crew devices of the manager's stations and their unsynced records",
      tags=["incidents"])
@require(Role.MANAGER)
@response_schema(DeviceListSchema)
def devices():
    """Which crew devices still hold records (outbox size) and when they last synced."""
    return {"devices": records.devices_for(current_person())}
