"""SOS endpoints (/api/v1/sos). The SOS itself is created by the incidents' sync
(a record with "sos": true); these carry what is live about it."""

import json
import time
import uuid

from flask import Blueprint, Response, current_app, stream_with_context

from api.access_log import log_access
from api.auth.access import current_person, require
from api.extensions import db
from api.openapi import body_schema, response_schema, spec
from api.orgs.models import Role
from api.requests import endpoint_name
from api.shedding import Full, stream_slot
from api.sos import service
from api.sos.schemas import (
    CrewAlarmSchema,
    FixSchema,
    OnTheWaySchema,
    PinsOutSchema,
    PinsSchema,
    PoliceAlarmSchema,
    StandDownResultSchema,
    StandDownSchema,
    TrackSchema,
)

bp = Blueprint("sos", __name__)

# How often the live stream looks for a change (seconds): the officer's
# acknowledgement reaches the crew's screen within this plus one round trip.
STREAM_POLL = 0.2
# A comment line this often while nothing changes: a phone that left is noticed
# at the next write, which frees its thread (2 s left threads of screens already
# closed busy long enough to delay an acknowledgement by a second in
# bench/alarm_latency.py; 0.5 s did not).
HEARTBEAT = 0.5
# A stream holds one of gunicorn's threads for its whole life (2 per worker by
# default). At most SOS_MAX_STREAMS run in one process (api/shedding.py); one
# more gets the status at once and a "busy" event naming when to look again, so
# open SOS screens can never take every thread from the syncs and the officers'
# acknowledgements.
BUSY_RETRY_SECONDS = 2


@bp.get("/pins")
@spec(summary="What your phones need to check your SOS PINs offline", tags=["sos"])
@require(Role.CREW)
@response_schema(PinsOutSchema)
def get_pins():
    """The salt and the two verifiers (sorted: they do not say which PIN is which)."""
    return service.pins_for(current_person())


@bp.put("/pins")
@spec(summary="Set your stand-down PIN and your duress PIN (keys derived on the phone)",
      tags=["sos"])
@require(Role.CREW)
@body_schema(PinsSchema)
@response_schema(PinsOutSchema)
def put_pins(body: dict):
    """Neither PIN reaches the server: only keys derived from them, kept as slow hashes."""
    return service.set_pins(current_person(), body["salt"], body["pin_key"],
                            body["duress_key"])


@bp.get("/<uuid:incident_id>/status")
@spec(summary="Your SOS, step by step (received, delivered, taken, on the way)",
      tags=["sos"])
@require(Role.CREW)
@response_schema(CrewAlarmSchema)
def crew_status(incident_id: uuid.UUID):
    """After either PIN the status is "cancelled" (a duress PIN is never told apart here)."""
    return service.crew_snapshot(current_person(), incident_id)


@bp.get("/<uuid:incident_id>/stream")
@spec(summary="Your SOS as a server-sent event stream (one event per change)", tags=["sos"])
@require(Role.CREW)
def crew_stream(incident_id: uuid.UUID):
    """text/event-stream: an "sos" event with the status body now and after every change;
    ends after SOS_STREAM_SECONDS (EventSource reconnects by itself)."""
    person_id = current_person().id
    service.crew_snapshot(current_person(), incident_id)  # 404 before the stream starts
    schema = CrewAlarmSchema()
    seconds = current_app.config["SOS_STREAM_SECONDS"]
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    try:
        give_back = stream_slot()
    except Full:
        body = json.dumps(schema.dump(service.crew_snapshot(current_person(), incident_id)),
                          ensure_ascii=False)
        busy = json.dumps({"retry_after": BUSY_RETRY_SECONDS})
        return Response(f"retry: {BUSY_RETRY_SECONDS * 1000}\n\nevent: sos\ndata: {body}\n\n"
                        f"event: busy\ndata: {busy}\n\n",
                        mimetype="text/event-stream", headers=headers)

    @stream_with_context
    def events():
        try:
            yield from _events()
        finally:
            give_back()  # also when the phone went away mid-stream

    def _events():
        from api.orgs.models import Person

        last = None
        n = 0
        quiet_since = time.monotonic()
        ends = time.monotonic() + seconds
        yield "retry: 1000\n\n"
        while True:
            db.session.rollback()  # a fresh look at what others committed
            person = db.session.get(Person, person_id)
            body = json.dumps(schema.dump(service.crew_snapshot(person, incident_id)),
                              ensure_ascii=False)
            db.session.rollback()  # no connection held while waiting
            now = time.monotonic()
            if body != last:
                n += 1
                last = body
                quiet_since = now
                yield f"id: {n}\nevent: sos\ndata: {body}\n\n"
            elif now - quiet_since >= HEARTBEAT:
                # A phone that went away is noticed at the next write, which ends
                # the stream and frees the server's thread.
                quiet_since = now
                yield ": still here\n\n"
            if now >= ends:
                # Said before closing, so the phone opens the next stream at once
                # instead of after EventSource's retry (kept for real failures).
                yield "event: end\ndata: {}\n\n"
                return
            time.sleep(STREAM_POLL)

    return Response(events(), mimetype="text/event-stream", headers=headers)


@bp.post("/<uuid:incident_id>/fixes")
@spec(summary="A live location fix while your SOS is open", tags=["sos"])
@require(Role.CREW)
@body_schema(FixSchema)
@response_schema(TrackSchema)
def add_fix(body: dict, incident_id: uuid.UUID):
    """Every 10 s while the SOS is open and the app is on screen; {"track": false} once over."""
    return service.add_fix(current_person(), incident_id, body)


@bp.post("/<uuid:incident_id>/stand-down")
@spec(summary="End your SOS with your PIN", tags=["sos"])
@require(Role.CREW)
@body_schema(StandDownSchema)
@response_schema(StandDownResultSchema)
def stand_down(body: dict, incident_id: uuid.UUID):
    """Your PIN ends it; the duress PIN answers the same and keeps it open for the police.
    A wrong PIN is a 422 on "key"; too many in a row, a 429."""
    return service.stand_down(current_person(), incident_id, body["key"])


@bp.get("/<uuid:incident_id>")
@spec(summary="An SOS for the police and managers: state, duress, newest fix, trail",
      tags=["sos"])
@require(Role.POLICE, Role.MANAGER)
@response_schema(PoliceAlarmSchema)
def alarm(incident_id: uuid.UUID):
    """Each view is access-logged, like the incident's own."""
    incident, body = service.view_for(current_person(), incident_id)
    log_access(current_person(), incident, endpoint_name())
    return body


@bp.post("/<uuid:incident_id>/on-the-way")
@spec(summary="Tell the crew member you are on the way (optional ETA in minutes)",
      tags=["sos"])
@require(Role.POLICE)
@body_schema(OnTheWaySchema)
@response_schema(PoliceAlarmSchema)
def on_the_way(body: dict, incident_id: uuid.UUID):
    """Acknowledges the alert too if nobody has; the crew's screen shows it at once."""
    return service.on_the_way(current_person(), incident_id, body["eta_minutes"])
