"""Passkey ceremonies, invitations and device revocation. No Flask request objects.

The browser talks WebAuthn; py_webauthn checks the cryptography. What is ours:
challenges live in the database (any worker can finish a ceremony another
started), each is consumed with one conditional UPDATE so it works exactly
once, and invitations and passkeys carry the states the issue asks for.
"""

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import segno
from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from api.auth.models import AuthSession, Challenge, ChallengePurpose, Invitation, Passkey
from api.auth.sessions import notify_listeners, revoke_sessions_where
from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.orgs.models import Person, Role

CHALLENGE_LIFETIME = timedelta(minutes=5)
DEFAULT_INVITATION_HOURS = 72
MAX_INVITATION_HOURS = 24 * 30
CEREMONY_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class RelyingParty:
    """Where passkeys are valid: from configuration, never from the request."""

    id: str
    name: str
    origins: list[str]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def credential_problem(detail: str, status: int = 400, type_: str = "webauthn") -> Problem:
    return Problem(status, "Passkey check failed", detail, type_=type_,
                   errors=[{"field": "credential", "message": detail}])


def invitation_problem(status: int, detail: str, type_: str) -> Problem:
    return Problem(status, "Invitation not usable", detail, type_=type_,
                   errors=[{"field": "invitation", "message": detail}])


# --- invitations -------------------------------------------------------------

def create_invitation(person: Person, *, created_by: Person | None = None,
                      hours: int = DEFAULT_INVITATION_HOURS) -> tuple[str, Invitation]:
    """A one-time enrolment token for `person` (returned once; only its hash is kept).

    Any older unused invitation of the person is cancelled, so only the newest
    link works and a forgotten one cannot be used later.
    """
    if not person.active:
        raise Problem(409, "Person is deactivated",
                      "A deactivated person cannot be invited.", type_="inactive-person")
    now = utcnow()
    db.session.execute(update(Invitation).where(
        Invitation.person_id == person.id, Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None)).values(revoked_at=now))
    token = secrets.token_urlsafe(32)
    invitation = Invitation(token_hash=_hash(token), person=person, created_by_id=(
        created_by.id if created_by else None), created_at=now,
        expires_at=now + timedelta(hours=hours))
    db.session.add(invitation)
    db.session.commit()
    return token, invitation


def invitation_url(base_url: str, token: str) -> str:
    # The token travels in the fragment, which browsers never send to servers,
    # so it stays out of access logs and Referer headers.
    return f"{base_url.rstrip('/')}/#/enrol/{token}"


def usable_invitation(token: str) -> Invitation:
    """The invitation for a token, if it can still be used; else a problem naming it."""
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.token_hash == _hash(token or "")))
    if invitation is None:
        raise invitation_problem(404, "No such invitation.", "invitation-unknown")
    if invitation.used_at is not None:
        raise invitation_problem(410, "This invitation has already been used. "
                                 "Ask your manager for a new one.", "invitation-used")
    if invitation.revoked_at is not None:
        raise invitation_problem(410, "This invitation was replaced or cancelled. "
                                 "Ask your manager for a new one.", "invitation-revoked")
    if invitation.expires_at <= utcnow():
        raise invitation_problem(410, "This invitation has expired. "
                                 "Ask your manager for a new one.", "invitation-expired")
    if not invitation.person.active:
        raise invitation_problem(410, "This person is deactivated.", "invitation-revoked")
    return invitation


# --- challenges --------------------------------------------------------------

def _new_challenge(purpose: ChallengePurpose, *, person: Person | None = None,
                   invitation: Invitation | None = None) -> bytes:
    now = utcnow()
    challenge = secrets.token_bytes(32)
    db.session.add(Challenge(challenge=challenge, purpose=purpose.value,
                             person_id=person.id if person else None,
                             invitation_id=invitation.id if invitation else None,
                             created_at=now, expires_at=now + CHALLENGE_LIFETIME))
    # Expired challenges are useless; sweeping them here keeps the table small.
    db.session.execute(Challenge.__table__.delete().where(
        Challenge.expires_at < now - timedelta(hours=1)))
    db.session.commit()
    return challenge


