"""Server-side sessions: start, look up, renew, revoke. No Flask request objects."""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from api.auth.models import AuthSession
from api.db import utcnow
from api.extensions import db
from api.orgs.models import Person, Role

# Crew work whole shifts offline and must still be able to sync afterwards.
CREW_LIFETIME = timedelta(days=30)
STAFF_LIFETIME = timedelta(hours=12)
# Renewing on every request would write on every request; once a minute is plenty.
RENEW_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lifetime(person: Person) -> timedelta:
    return CREW_LIFETIME if person.role == Role.CREW else STAFF_LIFETIME


def start_session(person: Person, *, passkey=None, user_agent: str = "",
                  is_demo: bool = False) -> tuple[str, AuthSession]:
    """A new session for `person`; returns the cookie token (shown once) and the row."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = AuthSession(token_hash=token_hash(token), csrf_token=secrets.token_urlsafe(32),
                          person=person, passkey=passkey, created_at=now, last_seen_at=now,
                          expires_at=now + lifetime(person), user_agent=user_agent[:300],
                          is_demo=is_demo)
    db.session.add(session)
    db.session.commit()
    return token, session


def find_session(token: str | None) -> AuthSession | None:
    """The live session for a cookie token: not expired, not revoked, person active.

    Crew sessions slide: each use pushes the expiry 30 days on.
    """
    if not token:
        return None
    session = db.session.scalar(select(AuthSession).where(
        AuthSession.token_hash == token_hash(token)))
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
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        db.session.commit()


def revoke_all_sessions(person_id: int) -> int:
    """End every session of a person at once (deactivation, lost phone)."""
    result = db.session.execute(
        update(AuthSession)
        .where(AuthSession.person_id == person_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow()))
    db.session.commit()
    return result.rowcount
