"""Police screens' API: the post's incidents, acknowledge, ЕРДР number, status."""

import uuid

from flask import Blueprint

from api.access_log import log_access
from api.auth.access import current_person, require
from api.openapi import query_schema, response_schema, spec
from api.orgs.models import Role
from api.police import service
from api.police.models import PoliceAlert
from api.police.schemas import (
    ErdrSchema,
    PoliceIncidentDetailSchema,
    PoliceIncidentListSchema,
    PoliceIncidentSchema,
    PoliceListQuerySchema,
    StatusChangeSchema,
)
from api.requests import endpoint_name, load_body

bp = Blueprint("police", __name__)


def _view(incident, alert: PoliceAlert | None) -> dict:
    incident.alert = alert
    incident.urgent = incident.status != "closed" and (alert is None or
                                                       alert.acknowledged_at is None)
    return incident


def _one(incident, schema=PoliceIncidentSchema):
    from api.extensions import db

    alert = db.session.get(PoliceAlert, incident.id)
    return schema().dump(_view(incident, alert))


@bp.get("/incidents")
@spec(summary="The post's incidents (and alerts escalated to it), urgent then newest first",
      tags=["police"])
@require(Role.POLICE)
@query_schema(PoliceListQuerySchema)
@response_schema(PoliceIncidentListSchema)
def list_incidents(query: dict):
    """Unacknowledged first (police needed now at the top), then open, then closed."""
    rows = service.list_for(current_person(), **query)
    return {"items": [_view(i, a) for i, a in rows]}


@bp.get("/incidents/<uuid:incident_id>")
@spec(summary="One incident with its history", responses={200: PoliceIncidentDetailSchema},
      tags=["police"])
@require(Role.POLICE)
def get_incident(incident_id: uuid.UUID):
    """The incident, its route and alert, and every event (each view is access-logged)."""
    incident = service.get_for(current_person(), incident_id)
    log_access(current_person(), incident, endpoint_name())
    return _one(incident, PoliceIncidentDetailSchema)


@bp.post("/incidents/<uuid:incident_id>/acknowledge")
@spec(summary="Acknowledge the alert (idempotent)", responses={200: PoliceIncidentSchema},
      tags=["police"])
@require(Role.POLICE)
def acknowledge(incident_id: uuid.UUID):
    """Records who acknowledged and when; stops escalation; tells the crew member."""
    return _one(service.acknowledge(current_person(), incident_id))


@bp.put("/incidents/<uuid:incident_id>/erdr")
@spec(summary="Record the ЕРДР number as issued", body=ErdrSchema,
      responses={200: PoliceIncidentSchema}, tags=["police"])
@require(Role.POLICE)
def record_erdr(incident_id: uuid.UUID):
    """Record or correct the ЕРДР number; tells the crew member."""
    body = load_body(ErdrSchema())
    return _one(service.record_erdr(current_person(), incident_id, body["erdr_number"].strip()))


@bp.post("/incidents/<uuid:incident_id>/status")
@spec(summary="Set investigating, or closed with a note", body=StatusChangeSchema,
      responses={200: PoliceIncidentSchema}, tags=["police"])
@require(Role.POLICE)
def set_status(incident_id: uuid.UUID):
    """Investigating (note optional) or closed (note required; the crew member is told)."""
    body = load_body(StatusChangeSchema())
    return _one(service.set_status(current_person(), incident_id, body["status"], body["note"]))