def _client_challenge(credential: dict) -> bytes:
    """The challenge the browser signed, read from clientDataJSON (verified again later)."""
    try:
        client_data = json.loads(_b64url_decode(credential["response"]["clientDataJSON"]))
        return _b64url_decode(client_data["challenge"])
    except (KeyError, TypeError, ValueError, binascii.Error, AttributeError) as err:
        raise credential_problem("The credential's clientDataJSON is missing or malformed.") \
            from err


def consume_challenge(credential: dict, purpose: ChallengePurpose) -> Challenge:
    """Mark the credential's challenge used, exactly once, or refuse.

    One conditional UPDATE, committed at once: of two requests racing with the
    same challenge, on any number of workers, only one sees a row change, and
    a failed attempt burns the challenge too.
    """
    value = _client_challenge(credential)
    now = utcnow()
    result = db.session.execute(update(Challenge).where(
        Challenge.challenge == value, Challenge.purpose == purpose.value,
        Challenge.used_at.is_(None), Challenge.expires_at > now).values(used_at=now))
    db.session.commit()
    if result.rowcount != 1:
        raise credential_problem("The challenge is unknown, expired or already used. "
                                 "Start again.", type_="challenge")
    return db.session.scalar(select(Challenge).where(Challenge.challenge == value))


# --- registration ------------------------------------------------------------

def _live_passkeys(person_id: int) -> list[Passkey]:
    return list(db.session.scalars(select(Passkey).where(
        Passkey.person_id == person_id, Passkey.revoked_at.is_(None)).order_by(Passkey.id)))


def registration_options(rp: RelyingParty, person: Person,
                         invitation: Invitation | None = None) -> str:
    """Creation options as JSON: a discoverable credential, verified user, no attestation."""
    challenge = _new_challenge(ChallengePurpose.REGISTER, person=person, invitation=invitation)
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name,
        # The handle is random (Person.webauthn_user_handle), never the database id.
        user_id=person.webauthn_user_handle,
        user_name=person.display_name, user_display_name=person.display_name,
        challenge=challenge, timeout=CEREMONY_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED),
        # The same phone is not enrolled twice for one person.
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id)
                             for p in _live_passkeys(person.id)],
    )
    return options_to_json(options)


def register_passkey(rp: RelyingParty, credential: dict, *, person: Person,
                     challenge: Challenge, device_label: str,
                     session_id: int | None = None) -> Passkey:
    """Verify an attestation against its consumed challenge and store the passkey.

    The person's other devices are told (api.push queues "account.passkey_added"
    in this transaction), so a passkey enrolled by someone else does not go
    unnoticed; `session_id` is the registering browser's own session, if it is
    signed in as the person, which is not told about itself.
    """
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge.challenge,
            expected_rp_id=rp.id, expected_origin=rp.origins,
            require_user_verification=True)
    # Hostile input may break the parser in many ways; each is a refusal, never a 500.
    except Exception as err:
        raise credential_problem(f"The new passkey could not be verified: {err}") from err
    if db.session.scalar(select(Passkey.id).where(
            Passkey.credential_id == verified.credential_id)) is not None:
        raise credential_problem("This passkey is already registered.", 409, "passkey-exists")
    transports = (credential.get("response") or {}).get("transports") or []
    passkey = Passkey(
        person=person, credential_id=verified.credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        transports=[str(t) for t in transports if isinstance(t, str)][:8],
        aaguid=verified.aaguid, backed_up=verified.credential_backed_up,
        device_label=(device_label or "").strip()[:120], created_at=utcnow())
    db.session.add(passkey)
    db.session.flush()
    notify_listeners("passkey_added", passkey, session_id)
    return passkey


