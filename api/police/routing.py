"""Routing each newly synced incident to one police post, and escalation.

The rule, in order:
  1. the destination hospital's post, if the crew gave one;
  2. else the nearest post (great-circle distance) in the region of the crew's
     station, if the incident has a location;
  3. else the station's default post;
  4. else none: the station's managers are told at once.
The chosen post and the reason are recorded as a "routed" event, the post's
officers get a push, and the crew member gets "Received: case ...". All of it
joins the sync's transaction: this module is an api.incidents hook, registered
in create_app (api/__init__.py). A later revision that
names a destination hospital moves an alert nobody has acknowledged yet to
that hospital's post ("rerouted").

An alert nobody acknowledges climbs the region's escalation ladder
(api.police.ladder; by default, after POLICE_ESCALATE_AFTER_SECONDS, the
region's other posts and the station's managers, once), each step recorded as
an "escalated" event; the push worker runs the check on every tick (also
registered in create_app). It stops when someone acknowledges.
"""

import math
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.orm.attributes import set_committed_value

from api.db import insert_rows, is_postgres, utcnow
from api.extensions import db
from api.incidents import records as incidents
from api.incidents.models import Incident, IncidentStatus
from api.law import service as law
from api.orgs.models import Person, PolicePost, Role
from api.police import ladder
from api.police.models import PoliceAlert
from api.push import messages
from api.push.models import Urgency
from api.push.service import Notifications, notify_incident

DESTINATION = "destination_hospital"
NEAREST = "nearest_in_region"
STATION_DEFAULT = "station_default"
NO_POST = "no_post"

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _distance(incident: Incident, post: PolicePost) -> float | None:
    if incident.lat is None or post.lat is None or post.lon is None:
        return None
    return round(haversine_km(incident.lat, incident.lon, post.lat, post.lon), 3)


def officers_of(post_ids) -> list[Person]:
    if not post_ids:
        return []
    return list(db.session.scalars(select(Person).where(
        Person.role == Role.POLICE, Person.active.is_(True),
        Person.post_id.in_(sorted(post_ids))).order_by(Person.id)))


def active_managers(incident: Incident) -> list[Person]:
    return [m for m in incident.station.managers if m.active and m.role == Role.MANAGER]


# ---------------------------------------------------------------------------
# Routing on first sync (an api.incidents hook)


def _alert_for(incident: Incident, post: PolicePost | None, reason: str,
               distance: float | None, now: datetime, ladders: dict) -> PoliceAlert:
    """The alert row, for _store_alerts to insert; `ladders` caches each region's
    first escalation step."""
    region = incident.station.region_code
    return PoliceAlert(incident_id=incident.id, post_id=post.id if post else None,
                       reason=reason, distance_km=distance, routed_at=now,
                       region_code=region, escalation_level=0,
                       next_step_at=(ladder.first_step_at(region, now, ladders)
                                     if post is not None else None))


def _route_changes(incident: Incident, post: PolicePost | None, reason: str,
                   distance: float | None, now: datetime) -> dict:
    """The "routed" event's changes; the incident gets the post.

    The incident's post_id, status and updated_at (= now) are written in SQL
    (with its case number, by the sync), so the loaded object is only told.
    """
    changes = {"route_reason": (None, reason)}
    if distance is not None:
        changes["distance_km"] = (None, distance)
    if post is not None:
        changes["post_id"] = (incident.post_id, post.id)
        changes["status"] = (incident.status, IncidentStatus.ROUTED)
        set_committed_value(incident, "post_id", post.id)
        set_committed_value(incident, "status", IncidentStatus.ROUTED)
        set_committed_value(incident, "post", post)
    set_committed_value(incident, "updated_at", now)
    return changes


def _store_alerts(alerts: list[PoliceAlert]) -> None:
    """The batch's police alerts in one multi-row INSERT."""
    insert_rows(insert(PoliceAlert.__table__), [
        {"incident_id": a.incident_id, "post_id": a.post_id, "reason": a.reason,
         "distance_km": a.distance_km, "routed_at": a.routed_at,
         "region_code": a.region_code, "escalation_level": a.escalation_level,
         "next_step_at": a.next_step_at} for a in alerts])


def alert_police(incident: Incident, people: list[Person],
                 outbox: Notifications | None = None) -> None:
    """The first alert: to the post's officers (or the managers when there is no post)."""
    notify = outbox.add if outbox is not None else notify_incident
    for person in people:
        lang = person.language.value
        body = messages.classification_text(incident, lang)
        if incident.police_needed:
            body = messages.text("police_needed", lang) + ". " + body
        body = f"{body} — {incident.station.name}"
        times = messages.happened_logged(incident, lang)
        if times:
            body = f"{body} ({times})"
        title = messages.text("sos_title" if incident.sos else "alert_title", lang,
                              case=incident.case_number)
        # An SOS's alert lives minutes, not an hour, at the push service (api.sos).
        ttl = current_app.config["PUSH_TTL_SOS"] if incident.sos else None
        notify(person, "police.alert", incident, title, body, urgency=Urgency.HIGH, alert=True,
               ttl=ttl)


