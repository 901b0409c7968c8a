"""Check-in timers: start, "I'm safe", and what the server does when nobody checks in.

The server's timer is the one that counts: the push worker's tick (a listener
of api.push.worker, registered in create_app) reads the rows, so a dead phone,
a restarted worker or a second worker changes nothing. On each tick:

  1. CHECKIN_REMIND_BEFORE_SECONDS (120) before the end: a reminder push to the
     crew member ("I'm safe" closes the timer);
  2. at the end, nobody checked in: the station's managers are alerted;
  3. CHECKIN_POLICE_AFTER_SECONDS (300) later, still nobody: an incident marked
     police-needed-now is made for the crew member through the same sync as a
     tap (case number, hash chain, receipt), with the address and the last
     known location; routing (api.police.routing) picks the post as for any
     incident and the region's escalation ladder (api.police.ladder) takes it
     from there until someone acknowledges. The timer's story is the
     incident's "checkin_overdue" event, in its hash chain.

"I'm safe" after step 3 is recorded in the incident ("checked_in_safe") and
told to the post; the police still acknowledge and close the case.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import select

from api.checkin.models import CheckinTimer
from api.db import is_postgres, utcnow
from api.errors import Problem
from api.extensions import db
from api.hazards.address import address_key
from api.incidents import records as incidents
from api.incidents import sync as incident_sync
from api.incidents.models import Incident, IncidentEvent
from api.orgs.models import Person, PolicePost, Role
from api.police.models import PoliceAlert
from api.police.routing import officers_of
from api.push import messages
from api.push.models import Urgency
from api.push.service import enqueue, notify_incident
from api.review.service import local_midnight, today_local

DEVICE_ID = "server:checkin"  # the incidents the server makes for overdue timers
BS8484_10S, BS8484_40S = 0.80, 0.985

TEXT = {
    "reminder_title": {
        "en": "Check in: {minutes} min left",
        "ru": "Отметьтесь: осталось {minutes} мин",
        "kk": "Белгі қойыңыз: {minutes} мин қалды",
    },
    "reminder_body": {
        "en": "Timer for {address} ends at {time}. Open Qorgau and tap “I'm safe”.",
        "ru": "Таймер по адресу {address} истекает в {time}. Откройте Qorgau и нажмите "
              "«Я в безопасности».",
        "kk": "{address} мекенжайындағы таймер {time} аяқталады. Qorgau ашып, "
              "«Мен аман-есенмін» түймесін басыңыз.",
    },
    "overdue_title": {
        "en": "No check-in: {name}",
        "ru": "Нет отметки: {name}",
        "kk": "Белгі жоқ: {name}",
    },
    "overdue_body": {
        "en": "{name} did not check in from {address} (timer ended {time}). The police post "
              "will be alerted at {police} unless they check in.",
        "ru": "{name} не отметился(-ась) с адреса {address} (таймер истёк в {time}). "
              "Полицейский пост будет оповещён в {police}, если отметки не будет.",
        "kk": "{name} {address} мекенжайынан белгі қоймады (таймер {time} аяқталды). "
              "Белгі болмаса, полиция бекеті {police} хабардар етіледі.",
    },
    "safe_title": {
        "en": "Checked in safe: {name}",
        "ru": "Отметился(-ась), в безопасности: {name}",
        "kk": "Белгі қойды, аман: {name}",
    },
    "safe_body": {
        "en": "{name} checked in from {address} at {time}.",
        "ru": "{name} отметился(-ась) с адреса {address} в {time}.",
        "kk": "{name} {address} мекенжайынан {time} белгі қойды.",
    },
    "incident_note": {
        "en": "Check-in timer not answered. Address: {address}. Started {start} for {minutes} "
              "min; ended {end}. Location: where the timer was started.",
        "ru": "Нет отметки по таймеру. Адрес: {address}. Запущен {start} на {minutes} мин; "
              "истёк {end}. Местоположение: где был запущен таймер.",
        "kk": "Таймер бойынша белгі жоқ. Мекенжай: {address}. {start} уақытында {minutes} "
              "минутқа қосылды; {end} аяқталды. Орны: таймер қосылған жер.",
    },
    "police_safe_title": {
        "en": "Crew member checked in safe: case {case}",
        "ru": "Сотрудник отметился, в безопасности: дело {case}",
        "kk": "Қызметкер белгі қойды, аман: іс {case}",
    },
    "police_safe_body": {
        "en": "The overdue check-in at {address} was answered at {time}.",
        "ru": "Просроченная отметка по адресу {address} получена в {time}.",
        "kk": "{address} мекенжайы бойынша кешіккен белгі {time} алынды.",
    },
}


def text(key: str, lang: str, **values) -> str:
    templates = TEXT[key]
    return templates.get(lang, templates["en"]).format(**values)


def hhmm(instant: datetime) -> str:
    return messages.local_time(instant)[-5:]


def remind_before() -> timedelta:
    return timedelta(seconds=current_app.config["CHECKIN_REMIND_BEFORE_SECONDS"])


def police_after() -> timedelta:
    return timedelta(seconds=current_app.config["CHECKIN_POLICE_AFTER_SECONDS"])


# ---------------------------------------------------------------------------
# The crew member's side


def start(person: Person, body: dict, now: datetime | None = None) -> tuple[CheckinTimer, bool]:
    """Register a timer the phone started; (timer, created). A repeat changes nothing."""
    now = now or utcnow()
    existing = db.session.get(CheckinTimer, body["id"])
    if existing is not None:
        if existing.person_id != person.id:
            raise Problem(409, "Conflict", "This timer id is taken.", type_="conflict")
        return existing, False
    started = body["started_at"].astimezone(UTC)
    length = timedelta(minutes=body["minutes"])
    if started > now + timedelta(minutes=2):
        raise ValidationError({"started_at": ["Not in the future (check the phone's clock)."]})
    if started < now - length:
        raise ValidationError({"started_at": ["This timer has already ended."]})
    location = body.get("location") or {}
    timer = CheckinTimer(
        id=body["id"], person_id=person.id, station_id=person.station_id,
        address=body["address"].strip(), address_key=address_key(body["address"]),
        lat=location.get("lat"), lon=location.get("lon"), accuracy_m=location.get("accuracy_m"),
        minutes=body["minutes"], started_at=min(started, now), registered_at=now,
        ends_at=min(started, now) + length)
    db.session.add(timer)
    db.session.commit()
    return timer, True


def get_for(person: Person, timer_id: uuid.UUID, *, lock: bool = False) -> CheckinTimer:
    """The timer if `person` may see it (their own; a manager: their stations'), else 404."""
    query = select(CheckinTimer).where(CheckinTimer.id == timer_id, _scope(person))
    if lock:
        query = query.with_for_update()
    timer = db.session.scalar(query)
    if timer is None:
        raise Problem(404, "Not Found", "No such check-in timer.", type_="not-found")
    return timer


def _scope(person: Person):
    if person.role == Role.CREW:
        return CheckinTimer.person_id == person.id
    return CheckinTimer.station_id.in_(sorted(person.station_ids_in_scope()))


def list_for(person: Person, now: datetime | None = None) -> list[CheckinTimer]:
    """Open timers (and those closed in the last hour), newest end first."""
    since = (now or utcnow()) - timedelta(hours=1)
    query = (select(CheckinTimer).where(_scope(person))
             .where((CheckinTimer.closed_at.is_(None)) | (CheckinTimer.closed_at >= since))
             .order_by(CheckinTimer.ends_at.desc()).limit(50))
    return list(db.session.scalars(query))


def safe(person: Person, timer_id: uuid.UUID, now: datetime | None = None) -> CheckinTimer:
    """"I'm safe": the timer closes; whoever was alerted is told. A repeat changes nothing."""
    now = now or utcnow()
    timer = get_for(person, timer_id, lock=True)
    if timer.closed_at is not None:
        return timer
    timer.closed_at = now
    name = person.display_name
    if timer.overdue_at is not None:
        for manager in active_managers_of(timer):
            lang = manager.language.value
            _tell(manager, "checkin.safe", timer,
                  text("safe_title", lang, name=name),
                  text("safe_body", lang, name=name, address=timer.address, time=hhmm(now)))
    if timer.incident is not None:
        incident = timer.incident
        incidents.append_event(incident, person, "checked_in_safe",
                               {"checked_in_at": (None, now)}, at=now)
        for officer in officers_of({incident.post_id} if incident.post_id else set()):
            lang = officer.language.value
            notify_incident(officer, "police.checkin_safe", incident,
                            text("police_safe_title", lang, case=incident.case_number),
                            text("police_safe_body", lang, address=timer.address,
                                 time=hhmm(now)), urgency=Urgency.HIGH)
    db.session.commit()
    return timer


def active_managers_of(timer: CheckinTimer) -> list[Person]:
    return [m for m in timer.station.managers if m.active and m.role == Role.MANAGER]


def _tell(person: Person, kind: str, timer: CheckinTimer, title: str, body: str, *,
          alert: bool = False) -> None:
    """A push about a timer (no incident yet): the account-payload shape."""
    # The manager's console has no timer screen: the push itself says who, where, when.
    url = "/#/checkin" if person.role == Role.CREW else "/#/review"
    doc = messages.account_payload(kind, person.language.value, title, body,
                                   tag=f"checkin-{timer.id}", created_at=utcnow(), url=url,
                                   require_interaction=alert)
    ttl = current_app.config["PUSH_TTL_ALERT" if alert else "PUSH_TTL_DEFAULT"]
    enqueue(person, kind, doc, urgency=Urgency.HIGH, ttl=ttl)


# ---------------------------------------------------------------------------
# The server's timer (the push worker's tick)


def _due(*where, limit: int = 100):
    query = (select(CheckinTimer).where(CheckinTimer.closed_at.is_(None), *where)
             .order_by(CheckinTimer.ends_at).limit(limit))
    if is_postgres():
        query = query.with_for_update(skip_locked=True, of=CheckinTimer)
    return db.session.scalars(query).all()


def on_tick(now: datetime) -> None:
    """Remind, alert the managers, alert the police: each due timer once; commits."""
    for timer in _due(CheckinTimer.reminded_at.is_(None),
                      CheckinTimer.ends_at <= now + remind_before(),
                      CheckinTimer.ends_at > now):
        remind(timer, now)
    db.session.commit()
    for timer in _due(CheckinTimer.overdue_at.is_(None), CheckinTimer.ends_at <= now):
        overdue(timer, now)
    db.session.commit()
    # One at a time: alert_police commits (its incident is a sync of its own), which
    # would release the locks of the rest of a batch.
    for _ in range(100):
        due = _due(CheckinTimer.overdue_at.is_not(None), CheckinTimer.police_at.is_(None),
                   CheckinTimer.overdue_at <= now - police_after(), limit=1)
        if not due:
            break
        alert_police(due[0], now)


def remind(timer: CheckinTimer, now: datetime) -> None:
    timer.reminded_at = now
    person = timer.person
    lang = person.language.value
    left = max(1, round((timer.ends_at - now).total_seconds() / 60))
    _tell(person, "checkin.reminder", timer, text("reminder_title", lang, minutes=left),
          text("reminder_body", lang, address=timer.address, time=hhmm(timer.ends_at)),
          alert=True)


def overdue(timer: CheckinTimer, now: datetime) -> None:
    timer.overdue_at = now
    name = timer.person.display_name
    for manager in active_managers_of(timer):
        lang = manager.language.value
        _tell(manager, "checkin.overdue", timer, text("overdue_title", lang, name=name),
              text("overdue_body", lang, name=name, address=timer.address,
                   time=hhmm(timer.ends_at), police=hhmm(now + police_after())), alert=True)


def alert_police(timer: CheckinTimer, now: datetime) -> None:
    """The incident, through the crew's own sync (exactly once: its id is the timer's)."""
    person = timer.person
    lang = person.language.value
    record = {
        "id": str(timer.id), "revision": 1,
        "tapped_at": timer.ends_at.isoformat(), "kind": "unspecified",
        "police_needed": True, "on_duty": True,
        "note": text("incident_note", lang, address=timer.address,
                     start=messages.local_time(timer.started_at), minutes=timer.minutes,
                     end=messages.local_time(timer.ends_at)),
    }
    if timer.lat is not None:
        record["location"] = {"lat": timer.lat, "lon": timer.lon,
                              "accuracy_m": timer.accuracy_m, "source": "gps",
                              "fixed_at": timer.started_at.isoformat()}
    timer_id = timer.id
    # Claimed while the row is locked: a second worker skips it from here on. Then
    # sync runs its own transaction (and may retry it); if it fails, the claim is
    # withdrawn and the next tick tries again.
    timer.police_at = now
    db.session.commit()
    try:
        results = incident_sync.sync(person, device_id=DEVICE_ID, outbox_size=0,
                                     app_version=None, sent_at=now, received_at=now,
                                     records=[record])
    except Exception:
        db.session.rollback()
        db.session.get(CheckinTimer, timer_id).police_at = None
        db.session.commit()
        raise
    timer = db.session.get(CheckinTimer, timer_id)
    if results[0]["status"] == "rejected":
        current_app.logger.error("overdue timer %s: incident refused: %s", timer_id,
                                 results[0]["errors"])
        db.session.commit()  # not retried forever: the managers were alerted
        return
    incident = db.session.get(Incident, timer_id)
    already = db.session.scalar(select(IncidentEvent.id).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "checkin_overdue"))
    if already is None:
        incidents.append_event(incident, None, "checkin_overdue", {
            "address": (None, timer.address),
            "timer_started_at": (None, timer.started_at),
            "timer_ended_at": (None, timer.ends_at),
            "managers_alerted_at": (None, timer.overdue_at),
            "managers_alerted": (None, [m.id for m in active_managers_of(timer)]),
        }, at=now)
    timer.incident_id = incident.id
    db.session.commit()


