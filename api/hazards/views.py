"""Hazard flags (/api/v1/hazards): raise, renew, withdraw (managers); the region's
flags and one-address look-ups (crew and police). No endpoint lists all flags."""

import uuid

from flask import Blueprint, request

from api.auth.access import current_person, current_session, require
from api.db import utcnow
from api.hazards import service
from api.hazards.schemas import (
    FlagListSchema,
    FlagSchema,
    LookupQuerySchema,
    LookupSchema,
    PostFlagsSchema,
    RaiseSchema,
    RegionFlagSchema,
    RegionFlagsSchema,
    RenewSchema,
)
from api.openapi import body_schema, query_schema, spec
from api.orgs.models import Role
from api.requests import load_body

bp = Blueprint("hazards", __name__)


def _flag(flag) -> dict:
    body = FlagSchema(exclude=["live"]).dump(flag)
    body["live"] = flag.live(utcnow())
    return body


@bp.post("")
@spec(summary="Raise a hazard flag from one of your station's incidents",
      responses={201: FlagSchema}, tags=["hazards"])
@require(Role.MANAGER)
@body_schema(RaiseSchema)
def raise_flag(body: dict):
    """Address, point, radius, reason and months until expiry; logged; the reporter is told."""
    return _flag(service.raise_flag(current_person(), body)), 201


@bp.get("/incident/<uuid:incident_id>")
@spec(summary="The flags raised from one of your station's incidents",
      responses={200: FlagListSchema}, tags=["hazards"])
@require(Role.MANAGER)
def incident_flags(incident_id: uuid.UUID):
    """Newest first, live or not."""
    flags = service.flags_of_incident(current_person(), incident_id)
    return {"items": [_flag(f) for f in flags]}


@bp.post("/<uuid:flag_id>/renew")
@spec(summary="Renew a flag: it expires `months` (default 12) from now", body=RenewSchema,
      responses={200: FlagSchema}, tags=["hazards"])
@require(Role.MANAGER)
def renew(flag_id: uuid.UUID):
    """Logged in the access log."""
    body = load_body(RenewSchema()) if request.content_length else RenewSchema().load({})
    return _flag(service.renew(current_person(), flag_id, body["months"]))


@bp.post("/<uuid:flag_id>/withdraw")
@spec(summary="Withdraw a flag: phones drop it at their next download",
      responses={200: FlagSchema}, tags=["hazards"])
@require(Role.MANAGER)
def withdraw(flag_id: uuid.UUID):
    """Logged in the access log."""
    return _flag(service.withdraw(current_person(), flag_id))


@bp.get("/region")
@spec(summary="The live flags of your region (crew: your station's; police: your post's)",
      responses={200: RegionFlagsSchema}, tags=["hazards"])
@require(Role.CREW, Role.POLICE)
def region_flags():
    """The whole set each time: the phone replaces what it kept, so expired or withdrawn
    flags disappear at the next download. No incident, no person."""
    person = current_person()
    region = service.region_of(person)
    schema = PostFlagsSchema() if person.role == Role.POLICE else RegionFlagsSchema()
    body = schema.dump({"region": service.region_code_iso(region), "generated_at": utcnow(),
                        "items": service.live_flags(region)})
    return body, 200, {"Cache-Control": "no-store"}


@bp.get("/lookup")
@spec(summary="Is this one address flagged? (rate-limited per session)",
      responses={200: LookupSchema}, tags=["hazards"])
@require(Role.CREW, Role.POLICE)
@query_schema(LookupQuerySchema)
def lookup(query: dict):
    """The building the address was read as, and its live flags in your region."""
    key, flags = service.lookup(current_person(), current_session().id, query["address"])
    return {"address_key": key, "items": RegionFlagSchema(many=True).dump(flags)}, 200, \
        {"Cache-Control": "no-store"}