def tell_reporter_received(incident: Incident, post: PolicePost | None,
                           outbox: Notifications | None = None, *,
                           kind: str = "incident.received") -> None:
    notify = outbox.add if outbox is not None else notify_incident
    person = incident.reporter
    lang = person.language.value
    tail = (messages.text("post_notified", lang, post=post.hospital_name) if post
            else messages.text("no_post", lang))
    body = f"{messages.classification_text(incident, lang)}; {tail}"
    notify(person, kind, incident,
           messages.text("received_title", lang, case=incident.case_number), body,
           urgency=Urgency.NORMAL)  # a confirmation; the police alert is the urgent one


class _Posts:
    """The posts a batch may be routed to, loaded with two queries for the batch."""

    def __init__(self, batch: list[Incident]):
        wanted = {i.destination_post_id for i in batch if i.destination_post_id is not None}
        self.by_id = ({p.id: p for p in db.session.scalars(
            select(PolicePost).where(PolicePost.id.in_(sorted(wanted))))} if wanted else {})
        regions = {i.station.region_code for i in batch if i.lat is not None}
        self.located: dict[str, list[PolicePost]] = {}
        if regions:
            for post in db.session.scalars(select(PolicePost).where(
                    PolicePost.region_code.in_(sorted(regions)),
                    PolicePost.lat.is_not(None), PolicePost.lon.is_not(None))
                    .order_by(PolicePost.id)):
                self.located.setdefault(post.region_code, []).append(post)

    def choose(self, incident: Incident) -> tuple[PolicePost | None, str, float | None]:
        """(post, reason, distance in km when measured) by the rule above."""
        if incident.destination_post_id is not None:
            post = self.by_id.get(incident.destination_post_id)
            if post is not None:
                return post, DESTINATION, _distance(incident, post)
        station = incident.station
        if incident.lat is not None:
            posts = self.located.get(station.region_code)
            if posts:
                post = min(posts, key=lambda p: (_distance(incident, p), p.id))
                return post, NEAREST, _distance(incident, post)
        if station.default_post is not None:
            return (station.default_post, STATION_DEFAULT,
                    _distance(incident, station.default_post))
        return None, NO_POST, None


def prepare_incidents_synced(batch: list[Incident], columns: dict) -> tuple:
    """The part that needs no case number, which sync runs before it draws the
    numbers (and takes its region's counter lock), writing nothing: posts chosen,
    alerts made, officers and everyone's devices read (the push workers' NOTIFY
    too, delivered at the commit); each incident's new post, status and updated_at
    go in columns[incident id], which sync writes with its number (and writes
    back if the finish fails). Adds no event: the
    "created" ones come first in each chain."""
    now = utcnow()
    posts = _Posts(batch)
    choices = [(incident, *posts.choose(incident)) for incident in batch]
    for incident, post, _reason, _distance in choices:
        columns.setdefault(incident.id, {}).update(
            updated_at=now, post_id=post.id if post is not None else incident.post_id,
            status=IncidentStatus.ROUTED if post is not None else incident.status)
    ladders: dict = {}
    alerts = [_alert_for(incident, post, reason, distance, now, ladders)
              for incident, post, reason, distance in choices]
    officers: dict[int, list[Person]] = {}
    for officer in officers_of({alert.post_id for alert in alerts
                                if alert.post_id is not None}):
        officers.setdefault(officer.post_id, []).append(officer)
    outbox = Notifications()
    outbox.prefetch([officer for group in officers.values() for officer in group]
                    + [incident.reporter for incident in batch])
    return now, choices, alerts, officers, outbox


def finish_incidents_synced(batch: list[Incident], prepared: tuple) -> None:
    """Once numbered: the "routed" events, and the pushes that name the case."""
    now, choices, alerts, officers, outbox = prepared
    # Here, not in prepare: if anything below fails, the alerts go with it.
    _store_alerts(alerts)
    routed = incidents.insert_events(
        [(incident, None, "routed", _route_changes(incident, post, reason, distance, now), None)
         for incident, post, reason, distance in choices], at=now)
    for incident, event in routed:
        incidents.dispatch("on_incident_event", incident, event)
    for (incident, *_), alert in zip(choices, alerts, strict=True):
        people = (officers.get(alert.post_id, []) if alert.post_id is not None
                  else active_managers(incident))
        alert_police(incident, people, outbox)
        tell_reporter_received(incident, incident.post, outbox)
    outbox.flush()


