"""Organisation reference data, and the people a manager or administrator looks after.

api.orgs' endpoints (blueprint "orgs"): they live here, above api.orgs, because
every one of them is served behind auth's gate (api.auth.access) and the people
ones issue invitations and revoke devices (api.auth.service)."""

from flask import Blueprint, current_app, request
from sqlalchemy import func, select

from api.auth import service as auth
from api.auth.access import current_person, require
from api.auth.models import Passkey
from api.auth.schemas import InvitationOutSchema, InvitationRequestSchema, RevokedSchema
from api.db import iso_utc
from api.errors import Problem
from api.extensions import db
from api.openapi import body_schema, response_schema, spec
from api.orgs import service
from api.orgs.models import Person, PolicePost, Region, Role
from api.orgs.schemas import (
    ManagedPeopleSchema,
    ManagedPersonSchema,
    NewPersonSchema,
    PostListSchema,
    RegionSchema,
)
from api.requests import load_body

bp = Blueprint("orgs", __name__)


@bp.get("/regions")
def regions():
    """The 20 ISO 3166-2:KZ units. Public reference data, like the law rules."""
    rows = db.session.scalars(select(Region).order_by(Region.code))
    return {"regions": RegionSchema(many=True).dump(rows)}


@bp.get("/posts")
@spec(summary="Police posts (hospitals), the caller's own region first", tags=["orgs"])
@require()
@response_schema(PostListSchema)
def posts():
    """Hospitals with a police post: the crew app's destination list, kept for offline use."""
    person = current_person()
    station = person.station or next(iter(person.managed_stations), None)
    home = station.region_code if station else person.post.region_code if person.post else None
    rows = db.session.scalars(select(PolicePost).order_by(
        (PolicePost.region_code != home) if home else PolicePost.region_code,
        PolicePost.region_code, PolicePost.hospital_name))
    return {"posts": rows}


def _managed_person(person_id: int) -> Person:
    """The person, if the caller may manage their devices; 404 / 403 otherwise."""
    person = db.session.get(Person, person_id)
    if person is None:
        raise Problem(404, "Not Found", f"No person with id {person_id}.", type_="not-found")
    if not auth.may_manage_devices(current_person(), person):
        raise Problem(403, "Forbidden", "You may manage only the crew of your own stations.",
                      type_="forbidden")
    return person


@bp.get("/people")
@spec(summary="People I may invite or whose devices I may revoke", tags=["people"],
      responses={200: ManagedPeopleSchema})
@require(Role.MANAGER, Role.ADMIN)
def people():
    """A manager's crew (their stations), or everyone for an administrator."""
    actor = current_person()
    listed = service.people_in_scope(actor)
    counts = dict(db.session.execute(
        select(Passkey.person_id, func.count()).where(
            Passkey.revoked_at.is_(None), Passkey.person_id.in_([p.id for p in listed] or [-1]))
        .group_by(Passkey.person_id)).all())
    return ManagedPeopleSchema().dump({
        "people": [_managed_row(p, counts.get(p.id, 0)) for p in listed],
        "stations": service.stations_for_new_people(actor)})


def _managed_row(p: Person, passkeys: int) -> dict:
    return {"id": p.id, "display_name": p.display_name, "role": p.role,
            "position": p.position, "station": p.station.code if p.station else None,
            "station_name": p.station.name if p.station else None,
            "active": p.active, "passkeys": passkeys}


@bp.post("/people")
@spec(summary="Add a crew member to one of my stations (then invite them)", tags=["people"],
      responses={201: ManagedPersonSchema})
@require(Role.MANAGER, Role.ADMIN)
@body_schema(NewPersonSchema)
def add_person(body: dict):
    """A manager adds crew to a station they manage; an administrator anyone.

    The same rules as `flask people add` (api.orgs.service.add_person); a station
    outside the manager's scope is a 403, a bad field a 422 naming it.
    """
    actor = current_person()
    data = body
    if actor.role == Role.MANAGER:
        if data.get("role", Role.CREW.value) != Role.CREW.value:
            raise Problem(403, "Forbidden", "A station manager may add crew members only.",
                          type_="forbidden")
        codes = {s["code"] for s in service.stations_for_new_people(actor)}
        if data.get("station") not in codes:
            raise Problem(403, "Forbidden",
                          "You may add people only to the stations you manage.",
                          type_="forbidden")
    person = service.add_person({k: v for k, v in data.items() if v is not None})
    return ManagedPersonSchema().dump(_managed_row(person, 0)), 201


@bp.post("/people/<int(min=1,max=2147483647):person_id>/invitations")
@spec(summary="A one-time enrolment link (and QR code) for a person", tags=["people"],
      body=InvitationRequestSchema, responses={201: InvitationOutSchema})
@require(Role.MANAGER, Role.ADMIN)
def create_invitation(person_id: int):
    """Invite a person to register a passkey. Replaces any unused earlier link."""
    person = _managed_person(person_id)
    data = load_body(InvitationRequestSchema()) if request.get_data() else \
        InvitationRequestSchema().load({})
    issued = auth.invite_person(person, base_url=current_app.config["BASE_URL"],
                                   created_by=current_person(), hours=data["hours"])
    body = {"url": issued.url,
            "expires_at": iso_utc(issued.invitation.expires_at),
            "qr_svg": issued.qr.svg_inline(scale=4, light="#fff")}
    return body, 201, {"Cache-Control": "no-store"}


@bp.post("/people/<int(min=1,max=2147483647):person_id>/revoke-devices")
@spec(summary="Revoke all of a person's passkeys and sessions (lost phone)",
      tags=["people"], responses={200: RevokedSchema})
@require(Role.MANAGER, Role.ADMIN)
def revoke_devices(person_id: int):
    """Every passkey, session and open invitation of the person ends at once."""
    person = _managed_person(person_id)
    return auth.revoke_all_devices(person.id)
