"""Sign-in with passkeys, enrolment from invitations, sessions and "my devices"."""

import base64

from flask import Blueprint, Response, current_app, json, request
from sqlalchemy import select

from api.auth import service
from api.auth.access import (
    check_origin,
    clear_session_cookie,
    current_person,
    current_session,
    demo_allowed,
    require,
    set_session_cookie,
)
from api.auth.models import AuthSession, Passkey
from api.auth.ratelimit import hit
from api.auth.schemas import (
    AddPasskeySchema,
    DemoPeopleSchema,
    DemoSignInSchema,
    DevicesSchema,
    EmptySchema,
    InvitationTokenSchema,
    LoginVerifySchema,
    MeSchema,
    RegisterVerifySchema,
    WebAuthnOptionsSchema,
)
from api.auth.sessions import revoke_session, start_session
from api.db import iso_utc
from api.errors import Problem
from api.extensions import db
from api.openapi import spec
from api.orgs.models import Person
from api.requests import json_body, load_body

bp = Blueprint("auth", __name__)
TAGS = ["auth"]


def relying_party() -> service.RelyingParty:
    cfg = current_app.config
    return service.RelyingParty(id=cfg["RP_ID"], name=cfg["RP_NAME"],
                                origins=list(cfg["ALLOWED_ORIGINS"]))


def limit_address(scope: str) -> None:
    count, seconds = current_app.config["AUTH_RATE_LIMIT_PER_ADDRESS"]
    hit(f"{scope}:addr:{request.remote_addr}", count, seconds)


def limit_invitation(token: str) -> None:
    count, seconds = current_app.config["AUTH_RATE_LIMIT_PER_INVITATION"]
    # Keyed by the token's hash: the counter table never holds a usable token.
    hit(f"invite:{service._hash(token)}", count, seconds)


def public_post() -> None:
    """What every sign-in/enrolment POST checks before anything else."""
    check_origin()


