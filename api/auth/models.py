"""Passkeys, sessions, invitations and WebAuthn challenges.

Secrets handed to a browser (session cookies, invitation tokens) are stored only
as their SHA-256, so a copy of the database cannot be used to sign in.
"""

import enum
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, utcnow
from api.extensions import db
from api.orgs.models import Person


class Passkey(db.Model):
    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    credential_id: Mapped[bytes] = mapped_column(db.LargeBinary(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(db.LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(db.BigInteger, default=0)
    transports: Mapped[list] = mapped_column(db.JSON, default=list)
    aaguid: Mapped[str | None] = mapped_column(db.String(36))
    backed_up: Mapped[bool] = mapped_column(db.Boolean, default=False)
    device_label: Mapped[str] = mapped_column(db.String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A sign-count regression (a possible cloned authenticator) refuses sign-in
    # with this passkey until someone reviews it.
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flag_reason: Mapped[str | None] = mapped_column(db.String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()


class AuthSession(db.Model):
    """A signed-in device. Revocable; the cookie holds a token, the row its hash."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(db.String(64))
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    passkey_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("passkeys.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(db.String(300), default="")
    is_demo: Mapped[bool] = mapped_column(db.Boolean, default=False)
    # A crew device's SMS key (api/sms, docs/sms.md): issued with the session and
    # handed to the phone once signed in; an SMS alarm's MAC is made with it, so
    # the server knows which device sent it. Revoking the session revokes it.
    sms_key: Mapped[bytes | None] = mapped_column(db.LargeBinary(32))

    person: Mapped[Person] = relationship()
    passkey: Mapped[Passkey | None] = relationship()


class InvitationPurpose(enum.StrEnum):
    ENROL = "enrol"


class Invitation(db.Model):
    """A one-time link that lets one person register a passkey."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(db.String(64), unique=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    created_by_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A newer invitation, a device revocation or deactivation cancels an unused one.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship(foreign_keys=[person_id])


class ChallengePurpose(enum.StrEnum):
    REGISTER = "register"
    AUTHENTICATE = "authenticate"


class Challenge(db.Model):
    """A WebAuthn challenge: kept on the server, used once, expires after 5 minutes."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge: Mapped[bytes] = mapped_column(db.LargeBinary(64), unique=True)
    purpose: Mapped[str] = mapped_column(db.String(16))
    person_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="CASCADE"))
    invitation_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("invitations.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitHit(db.Model):
    """Fixed-window counters shared by every worker (the database is the store)."""

    __tablename__ = "rate_limit_hits"

    key: Mapped[str] = mapped_column(db.String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(db.Integer, default=0)