# ---------------------------------------------------------------------------
# Re-routing: the crew names the destination hospital after the first sync
# (the usual order: one tap syncs at once, the details come on the way).


def on_incident_event(incident: Incident, event) -> None:
    changes = event.changes or {}
    if event.kind == "revised" and "destination_post_id" in changes:
        reroute_to_destination(incident)
    if event.kind in ("revised", "time_confirmed") and "occurred_at" in changes:
        tell_time_corrected(incident, event)
    if (event.kind in ("created", "revised")
            and (changes.get("occurred_at_pending") or [None, None])[1]):
        ask_managers_to_confirm(incident)
    if event.kind == "time_rejected":
        tell_reporter_time_rejected(incident)


# ---------------------------------------------------------------------------
# The stated time of an incident (api.incidents: occurred_at)


def tell_time_corrected(incident: Incident, event) -> None:
    """The post's officers (and, after a manager's confirmation, the crew member)
    learn the corrected time and classification, and what it moves in law."""
    before, after = (law.parse_instant(v) for v in event.changes["occurred_at"])
    people = officers_of({incident.post_id}) if incident.post_id is not None else []
    confirmed = event.kind == "time_confirmed"
    if confirmed:
        people.append(incident.reporter)
    for person in people:
        lang = person.language.value
        times = messages.happened_logged(incident, lang)
        body = ". ".join(part for part in (
            times[:1].upper() + times[1:],
            messages.classification_text(incident, lang),
            messages.time_change_text(before, after, lang)) if part)
        key = ("time_confirmed_title" if confirmed and person.id == incident.reporter_id
               else "time_corrected_title")
        notify_incident(person, "incident.time_corrected", incident,
                        messages.text(key, lang, case=incident.case_number), body,
                        urgency=Urgency.HIGH if person.role == Role.POLICE else Urgency.NORMAL)


def ask_managers_to_confirm(incident: Incident) -> None:
    days = current_app.config["STATED_TIME_MAX_DAYS_BEFORE_TAP"]
    for person in active_managers(incident):
        lang = person.language.value
        body = messages.text("time_pending_body", lang,
                             stated=messages.local_time(incident.occurred_at_pending),
                             days=days, logged=messages.local_time(incident.logged_at))
        note = messages.time_change_text(incident.occurred_at, incident.occurred_at_pending, lang)
        notify_incident(person, "incident.time_pending", incident,
                        messages.text("time_pending_title", lang, case=incident.case_number),
                        f"{body} {note}".strip())


def tell_reporter_time_rejected(incident: Incident) -> None:
    person = incident.reporter
    lang = person.language.value
    notify_incident(person, "incident.time_rejected", incident,
                    messages.text("time_rejected_title", lang, case=incident.case_number),
                    messages.text("time_rejected_body", lang,
                                  occurred=messages.local_time(incident.occurred_at)))


def reroute_to_destination(incident: Incident, now: datetime | None = None) -> bool:
    """Move an alert nobody has acknowledged to the destination hospital's post;
    True if it moved. An acknowledged (or closed) case stays with its post."""
    if incident.destination_post_id is None or incident.destination_post_id == incident.post_id:
        return False
    if incident.acknowledged_at is not None or incident.status == IncidentStatus.CLOSED:
        return False
    post = db.session.get(PolicePost, incident.destination_post_id)
    alert = db.session.get(PoliceAlert, incident.id, with_for_update=True)
    if post is None or alert is None or alert.acknowledged_at is not None:
        return False
    now = now or utcnow()
    previous = incident.post
    distance = _distance(incident, post)
    changes = {"route_reason": (alert.reason, DESTINATION),
               "post_id": (incident.post_id, post.id)}
    if distance is not None:
        changes["distance_km"] = (alert.distance_km, distance)
    if incident.status == IncidentStatus.LOGGED:
        changes["status"] = (incident.status, IncidentStatus.ROUTED)
        incident.status = IncidentStatus.ROUTED
    # A fresh alert for the new post: its own time to acknowledge before escalation
    # (an alert already escalated is not escalated a second time).
    alert.post_id, alert.reason, alert.distance_km, alert.routed_at = (
        post.id, DESTINATION, distance, now)
    if alert.escalation_level == 0:
        alert.next_step_at = ladder.first_step_at(alert.region_code, now)
    incident.post_id, incident.post = post.id, post
    incidents.append_event(incident, None, "rerouted", changes, at=now)
    alert_police(incident, officers_of({post.id}))
    if previous is not None:
        _tell_previous_post(incident, previous, post)
    tell_reporter_received(incident, post, kind="incident.rerouted")
    return True


