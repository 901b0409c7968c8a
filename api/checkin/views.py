"""Check-in timers (/api/v1/checkin): a crew member starts one and says "I'm safe";
their station's managers see them. The alarm figures (BS 8484) for the console."""

import uuid

from flask import Blueprint

from api.auth.access import current_person, require
from api.checkin import service
from api.checkin.schemas import (
    AlarmFiguresSchema,
    AlarmQuerySchema,
    StartSchema,
    TimerListSchema,
    TimerSchema,
)
from api.openapi import body_schema, query_schema, spec
from api.orgs.models import Role

bp = Blueprint("checkin", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.post("/timers")
@spec(summary="Start a check-in timer (the server's copy is the one that counts)",
      responses={201: TimerSchema, 200: TimerSchema}, tags=["checkin"])
@require(Role.CREW)
@body_schema(StartSchema)
def start(body: dict):
    """201 when registered now; 200 when this id was already registered (a retry)."""
    timer, created = service.start(current_person(), body)
    return TimerSchema().dump(timer), 201 if created else 200, NO_STORE


@bp.get("/timers")
@spec(summary="Open check-in timers: your own (crew), your stations' (manager)",
      responses={200: TimerListSchema}, tags=["checkin"])
@require(Role.CREW, Role.MANAGER)
def timers():
    """Open ones and those closed in the last hour, latest end first."""
    return TimerListSchema().dump({"items": service.list_for(current_person())}), 200, NO_STORE


@bp.get("/timers/<uuid:timer_id>")
@spec(summary="One check-in timer", responses={200: TimerSchema}, tags=["checkin"])
@require(Role.CREW, Role.MANAGER)
def timer(timer_id: uuid.UUID):
    """Another person's (or station's) timer is a 404."""
    return TimerSchema().dump(service.get_for(current_person(), timer_id)), 200, NO_STORE


@bp.post("/timers/<uuid:timer_id>/safe")
@spec(summary="\"I'm safe\": close the timer", responses={200: TimerSchema}, tags=["checkin"])
@require(Role.CREW)
def safe(timer_id: uuid.UUID):
    """Whoever the overdue timer alerted is told; repeating it changes nothing."""
    return TimerSchema().dump(service.safe(current_person(), timer_id)), 200, NO_STORE


@bp.get("/alarm-figures")
@spec(summary="Each post's share of SOS / police-needed-now alerts taken within 10 s and 40 s",
      responses={200: AlarmFiguresSchema}, tags=["checkin"])
@require(Role.MANAGER, Role.ADMIN)
@query_schema(AlarmQuerySchema)
def alarm_figures(query: dict):
    """BS 8484: 80 % within 10 s, 98.5 % within 40 s. A manager: their stations' alerts."""
    return AlarmFiguresSchema().dump(service.alarm_figures(
        current_person(), query["date_from"], query["date_to"]))