def enrol_with_invitation(rp: RelyingParty, token: str, credential: dict,
                          device_label: str, *, session=None) -> Passkey:
    """Finish enrolment from an invitation: the invitation is used up in the same commit.

    `session`: the browser's current session, if any (not told about its own passkey).
    """
    invitation = usable_invitation(token)
    challenge = consume_challenge(credential, ChallengePurpose.REGISTER)
    if challenge.invitation_id != invitation.id:
        raise credential_problem("The challenge was not issued for this invitation.",
                                 type_="challenge")
    own = session is not None and session.person_id == invitation.person_id
    passkey = register_passkey(rp, credential, person=invitation.person, challenge=challenge,
                               device_label=device_label, session_id=session.id if own else None)
    # Conditional, so two racing enrolments cannot both use one invitation.
    result = db.session.execute(update(Invitation).where(
        Invitation.id == invitation.id, Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None)).values(used_at=utcnow()))
    if result.rowcount != 1:
        db.session.rollback()
        raise invitation_problem(410, "This invitation has already been used.",
                                 "invitation-used")
    db.session.commit()
    return passkey


def add_passkey(rp: RelyingParty, person: Person, credential: dict,
                device_label: str, *, session_id: int | None = None) -> Passkey:
    """A further passkey for a signed-in person (a new phone), from session `session_id`."""
    challenge = consume_challenge(credential, ChallengePurpose.REGISTER)
    if challenge.person_id != person.id or challenge.invitation_id is not None:
        raise credential_problem("The challenge was not issued to you.", type_="challenge")
    passkey = register_passkey(rp, credential, person=person, challenge=challenge,
                               device_label=device_label, session_id=session_id)
    db.session.commit()
    return passkey


# --- authentication ----------------------------------------------------------

def authentication_options(rp: RelyingParty) -> str:
    """Request options with no allowCredentials: the phone offers its own passkeys."""
    challenge = _new_challenge(ChallengePurpose.AUTHENTICATE)
    return options_to_json(generate_authentication_options(
        rp_id=rp.id, challenge=challenge, timeout=CEREMONY_TIMEOUT_MS, allow_credentials=[],
        user_verification=UserVerificationRequirement.REQUIRED))


def authenticate(rp: RelyingParty, credential: dict) -> Passkey:
    """Verify an assertion; returns the passkey (its person signs in) or refuses."""
    challenge = consume_challenge(credential, ChallengePurpose.AUTHENTICATE)
    raw_id = credential.get("rawId") or credential.get("id")
    try:
        credential_id = _b64url_decode(raw_id)
    except (TypeError, ValueError, binascii.Error) as err:
        raise credential_problem("The credential id is malformed.") from err
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))
    if passkey is None or passkey.revoked_at is not None or not passkey.person.active:
        raise credential_problem("This passkey is not (or no longer) registered.", 401,
                                 "unknown-passkey")
    if passkey.flagged_at is not None:
        raise credential_problem("This passkey is held for review; ask your manager.", 403,
                                 "passkey-flagged")
    user_handle = (credential.get("response") or {}).get("userHandle")
    if user_handle and user_handle != bytes_to_base64url(passkey.person.webauthn_user_handle):
        raise credential_problem("The passkey belongs to someone else.", 401,
                                 "unknown-passkey")
    try:
        # The stored count is checked below, after the signature, so that only a
        # genuinely signed response can flag a passkey (never a forged one).
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge.challenge,
            expected_rp_id=rp.id, expected_origin=rp.origins,
            credential_public_key=passkey.public_key, credential_current_sign_count=0,
            require_user_verification=True)
    except Exception as err:  # hostile input: refuse, never a 500
        raise credential_problem(f"The passkey response could not be verified: {err}") \
            from err
    now = utcnow()
    new_count = verified.new_sign_count
    if (new_count > 0 or passkey.sign_count > 0) and new_count <= passkey.sign_count:
        # A counter that went backwards suggests a cloned authenticator.
        passkey.flagged_at = now
        passkey.flag_reason = (f"sign count went from {passkey.sign_count} to {new_count} "
                               f"at {now.isoformat()}")
        db.session.commit()
        raise credential_problem("This passkey's counter went backwards; it is held for "
                                 "review. Ask your manager.", 403, "passkey-flagged")
    passkey.sign_count = new_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = now
    db.session.commit()
    return passkey


