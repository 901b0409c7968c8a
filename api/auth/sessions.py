"""Server-side sessions: start, look up, renew, revoke. No Flask request objects.

Other domains act on device changes in the caller's transaction through
`device_listeners` (api.push drops a revoked session's push subscriptions),
so api.auth never imports them. Each listener (an object or module) may define:

  sessions_revoked(session_ids)       these sessions were just revoked
  session_replaced(old_id, new_id)    the same person signed in again on the
                                      same browser: its session changed
  devices_revoked(person_id)          every device of the person ended (lost
                                      phone, deactivation)
  passkey_added(passkey, session_id)  a new passkey was stored (it has an id);
                                      session_id is the browser that made it
                                      (signed in as that person), or None

Expiry is not revocation and tells nobody: an expired session's browser stays
subscribed on purpose, since police sessions last 12 hours and an officer
must go on getting alerts between sign-ins.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from api import listeners
from api.auth.models import AuthSession
from api.db import utcnow
from api.extensions import db
from api.orgs.models import Person, Role

# Crew work whole shifts offline and must still be able to sync afterwards.
CREW_LIFETIME = timedelta(days=30)
STAFF_LIFETIME = timedelta(hours=12)
# Renewing on every request would write on every request; once a minute is plenty.
RENEW_EVERY = timedelta(minutes=1)


device_listeners: list = []


def register_listener(listener):
    """Add a listener object or module (see above); returns it, so it can decorate."""
    return listeners.add(device_listeners, listener)


def notify_listeners(event: str, *args) -> None:
    """Call `event` on every listener that has it, in the caller's transaction."""
    listeners.call(device_listeners, event, *args)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime(person: Person) -> timedelta:
    return CREW_LIFETIME if person.role == Role.CREW else STAFF_LIFETIME


def start_session(person: Person, *, passkey=None, user_agent: str = "",
                  is_demo: bool = False,
                  replacing: AuthSession | None = None) -> tuple[str, AuthSession]:
    """A new session for `person`; returns the cookie token (shown once) and the row.

    `replacing` is the browser's previous session, revoked in the same commit.
    For the same person the browser's push subscription moves to the new
    session; for someone else it goes with the old one.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = AuthSession(token_hash=token_hash(token), csrf_token=secrets.token_urlsafe(32),
                          person=person, passkey=passkey, created_at=now, last_seen_at=now,
                          expires_at=now + lifetime(person), user_agent=user_agent[:300],
                          is_demo=is_demo,
                          sms_key=secrets.token_bytes(32) if person.role == Role.CREW else None)
    db.session.add(session)
    if replacing is not None and replacing.revoked_at is None:
        replacing.revoked_at = now
        db.session.flush()
        if replacing.person_id == person.id:
            notify_listeners("session_replaced", replacing.id, session.id)
        else:
            notify_listeners("sessions_revoked", [replacing.id])
    db.session.commit()
    return token, session


def find_session(token: str | None) -> AuthSession | None:
    """The live session for a cookie token: not expired, not revoked, person active.

    Crew sessions slide: each use pushes the expiry 30 days on.
    """
    if not token:
        return None
    # The person in the same query: every request needs them (one round trip less).
    session = db.session.scalar(select(AuthSession).where(
        AuthSession.token_hash == token_hash(token)).options(joinedload(AuthSession.person)))
    now = utcnow()
    if (session is None or session.revoked_at is not None or session.expires_at <= now
            or not session.person.active):
        return None
    if now - session.last_seen_at >= RENEW_EVERY:
        session.last_seen_at = now
        if session.person.role == Role.CREW:
            session.expires_at = now + CREW_LIFETIME
        db.session.commit()
    return session


def revoke_session(session: AuthSession) -> None:
    """Sign one browser out; what it subscribed to goes in the same commit."""
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        notify_listeners("sessions_revoked", [session.id])
        db.session.commit()


def revoke_sessions_where(*criteria) -> list[int]:
    """Revoke the unrevoked sessions matching `criteria` (expired ones too: a lost
    phone's lapsed session still has its subscription); returns their ids. Not committed."""
    ids = list(db.session.scalars(
        update(AuthSession)
        .where(AuthSession.revoked_at.is_(None), *criteria)
        .values(revoked_at=utcnow())
        .returning(AuthSession.id)))
    if ids:
        notify_listeners("sessions_revoked", ids)
    return ids

