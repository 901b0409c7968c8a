"""Push subscriptions and the notification outbox. No Flask request objects here.

Payload every push carries (JSON, UTF-8, already in the recipient's language):

    {"v": 1,
     "type": "incident.received" | "incident.rerouted" | "incident.acknowledged"
             | "incident.erdr" | "incident.closed" | "police.alert"
             | "police.escalation" | "police.rerouted"
             | "sos.alarm" | "sos.state" | "sos.on_the_way",   # api.sos
     "incident_id": "<uuid>", "case_number": "QG-...", "lang": "ru|kk|en",
     "title": "...", "body": "...",
     "url": "/#/incidents/<uuid>",        # open this on a tap
     "tag": "incident-<uuid>",            # Notification tag: replace, not pile up
     "require_interaction": true|false,   # police alerts stay until handled
     "created_at": "<ISO 8601>",
     "incident": {"status", "case_number", "police_needed",
                  "classification": {"status", "part"},
                  "post": {"id", "code", "name"} | null},
     # Declarative Web Push (shown by iOS 18.4+ with no service worker; see
     # api.push.messages.declarative): the same words, an absolute link.
     "web_push": 8030, "mutable": true,
     "notification": {"title", "body", "navigate": "<BASE_URL>/#/...", "lang",
                      "dir": "ltr", "tag", "silent": false}}

A push about the person's account rather than an incident ("account.passkey_added")
has the same fields without incident_id, case_number and incident; its url is
"My devices" (/#/account).

Subscriptions follow the sessions that made them (api.auth.sessions tells us):
revoking a session deletes its subscriptions, revoking all of a person's
devices deletes all of theirs. An expired session keeps its subscription.
"""

import hashlib
import json
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from api.auth.models import AuthSession
from api.db import insert_rows, is_postgres, utcnow
from api.errors import Problem
from api.extensions import db
from api.orgs.models import Person
from api.push.models import OutboxStatus, PushOutbox, PushSubscription, Urgency

NOTIFY_CHANNEL = "qorgau_push"


