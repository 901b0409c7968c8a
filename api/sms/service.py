"""An incoming SMS: read, verified with the device's SMS key, stored as the
record it carries (api.incidents.sync.store_from_outside: the same incident and
case number as the phone's later sync, the police alert as for any sync), and
answered from the outbox (api.sms.outbox). Every message, accepted or not, is a
row of sms_inbound with its outcome (the administrator's view) and a log line.
No Flask request objects.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.auth.models import AuthSession
from api.extensions import db
from api.incidents import sync
from api.orgs.models import Language
from api.requests import UNSTORABLE
from api.sms import codec
from api.sms.models import SmsInbound, SmsOutcome, SmsReply

log = logging.getLogger(__name__)

# Why a message was not accepted: the reason codes of sms_inbound (docs/sms.md).
REASONS = {
    "bad_signature": "The webhook's signature does not match the shared secret.",
    "stale_timestamp": "The webhook's timestamp is too far from now (a replayed request?).",
    "non_gsm": "The text has characters outside the GSM-7 alphabet.",
    "not_qorgau": "Not a Qorgau message.",
    "concatenated": "Two messages, or extra text, in one.",
    "truncated": "The message is cut short.",
    "malformed": "The code cannot be read.",
    "version": "An unknown format version.",
    "unknown_device": "No device has this key id.",
    "wrong_mac": "The MAC does not match the device's key.",
    "revoked_key": "The device's session (and its SMS key) was revoked.",
    "replayed": "This exact message was received before.",
    "sync_refused": "The record was refused as a sync would refuse it.",
}

REPLY = {
    Language.RU: "Qorgau: тревога принята, дело {case}.",
    Language.KK: "Qorgau: дабыл қабылданды, іс {case}.",
    Language.EN: "Qorgau: alarm received, case {case}.",
}
REPLY_POLICE = {
    Language.RU: " Полиция оповещена.",
    Language.KK: " Полицияға хабарланды.",
    Language.EN: " Police alerted.",
}


@dataclass
class Received:
    """What the webhook answers: the row, and whether the event was seen before."""

    inbound: SmsInbound
    duplicate: bool = False


def _clean(text: str, limit: int) -> str:
    return UNSTORABLE.sub("\ufffd", text or "")[:limit]


def reply_text(language: Language, case: str, police: bool) -> str:
    return REPLY[language].format(case=case) + (REPLY_POLICE[language] if police else "")


def digest(record: codec.SmsRecord) -> str:
    return hashlib.sha256(record.normalised.encode()).hexdigest()


def find_event(event_id: str | None) -> SmsInbound | None:
    if not event_id:
        return None
    return db.session.scalar(select(SmsInbound).where(SmsInbound.event_id == event_id))


def reject(reason: str, *, event_id: str | None, sender: str, text: str, now: datetime,
           detail: str = "", session: AuthSession | None = None) -> SmsInbound:
    """Keep a message that was not accepted (committed), with a warning in the log."""
    detail = detail or REASONS[reason]
    log.warning("SMS rejected (%s) from %s, event %s: %s", reason, sender or "?",
                event_id or "-", detail)
    row = SmsInbound(event_id=event_id, received_at=now, sender=_clean(sender, 32),
                     text=_clean(text, 480), outcome=SmsOutcome.REJECTED, reason=reason,
                     detail=_clean(detail, 300),
                     session_id=session.id if session else None,
                     person_id=session.person_id if session else None)
    return _keep(row)


def ignore(event: str, *, event_id: str | None, now: datetime) -> SmsInbound:
    row = SmsInbound(event_id=event_id, received_at=now, outcome=SmsOutcome.IGNORED,
                     detail=_clean(f"webhook event {event}", 300))
    return _keep(row)


def _keep(row: SmsInbound) -> SmsInbound:
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        # The same event id at the same moment (the gateway's retry): kept once.
        db.session.rollback()
        return find_event(row.event_id) or row
    return row


def receive(*, event_id: str | None, sender: str, text: str, now: datetime) -> Received:
    """Handle one incoming SMS (the webhook's signature is already checked)."""
    seen = find_event(event_id)
    if seen is not None:
        log.info("SMS webhook event %s delivered again: already handled (%s)", event_id,
                 seen.outcome.value)
        return Received(seen, duplicate=True)
    common = {"event_id": event_id, "sender": sender, "text": text, "now": now}
    try:
        record = codec.parse(text)
    except codec.SmsError as err:
        return Received(reject(err.reason, detail=err.detail, **common))
    session = db.session.get(AuthSession, record.key_id)
    if session is None or session.sms_key is None:
        return Received(reject("unknown_device", detail=f"key id {record.key_id}", **common))
    # The MAC first: only someone holding the key learns that it was revoked.
    if not codec.verify(record, session.sms_key):
        return Received(reject("wrong_mac", session=session, **common))
    if session.revoked_at is not None or not session.person.active:
        return Received(reject("revoked_key", session=session, **common))
    body_digest = digest(record)
    if db.session.scalar(select(SmsInbound.id).where(SmsInbound.digest == body_digest)):
        return Received(reject("replayed", session=session, **common))
    person = session.person
    result = sync.store_from_outside(person, codec.sync_record(record),
                                     device_id=f"sms:{session.id}", received_at=now)
    rewritten = text != codec.canonical(record)
    if result["status"] == "rejected":
        errors = "; ".join(f"{e['field']}: {e['message']}" for e in result["errors"])
        return Received(reject("sync_refused", detail=errors, session=session, **common))
    incident = result["incident"]
    outcome = SmsOutcome.CREATED if result["status"] == "created" else SmsOutcome.MERGED
    row = SmsInbound(event_id=event_id, received_at=now, sender=_clean(sender, 32),
                     text=_clean(text, 480), outcome=outcome, digest=body_digest,
                     detail=("accepted as rewritten by the phone (case or spacing)"
                             if rewritten else ""),
                     session_id=session.id, person_id=person.id, incident_id=record.id,
                     case_number=incident["case_number"])
    db.session.add(row)
    if sender:
        db.session.add(SmsReply(inbound=row, to_number=_clean(sender, 32), next_attempt_at=now,
                                text=reply_text(person.language, incident["case_number"],
                                                incident.get("post_id") is not None)))
    try:
        db.session.commit()
    except IntegrityError:
        # The same event or the same message at the same moment: the incident is
        # stored either way (by its own id), and only the first one is answered.
        db.session.rollback()
        seen = find_event(event_id)
        if seen is not None:
            return Received(seen, duplicate=True)
        return Received(reject("replayed", session=session, **common))
    log.info("SMS %s from device %s: incident %s, case %s%s", outcome.value, session.id,
             record.id, incident["case_number"], " (rewritten by the phone)" if rewritten else "")
    return Received(row)


def recent(*, outcome: SmsOutcome | None = None, limit: int = 100) -> list[SmsInbound]:
    """The latest messages, newest first (the administrator's view)."""
    query = select(SmsInbound).order_by(SmsInbound.received_at.desc(), SmsInbound.id.desc())
    if outcome is not None:
        query = query.where(SmsInbound.outcome == outcome)
    return list(db.session.scalars(query.limit(limit)))