# --- devices -----------------------------------------------------------------

def live_sessions(person_id: int) -> list[AuthSession]:
    return list(db.session.scalars(select(AuthSession).where(
        AuthSession.person_id == person_id, AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > utcnow()).order_by(AuthSession.id)))


def live_passkeys(person_id: int) -> list[Passkey]:
    return _live_passkeys(person_id)


def revoke_passkey(passkey: Passkey) -> int:
    """Revoke a passkey and end the sessions it started; returns sessions ended.

    Those sessions' push subscriptions are deleted in the same commit (the
    device may be in someone else's hands).
    """
    passkey.revoked_at = passkey.revoked_at or utcnow()
    ended = revoke_sessions_where(AuthSession.passkey_id == passkey.id)
    db.session.commit()
    return len(ended)


def revoke_all_devices(person_id: int) -> dict:
    """Lost phone or deactivation: every passkey, session and open invitation ends.

    Every push subscription of the person goes too, in the same commit: also
    ones no session is known for (made before subscriptions named their session).
    """
    now = utcnow()
    passkeys = db.session.execute(update(Passkey).where(
        Passkey.person_id == person_id, Passkey.revoked_at.is_(None))
        .values(revoked_at=now)).rowcount
    invitations = db.session.execute(update(Invitation).where(
        Invitation.person_id == person_id, Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    sessions = revoke_sessions_where(AuthSession.person_id == person_id)
    notify_listeners("devices_revoked", person_id)
    db.session.commit()
    return {"passkeys": passkeys, "sessions": len(sessions), "invitations": invitations}


def may_manage_devices(actor: Person, target: Person) -> bool:
    """Admins: anyone. Managers: crew of the stations they manage. Nobody else."""
    if actor.role == Role.ADMIN:
        return True
    return (actor.role == Role.MANAGER and target.role == Role.CREW
            and target.station_id in actor.station_ids_in_scope())


def flagged_passkeys() -> list[Passkey]:
    """Passkeys held for review after a sign-count regression, oldest first."""
    return list(db.session.scalars(select(Passkey).where(
        Passkey.flagged_at.is_not(None), Passkey.revoked_at.is_(None))
        .order_by(Passkey.flagged_at)))


def clear_passkey_flag(passkey: Passkey) -> None:
    """After review: the authenticator is the person's own. Its counter starts
    afresh, since the legitimate device may now be behind the stored value."""
    passkey.flagged_at = None
    passkey.flag_reason = None
    passkey.sign_count = 0
    db.session.commit()


@dataclass
class IssuedInvitation:
    url: str
    invitation: Invitation
    qr: segno.QRCode


def invite_person(person: Person, *, base_url: str, created_by: Person | None = None,
                  hours: int = DEFAULT_INVITATION_HOURS) -> IssuedInvitation:
    """A one-time enrolment link for `person`, and the same link as a QR code."""
    token, invitation = create_invitation(person, created_by=created_by, hours=hours)
    url = invitation_url(base_url, token)
    return IssuedInvitation(url=url, invitation=invitation, qr=segno.make(url, error="m"))


def write_invitation_png(issued: IssuedInvitation, instance_path: str) -> Path:
    """instance/invitations/<person id>.png, readable only by its owner (it is a key)."""
    folder = Path(instance_path) / "invitations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{issued.invitation.person_id}.png"
    issued.qr.save(str(path), kind="png", scale=8, border=4)
    path.chmod(0o600)
    return path


class PersonEvents:
    """Auth's part when api.orgs deactivates a person: no live credential stays."""

    @staticmethod
    def person_deactivated(person_id: int) -> None:
        revoke_all_devices(person_id)