def subscribe(person: Person, data: dict, user_agent: str = "",
              session_id: int | None = None) -> tuple[PushSubscription, bool]:
    """Save a browser's subscription for `person`, upserting by endpoint.

    The endpoint identifies the browser, so one already known moves to whoever
    subscribes with it now (a shared post desktop changes hands between shifts),
    and to the session `session_id` it was sent from, whose revocation ends it.
    Returns (subscription, created).
    """
    if session_id is not None:
        # Lock the session row (PostgreSQL): a revocation racing with this either
        # commits first, and this is refused, or waits and then deletes what this saves.
        live = db.session.scalar(select(AuthSession.id).where(
            AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .with_for_update(read=True))
        if live is None:
            raise Problem(401, "Sign-in required", "This session has ended; sign in again.",
                          type_="unauthenticated")
    now = utcnow()
    values = {"person_id": person.id, "session_id": session_id,
              "p256dh": data["keys"]["p256dh"],
              "auth": data["keys"]["auth"], "device_id": data.get("device_id"),
              "user_agent": user_agent[:300], "updated_at": now}
    sub = db.session.scalar(select(PushSubscription).where(
        PushSubscription.endpoint == data["endpoint"]))
    created = sub is None
    if created:
        try:
            with db.session.begin_nested():
                sub = PushSubscription(endpoint=data["endpoint"], created_at=now, **values)
                db.session.add(sub)
        except IntegrityError:
            # The same browser subscribed twice at once; the other insert won.
            created = False
            sub = db.session.scalar(select(PushSubscription).where(
                PushSubscription.endpoint == data["endpoint"]))
    if not created:
        for key, value in values.items():
            setattr(sub, key, value)
    if data.get("device_id"):
        # pushsubscriptionchange gives the device a new endpoint; the old one is dead.
        db.session.execute(delete(PushSubscription).where(
            PushSubscription.person_id == person.id,
            PushSubscription.device_id == data["device_id"],
            PushSubscription.endpoint != data["endpoint"]))
    db.session.commit()
    return sub, created


def unsubscribe(person: Person, endpoint: str) -> bool:
    """Forget `person`'s subscription with this endpoint (sign-out). True if one was removed."""
    result = db.session.execute(delete(PushSubscription).where(
        PushSubscription.person_id == person.id, PushSubscription.endpoint == endpoint))
    db.session.commit()
    return result.rowcount > 0


def topic_for(incident_id) -> str:
    """An RFC 8030 Topic (at most 32 base64url characters), one per incident.

    A newer push about the same incident replaces an undelivered older one at
    the push service, so a phone that was offline gets the latest, not a queue.
    """
    return hashlib.sha256(f"incident-{incident_id}".encode()).hexdigest()[:32]


def enqueue(person: Person, kind: str, payload: dict, *, incident=None,
            urgency: Urgency = Urgency.NORMAL, ttl: int | None = None,
            except_session_id: int | None = None) -> list[PushOutbox]:
    """Queue `payload` for each of `person`'s devices, in the caller's transaction.

    Nothing is sent here and nothing is committed: the rows become visible to
    the worker only if the caller's change commits. Devices subscribed from
    session `except_session_id` are left out.
    """
    if not person.active:
        return []
    if ttl is None:
        ttl = current_app.config["PUSH_TTL_DEFAULT"]
    query = select(PushSubscription).where(PushSubscription.person_id == person.id)
    if except_session_id is not None:
        query = query.where(or_(PushSubscription.session_id.is_(None),
                                PushSubscription.session_id != except_session_id))
    subs = db.session.scalars(query.order_by(PushSubscription.id)).all()
    now = utcnow()
    rows = [PushOutbox(person_id=person.id, subscription_id=sub.id,
                       incident_id=incident.id if incident is not None else None,
                       kind=kind, payload=payload, urgency=urgency,
                       topic=topic_for(incident.id) if incident is not None else None,
                       ttl=ttl, status=OutboxStatus.PENDING, attempts=0,
                       next_attempt_at=now, created_at=now)
            for sub in subs]
    db.session.add_all(rows)
    if rows:
        wake_workers()
    return rows


def _outbox_row(person_id: int, subscription_id: int, kind: str, payload: dict, incident,
                urgency: Urgency, ttl: int, now) -> dict:
    return {"person_id": person_id, "subscription_id": subscription_id,
            "incident_id": incident.id if incident is not None else None,
            "kind": kind, "payload": payload, "urgency": urgency,
            "topic": topic_for(incident.id) if incident is not None else None,
            "ttl": ttl, "status": OutboxStatus.PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now}


class Notifications:
    """Pushes about incidents gathered for one batch, queued by `flush()` together.

    The same rows as notify_incident would write, one per device, in the
    caller's transaction; but one query finds every recipient's subscriptions,
    one INSERT writes every row, and the workers are woken once.
    """

    def __init__(self):
        self._items: list[tuple] = []
        self._devices: dict[int, list[int]] = {}  # person id -> subscription ids, as read
        self._woken = False

    def prefetch(self, people) -> None:
        """Read these people's devices now, and wake the workers now (NOTIFY is only
        delivered at the commit), so that flush() does neither: a sync calls this
        before it takes its region's case counter, which the region's other crews
        wait for."""
        self._read_devices({person.id for person in people})
        self._wake()

    def _read_devices(self, person_ids: set[int]) -> None:
        wanted = sorted(person_ids - self._devices.keys())
        if not wanted:
            return
        self._devices.update({person_id: [] for person_id in wanted})
        for person_id, sub_id in db.session.execute(
                select(PushSubscription.person_id, PushSubscription.id)
                .where(PushSubscription.person_id.in_(wanted))
                .order_by(PushSubscription.person_id, PushSubscription.id)):
            self._devices[person_id].append(sub_id)

    def _wake(self) -> None:
        if not self._woken:
            wake_workers()
            self._woken = True

    def add(self, person: Person, kind: str, incident, title: str, body: str, *,
            urgency: Urgency = Urgency.NORMAL, alert: bool = False,
            ttl: int | None = None) -> None:
        """`ttl` (seconds) overrides the alert's or the default TTL (an SOS's is shorter)."""
        if person.active:
            self._items.append((person, kind, incident, title, body, urgency, alert, ttl))

    def flush(self) -> int:
        """Queue everything added; returns how many outbox rows were written."""
        from api.push.messages import payload

        items, self._items = self._items, []
        if not items:
            return 0
        self._read_devices({person.id for person, *_ in items})
        config = current_app.config
        now = utcnow()
        rows = []
        for person, kind, incident, title, body, urgency, alert, ttl in items:
            devices = self._devices.get(person.id)
            if not devices:
                continue
            ttl = ttl or config["PUSH_TTL_ALERT" if alert else "PUSH_TTL_DEFAULT"]
            doc = payload(kind, incident, person.language.value, title, body, created_at=now,
                          require_interaction=alert)
            rows.extend(_outbox_row(person.id, sub_id, kind, doc, incident, urgency, ttl, now)
                        for sub_id in devices)
        if rows:
            insert_rows(insert(PushOutbox.__table__), rows)
            self._wake()
        return len(rows)


def wake_workers() -> None:
    """On PostgreSQL, NOTIFY is transactional: listeners wake when the caller commits."""
    if is_postgres():
        db.session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def encode_payload(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def expires_at(row: PushOutbox):
    return row.created_at + timedelta(seconds=row.ttl)


def notify_incident(person: Person, kind: str, incident, title: str, body: str, *,
                    urgency: Urgency = Urgency.NORMAL, alert: bool = False,
                    ttl: int | None = None) -> list[PushOutbox]:
    """Queue a push about `incident` for `person` (title and body already in their language).

    `alert` marks a police alert: it stays on screen until handled and lives
    only PUSH_TTL_ALERT seconds at the push service.
    """
    from api.push.messages import payload

    ttl = ttl or current_app.config["PUSH_TTL_ALERT" if alert else "PUSH_TTL_DEFAULT"]
    doc = payload(kind, incident, person.language.value, title, body, created_at=utcnow(),
                  require_interaction=alert)
    return enqueue(person, kind, doc, incident=incident, urgency=urgency, ttl=ttl)


# ---------------------------------------------------------------------------
# Device changes in api.auth (see api.auth.sessions.device_listeners)


def forget_subscriptions(*criteria, reason: str) -> int:
    """Delete the subscriptions matching `criteria` and settle what was queued for
    them (never sent). In the caller's transaction; returns how many were deleted."""
    ids = list(db.session.scalars(select(PushSubscription.id).where(*criteria)))
    if not ids:
        return 0
    db.session.execute(
        update(PushOutbox)
        .where(PushOutbox.subscription_id.in_(ids), PushOutbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.GONE, last_error=reason, subscription_id=None)
        .execution_options(synchronize_session=False))
    db.session.execute(delete(PushSubscription).where(PushSubscription.id.in_(ids))
                       .execution_options(synchronize_session="fetch"))
    return len(ids)


def notify_passkey_added(passkey, except_session_id: int | None = None) -> list[PushOutbox]:
    """Tell the person's devices (not the one that added it) that a passkey was added.

    A passkey someone else enrolled for them (an administrator with an
    invitation, say) would otherwise go unnoticed.
    """
    from api.push import messages

    person = passkey.person
    now = utcnow()
    title, body = messages.passkey_added(person, passkey.device_label, passkey.created_at or now)
    doc = messages.account_payload("account.passkey_added", person.language.value, title, body,
                                   tag=f"passkey-{passkey.id}", created_at=now,
                                   require_interaction=True)
    # High: whoever added it may be signing in as them right now.
    return enqueue(person, "account.passkey_added", doc, urgency=Urgency.HIGH,
                   except_session_id=except_session_id)


class DeviceEvents:
    """Push's part when api.auth revokes sessions or stores a passkey (a listener of
    api.auth.sessions, registered in create_app)."""

    @staticmethod
    def sessions_revoked(session_ids: list[int]) -> None:
        # A revoked session may be a stolen phone: it must not go on getting pushes.
        forget_subscriptions(PushSubscription.session_id.in_(session_ids),
                             reason="subscription removed: its session was revoked")

    @staticmethod
    def session_replaced(old_id: int, new_id: int) -> None:
        # The same person on the same browser: its subscription stays, with the new session.
        db.session.execute(update(PushSubscription)
                           .where(PushSubscription.session_id == old_id)
                           .values(session_id=new_id)
                           .execution_options(synchronize_session=False))

    @staticmethod
    def devices_revoked(person_id: int) -> None:
        # Also subscriptions with no known session (made before session_id existed).
        forget_subscriptions(PushSubscription.person_id == person_id,
                             reason="subscription removed: all devices were revoked")

    @staticmethod
    def passkey_added(passkey, session_id: int | None) -> None:
        notify_passkey_added(passkey, except_session_id=session_id)