# ---------------------------------------------------------------------------
# BS 8484 figures for the console: each post's share of SOS / police-needed-now
# alerts taken by an officer within 10 s and within 40 s.


def alarm_figures(person: Person, date_from: date | None, date_to: date | None) -> dict:
    end = date_to or today_local()
    start_day = date_from or end - timedelta(days=89)
    query = (select(PoliceAlert.post_id, PoliceAlert.routed_at, PoliceAlert.acknowledged_at)
             .join(Incident, Incident.id == PoliceAlert.incident_id)
             .where(Incident.police_needed.is_(True), PoliceAlert.post_id.is_not(None),
                    PoliceAlert.routed_at >= local_midnight(start_day),
                    PoliceAlert.routed_at < local_midnight(end + timedelta(days=1))))
    if person.role != Role.ADMIN:
        query = query.where(Incident.station_id.in_(
            sorted(person.station_ids_in_scope()) or [-1]))
    counts: dict[int, list[int]] = {}
    for post_id, routed, acked in db.session.execute(query):
        row = counts.setdefault(post_id, [0, 0, 0])
        row[0] += 1
        if acked is not None:
            delay = (acked - routed).total_seconds()
            row[1] += delay <= 10
            row[2] += delay <= 40
    names = {p.id: p.hospital_name for p in db.session.scalars(
        select(PolicePost).where(PolicePost.id.in_(sorted(counts) or [-1])))}
    posts = [{"post_id": pid, "post_name": names.get(pid, ""), "alerts": n,
              "within_10s": round(a / n, 4), "within_40s": round(b / n, 4)}
             for pid, (n, a, b) in counts.items()]
    posts.sort(key=lambda p: (p["within_10s"], p["post_name"]))
    return {"date_from": start_day, "date_to": end, "target_10s": BS8484_10S,
            "target_40s": BS8484_40S, "posts": posts}