def options_response(options_json: str) -> Response:
    return Response(options_json, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def me_body(session: AuthSession) -> dict:
    person = session.person
    station = person.station
    post = person.post
    return {
        "person": {
            "id": person.id, "display_name": person.display_name,
            "role": person.role.value,
            "position": person.position.value if person.position else None,
            "language": person.language.value,
            "station": ({"id": station.id, "code": station.code, "name": station.name}
                        if station else None),
            "post": ({"id": post.id, "code": post.code, "hospital_name": post.hospital_name}
                     if post else None),
            "managed_stations": [{"id": s.id, "code": s.code, "name": s.name}
                                 for s in sorted(person.managed_stations, key=lambda s: s.code)],
        },
        "csrf_token": session.csrf_token,
        "session": {"id": session.id, "expires_at": iso_utc(session.expires_at)},
        "demo": bool(session.is_demo),
        "sms": sms_credentials(session),
    }


def sms_credentials(session: AuthSession) -> dict | None:
    """A crew device's SMS key and its region's SMS number (docs/sms.md); None for
    other roles. The key id is the session's id."""
    if session.sms_key is None:
        return None
    station = session.person.station
    numbers = current_app.config["SMS_NUMBERS"] or {}
    return {"key_id": session.id,
            "key": base64.urlsafe_b64encode(session.sms_key).rstrip(b"=").decode(),
            "number": numbers.get(station.region_code) if station else None}


def signed_in(person: Person, *, passkey: Passkey | None = None, is_demo: bool = False,
              status: int = 200) -> Response:
    """Start a session, set its cookie and answer with the /me body."""
    # Signing in again on this browser replaces its session (revoked in the same commit).
    token, session = start_session(person, passkey=passkey, is_demo=is_demo,
                                   user_agent=request.headers.get("User-Agent", ""),
                                   replacing=current_session())
    response = Response(json.dumps(me_body(session)), status=status,
                        mimetype="application/json", headers={"Cache-Control": "no-store"})
    set_session_cookie(response, token, session)
    return response


# --- who am I ----------------------------------------------------------------

@bp.get("/me")
@spec(summary="The signed-in person, the CSRF token and the session", tags=TAGS,
      responses={200: MeSchema})
@require()
def me():
    """The signed-in person, with the CSRF token the page must send on every change."""
    response = Response(json.dumps(me_body(current_session())), mimetype="application/json",
                        headers={"Cache-Control": "no-store"})
    return response


# --- enrolment from an invitation --------------------------------------------

@bp.post("/register/options")
@spec(summary="Passkey creation options for an invitation", tags=TAGS,
      body=InvitationTokenSchema, responses={200: WebAuthnOptionsSchema})
def register_options():
    """Creation options for the invited person (the invitation stays unused)."""
    public_post()
    limit_address("register")
    data = load_body(InvitationTokenSchema())
    limit_invitation(data["invitation"])
    invitation = service.usable_invitation(data["invitation"])
    return options_response(service.registration_options(
        relying_party(), invitation.person, invitation))


@bp.post("/register/verify")
@spec(summary="Register the passkey and sign in", tags=TAGS, body=RegisterVerifySchema,
      responses={201: MeSchema})
def register_verify():
    """Verify the new passkey, use up the invitation and sign the person in."""
    public_post()
    limit_address("register")
    data = load_body(RegisterVerifySchema())
    limit_invitation(data["invitation"])
    passkey = service.enrol_with_invitation(relying_party(), data["invitation"],
                                            data["credential"], data["device_label"],
                                            session=current_session())
    return signed_in(passkey.person, passkey=passkey, status=201)


# --- sign-in -----------------------------------------------------------------

@bp.post("/login/options")
@spec(summary="Passkey request options (discoverable credentials)", tags=TAGS,
      body=EmptySchema, responses={200: WebAuthnOptionsSchema})
def login_options():
    """Request options with an empty allowCredentials: no user name is asked for."""
    public_post()
    limit_address("login")
    if request.get_data():
        json_body()  # an empty body is fine; a body must be JSON
    return options_response(service.authentication_options(relying_party()))


@bp.post("/login/verify")
@spec(summary="Sign in with a passkey", tags=TAGS, body=LoginVerifySchema,
      responses={200: MeSchema})
def login_verify():
    """Verify the assertion against its one-time challenge and start a session."""
    public_post()
    limit_address("login")
    data = load_body(LoginVerifySchema())
    passkey = service.authenticate(relying_party(), data["credential"])
    return signed_in(passkey.person, passkey=passkey)


@bp.post("/logout")
@spec(summary="Sign out this device", tags=TAGS, responses={204: None})
@require()
def logout():
    """End this session (the passkey stays registered)."""
    revoke_session(current_session())
    response = Response(status=204)
    clear_session_cookie(response)
    return response


# --- my devices ----------------------------------------------------------------

@bp.get("/devices")
@spec(summary="My passkeys and sessions", tags=TAGS, responses={200: DevicesSchema})
@require()
def devices():
    """The signed-in person's live passkeys and sessions; the current ones are marked."""
    session = current_session()
    person = current_person()
    passkeys = [{
        "id": p.id, "device_label": p.device_label,
        "created_at": iso_utc(p.created_at),
        "last_used_at": iso_utc(p.last_used_at) if p.last_used_at else None,
        "transports": list(p.transports or []), "aaguid": p.aaguid,
        "backed_up": bool(p.backed_up), "flagged": p.flagged_at is not None,
        "current": p.id == session.passkey_id,
    } for p in service.live_passkeys(person.id)]
    sessions = [{
        "id": s.id, "created_at": iso_utc(s.created_at),
        "last_seen_at": iso_utc(s.last_seen_at),
        "expires_at": iso_utc(s.expires_at), "user_agent": s.user_agent,
        "passkey_id": s.passkey_id, "is_demo": bool(s.is_demo), "current": s.id == session.id,
    } for s in service.live_sessions(person.id)]
    return {"passkeys": passkeys, "sessions": sessions}


def _own(model, object_id: int):
    obj = db.session.get(model, object_id)
    # Someone else's device is "not found": its existence is not theirs to learn.
    if obj is None or obj.person_id != current_person().id or obj.revoked_at is not None:
        raise Problem(404, "Not Found", f"You have no {model.__tablename__[:-1]} "
                      f"with id {object_id}.", type_="not-found")
    return obj


def _ended(session_was_current: bool) -> Response:
    response = Response(status=204)
    if session_was_current:
        clear_session_cookie(response)
    return response


@bp.delete("/passkeys/<int(min=1,max=2147483647):passkey_id>")
@spec(summary="Revoke one of my passkeys", tags=TAGS, responses={204: None})
@require()
def delete_passkey(passkey_id: int):
    """Revoke a passkey; the sessions it started end too."""
    passkey = _own(Passkey, passkey_id)
    was_current = current_session().passkey_id == passkey.id
    service.revoke_passkey(passkey)
    return _ended(was_current)


@bp.delete("/sessions/<int(min=1,max=2147483647):session_id>")
@spec(summary="End one of my sessions", tags=TAGS, responses={204: None})
@require()
def delete_session(session_id: int):
    """Sign a device out (this one too, if it is the current session)."""
    session = _own(AuthSession, session_id)
    was_current = session.id == current_session().id
    revoke_session(session)
    return _ended(was_current)


@bp.post("/passkeys/options")
@spec(summary="Creation options for a further passkey", tags=TAGS,
      responses={200: WebAuthnOptionsSchema})
@require()
def add_passkey_options():
    """Creation options to add a passkey (a new phone) while signed in."""
    limit_address("register")
    return options_response(service.registration_options(relying_party(), current_person()))


@bp.post("/passkeys/verify")
@spec(summary="Register a further passkey", tags=TAGS, body=AddPasskeySchema,
      responses={201: None})
@require()
def add_passkey_verify():
    """Verify and store a further passkey for the signed-in person."""
    limit_address("register")
    data = load_body(AddPasskeySchema())
    passkey = service.add_passkey(relying_party(), current_person(), data["credential"],
                                  data["device_label"], session_id=current_session().id)
    return {"id": passkey.id, "device_label": passkey.device_label}, 201


# --- the demo sign-in (one-command local run only) -----------------------------

def _demo_or_404() -> None:
    if not demo_allowed():
        # Indistinguishable from a route that does not exist.
        raise Problem(404, "Not Found", "The requested URL was not found on the server.")


@bp.get("/demo/people")
@spec(summary="People to sign in as (demo run only)", tags=TAGS,
      responses={200: DemoPeopleSchema})
def demo_people():
    """Everyone active, to pick from on the demo sign-in screen. 404 unless demo."""
    _demo_or_404()
    people = db.session.scalars(select(Person).where(Person.active.is_(True))
                                .order_by(Person.role, Person.id))
    return {"people": DemoPeopleSchema().dump({"people": list(people)})["people"]}


@bp.post("/demo")
@spec(summary="Sign in as anyone (demo run only)", tags=TAGS, body=DemoSignInSchema,
      responses={200: MeSchema})
def demo_sign_in():
    """A demo session for any active person. 404 unless QORGAU_DEMO and loopback."""
    _demo_or_404()
    public_post()
    data = load_body(DemoSignInSchema())
    person = db.session.get(Person, data["person_id"])
    if person is None or not person.active:
        raise Problem(422, "Validation failed", "No active person with this id.",
                      type_="validation",
                      errors=[{"field": "person_id", "message": "No active person."}])
    return signed_in(person, is_demo=True)