def _tell_previous_post(incident: Incident, previous: PolicePost, post: PolicePost) -> None:
    """The first post's alert is replaced on their phones (same tag): it is not theirs now."""
    for officer in officers_of({previous.id}):
        lang = officer.language.value
        notify_incident(officer, "police.rerouted", incident,
                        messages.text("rerouted_title", lang, case=incident.case_number),
                        messages.text("rerouted_body", lang, post=post.hospital_name))


# ---------------------------------------------------------------------------
# Escalation (run by the push worker): the region's ladder, api.police.ladder


def escalate_overdue(now: datetime) -> int:
    """Take every escalation step that is due; commits; returns how many were taken."""
    query = (select(PoliceAlert)
             .where(PoliceAlert.acknowledged_at.is_(None), PoliceAlert.next_step_at <= now,
                    PoliceAlert.post_id.is_not(None))
             .order_by(PoliceAlert.next_step_at).limit(100))
    if is_postgres():
        # Two workers never take the same step twice.
        query = query.with_for_update(skip_locked=True, of=PoliceAlert)
    taken = 0
    for alert in db.session.scalars(query).all():
        taken += climb(alert, now)
    db.session.commit()
    return taken


def on_tick(now: datetime) -> None:
    """The push worker's tick (a listener of api.push.worker)."""
    escalate_overdue(now)


def climb(alert: PoliceAlert, now: datetime) -> int:
    """Take the steps of the alert's ladder that are due (usually one); schedule the next.

    Due times count from routed_at, so a ladder changed meanwhile is followed
    from the step the alert has reached."""
    taken = 0
    while True:
        step = ladder.step_after(alert.region_code, alert.escalation_level)
        if step is None or alert.incident.status == IncidentStatus.CLOSED:
            alert.next_step_at = None  # the ladder is done, or closed without an acknowledgement
            return taken
        due = alert.routed_at + timedelta(seconds=step.after_seconds)
        if due > now:
            alert.next_step_at = due
            return taken
        escalate(alert, step, now)
        taken += 1


def _step_people(alert: PoliceAlert, incident: Incident, step: ladder.Step):
    """(post ids, managers, other people) a step reaches."""
    posts: set[int] = set()
    managers: list[Person] = []
    people: dict[int, Person] = {}
    for target in step.targets:
        if target == "post":
            posts.add(alert.post_id)
        elif target == "region_posts":
            posts |= set(db.session.scalars(select(PolicePost.id).where(
                PolicePost.region_code == alert.region_code, PolicePost.id != alert.post_id)))
        elif target == "managers":
            managers = active_managers(incident)
        elif target == "admins":
            for admin in db.session.scalars(select(Person).where(
                    Person.role == Role.ADMIN, Person.active.is_(True)).order_by(Person.id)):
                people[admin.id] = admin
        elif (match := ladder.PERSON.match(target)) is not None:
            person = db.session.get(Person, int(match.group(1)))
            if person is not None and person.active:
                people[person.id] = person
    return posts, managers, people


def escalate(alert: PoliceAlert, step: ladder.Step, now: datetime) -> None:
    """One step of the ladder: its event in the incident's chain, and its pushes."""
    incident = alert.incident
    level = alert.escalation_level
    alert.escalation_level = step.level
    alert.escalated_at = alert.escalated_at or now  # the region's posts may take it from now
    posts, managers, people = _step_people(alert, incident, step)
    officers = officers_of(posts)
    for person in managers + officers:
        people.pop(person.id, None)
    changes = {
        "escalation_level": (level, step.level),
        "escalated_to_posts": (None, sorted(posts)),
        "escalated_to_managers": (None, [m.id for m in managers]),
        "unacknowledged_by_post": (None, alert.post_id),
    }
    if people:
        changes["escalated_to_people"] = (None, sorted(people))
    incidents.append_event(incident, None, "escalated", changes, at=now)
    minutes = round(step.after_seconds / 60)
    post_name = alert.post.hospital_name if alert.post else ""
    for person in officers + managers + list(people.values()):
        lang = person.language.value
        body = messages.text("escalation_body", lang, post=post_name,
                             classification=messages.classification_text(incident, lang))
        if incident.police_needed:
            body = messages.text("police_needed", lang) + ". " + body
        notify_incident(person, "police.escalation", incident,
                        messages.text("escalation_title", lang, minutes=minutes,
                                      case=incident.case_number),
                        body, urgency=Urgency.HIGH, alert=True)
