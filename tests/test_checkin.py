"""Check-in timers: the server's timer counts, with the phone silent after the start.

The push worker's clock is the test's (tests/push_service.py Clock): time moves
by clock.advance, never by sleeping.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.checkin.models import CheckinTimer
from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.ledger.service import verify_all
from api.push.models import PushOutbox
from tests.factories import make_person, make_post, make_station

pytest_plugins = ["tests.push_service"]

URL = "/api/v1/checkin/timers"
ADDRESS = "ул. Абая, д. 10, кв. 5"


@pytest.fixture
def world(push_app, client, login):
    post_a = make_post(region="75", name="Post A")
    post_b = make_post(region="75", name="Post B")
    station = make_station(region="75", default_post=post_a)
    other = make_station(region="75", default_post=post_a)
    w = {
        "post_a": post_a, "post_b": post_b, "station": station,
        "crew": make_person("crew", station=station, language="en"),
        "crew2": make_person("crew", station=station),
        "manager": make_person("manager", station=station, language="en"),
        "other_manager": make_person("manager", station=other),
        "officer_a": make_person("police", post=post_a, language="en"),
        "officer_b": make_person("police", post=post_b),
    }
    w["clients"] = {}
    for name in ("crew", "crew2", "manager", "other_manager", "officer_a", "officer_b"):
        c = client.application.test_client()
        login(w[name], on=c)
        w["clients"][name] = c
    return w


def start(client, minutes=10, started_at=None, location=True, **extra):
    body = {"id": str(uuid.uuid4()), "address": ADDRESS, "minutes": minutes,
            "started_at": (started_at or datetime.now(UTC)).isoformat(), **extra}
    if location:
        body["location"] = {"lat": 43.2389, "lon": 76.8897, "accuracy_m": 12}
    return client.post(URL, json=body)


def kinds_for(person, kind_prefix=""):
    return [k for k in db.session.scalars(select(PushOutbox.kind).where(
        PushOutbox.person_id == person.id).order_by(PushOutbox.id)) if k.startswith(kind_prefix)]


def events(incident_id):
    return db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == uuid.UUID(str(incident_id))).order_by(IncidentEvent.seq)).all()


def test_overdue_timer_escalates_with_the_phone_offline(world, push_service, subscribe,
                                                        worker, clock):
    for name in ("crew", "manager", "officer_a", "officer_b"):
        subscribe(world["clients"][name])
    response = start(world["clients"]["crew"])
    assert response.status_code == 201, response.get_json()
    timer = response.get_json()
    assert timer["state"] == "running" and timer["minutes"] == 10
    ident = timer["id"]
    # From here on the phone says nothing more: only the worker's clock moves.

    clock.advance(7 * 60)
    worker.tick()
    assert kinds_for(world["crew"], "checkin") == []
    clock.advance(61)  # 1 min 59 s before the end: the reminder
    worker.tick()
    assert kinds_for(world["crew"], "checkin") == ["checkin.reminder"]
    reminder = next(r for r in push_service.delivered()
                    if r.payload["type"] == "checkin.reminder")
    assert reminder.urgency == "high"
    assert reminder.payload["title"] == "Check in: 2 min left"
    assert "ул. Абая, д. 10" in reminder.payload["body"]
    assert reminder.payload["url"] == "/#/checkin"

    clock.advance(120)  # the end: the station's manager, not yet the police
    worker.tick()
    assert kinds_for(world["manager"], "checkin") == ["checkin.overdue"]
    assert kinds_for(world["officer_a"]) == []
    assert db.session.get(Incident, uuid.UUID(ident)) is None
    overdue = next(r for r in push_service.delivered() if r.payload["type"] == "checkin.overdue")
    assert overdue.payload["title"] == f"No check-in: {world['crew'].display_name}"
    assert overdue.payload["url"] == "/#/review" and overdue.urgency == "high"
    assert world["clients"]["manager"].get(f"{URL}/{ident}").get_json()["state"] == "overdue"

    clock.advance(299)  # CHECKIN_POLICE_AFTER_SECONDS (300) not yet over
    worker.tick()
    assert db.session.get(Incident, uuid.UUID(ident)) is None
    clock.advance(2)
    worker.tick()
    incident = db.session.get(Incident, uuid.UUID(ident))
    assert incident is not None and incident.police_needed
    assert incident.reporter_id == world["crew"].id
    assert (incident.lat, incident.lon, incident.accuracy_m) == (43.2389, 76.8897, 12)
    assert ADDRESS in incident.note
    assert incident.post_id == world["post_a"].id  # the routing of any incident
    assert kinds_for(world["officer_a"]) == ["police.alert"]
    assert [e.kind for e in events(ident)] == ["created", "routed", "checkin_overdue"]
    story = events(ident)[-1].changes
    assert story["address"] == [None, ADDRESS]
    assert story["managers_alerted"] == [None, [world["manager"].id]]
    assert verify_all(uuid.UUID(ident)).broken_chains == []
    assert world["clients"]["crew"].get(f"{URL}/{ident}").get_json()["state"] == "police"
    # The officer sees the address and the crew member's last known place.
    detail = world["clients"]["officer_a"].get(f"/api/v1/police/incidents/{ident}").get_json()
    assert ADDRESS in detail["note"]

    # More ticks make no second incident or alert; then the ladder's step (default:
    # the region's other posts and the managers) after POLICE_ESCALATE_AFTER_SECONDS.
    worker.tick()
    assert kinds_for(world["officer_a"]) == ["police.alert"]
    clock.advance(3600)
    worker.tick()
    assert [e.kind for e in events(ident)][-1] == "escalated"
    assert kinds_for(world["officer_b"]) == ["police.escalation"]
    assert verify_all(uuid.UUID(ident)).broken_chains == []


def test_im_safe_in_time_closes_it_and_nobody_is_alerted(world, push_service, subscribe,
                                                         worker, clock):
    subscribe(world["clients"]["manager"])
    crew = world["clients"]["crew"]
    ident = start(crew, minutes=20).get_json()["id"]
    response = crew.post(f"{URL}/{ident}/safe")
    assert response.status_code == 200 and response.get_json()["state"] == "safe"
    assert crew.post(f"{URL}/{ident}/safe").get_json()["closed_at"] == \
        response.get_json()["closed_at"]  # a repeat changes nothing
    clock.advance(3 * 3600)
    worker.tick()
    assert kinds_for(world["manager"]) == []
    assert db.session.get(Incident, uuid.UUID(ident)) is None


def test_safe_after_the_managers_were_told_tells_them(world, push_service, subscribe,
                                                      worker, clock):
    subscribe(world["clients"]["manager"])
    crew = world["clients"]["crew"]
    ident = start(crew).get_json()["id"]
    clock.advance(10 * 60 + 1)
    worker.tick()
    assert crew.post(f"{URL}/{ident}/safe").get_json()["state"] == "safe"
    assert kinds_for(world["manager"], "checkin") == ["checkin.overdue", "checkin.safe"]
    clock.advance(3600)
    worker.tick()
    assert db.session.get(Incident, uuid.UUID(ident)) is None  # the police are never called


def test_safe_after_the_police_were_alerted_is_in_the_chain(world, push_service, subscribe,
                                                            worker, clock):
    subscribe(world["clients"]["officer_a"])
    crew = world["clients"]["crew"]
    ident = start(crew, location=False).get_json()["id"]
    clock.advance(10 * 60 + 1)
    worker.tick()
    clock.advance(301)
    worker.tick()
    incident = db.session.get(Incident, uuid.UUID(ident))
    assert incident.lat is None  # no location given: none invented
    assert crew.post(f"{URL}/{ident}/safe").get_json()["state"] == "safe"
    assert [e.kind for e in events(ident)][-1] == "checked_in_safe"
    assert events(ident)[-1].actor_id == world["crew"].id
    assert kinds_for(world["officer_a"]) == ["police.alert", "police.checkin_safe"]
    assert verify_all(uuid.UUID(ident)).broken_chains == []


def test_scope_other_people_and_stations_get_404(world):
    ident = start(world["clients"]["crew"]).get_json()["id"]
    assert world["clients"]["crew2"].get(f"{URL}/{ident}").status_code == 404
    assert world["clients"]["crew2"].post(f"{URL}/{ident}/safe").status_code == 404
    assert world["clients"]["other_manager"].get(f"{URL}/{ident}").status_code == 404
    assert world["clients"]["other_manager"].get(URL).get_json()["items"] == []
    assert world["clients"]["manager"].get(f"{URL}/{ident}").status_code == 200
    assert [t["id"] for t in world["clients"]["manager"].get(URL).get_json()["items"]] == [ident]
    assert world["clients"]["officer_a"].get(URL).status_code == 403
    assert world["clients"]["manager"].post(f"{URL}/{ident}/safe").status_code == 403
    assert world["clients"]["crew"].get(f"{URL}/{uuid.uuid4()}").status_code == 404
    still = db.session.get(CheckinTimer, uuid.UUID(ident))
    assert still.closed_at is None


def test_a_retried_registration_is_one_timer(world):
    crew = world["clients"]["crew"]
    body = {"id": str(uuid.uuid4()), "address": ADDRESS, "minutes": 30,
            "started_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat()}
    first = crew.post(URL, json=body)
    again = crew.post(URL, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["ends_at"] == again.get_json()["ends_at"]
    # The end counts from when the phone started it, not from when it got through.
    ends = datetime.fromisoformat(first.get_json()["ends_at"])
    assert ends == datetime.fromisoformat(body["started_at"]) + timedelta(minutes=30)
    # Someone else cannot take that id.
    assert world["clients"]["crew2"].post(URL, json=body).status_code == 409


@pytest.mark.parametrize(("change", "field"), [
    ({"minutes": 0}, "minutes"), ({"minutes": 241}, "minutes"), ({"minutes": "10"}, "minutes"),
    ({"address": ""}, "address"), ({"address": None}, "address"), ({"id": "x"}, "id"),
    ({"started_at": "2026-01-01T10:00:00"}, "started_at"),
    ({"started_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "started_at"),
    ({"started_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}, "started_at"),
    ({"location": {"lat": 91, "lon": 0}}, "location.lat"),
])
def test_bad_input_is_a_problem_naming_the_field(world, change, field):
    body = {"id": str(uuid.uuid4()), "address": ADDRESS, "minutes": 10,
            "started_at": datetime.now(UTC).isoformat(), **change}
    response = world["clients"]["crew"].post(URL, json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert db.session.scalars(select(CheckinTimer)).all() == []


def test_timers_overdue_together_each_become_one_incident(world, push_service, worker, clock):
    ids = [start(world["clients"][who]).get_json()["id"] for who in ("crew", "crew2", "crew")]
    clock.advance(10 * 60 + 1)
    worker.tick()
    clock.advance(301)
    worker.tick()
    worker.tick()
    made = db.session.scalars(select(Incident).where(
        Incident.id.in_([uuid.UUID(i) for i in ids]))).all()
    assert len(made) == 3 and all(i.police_needed for i in made)
    for ident in ids:
        assert [e.kind for e in events(ident)].count("checkin_overdue") == 1


def test_a_failed_police_step_is_tried_again_on_the_next_tick(world, push_service, worker,
                                                              clock, monkeypatch):
    from api.checkin import service
    from api.incidents import sync as incident_sync

    ident = start(world["clients"]["crew"]).get_json()["id"]
    clock.advance(10 * 60 + 1)
    worker.tick()
    clock.advance(301)
    real = incident_sync.sync

    def broken(*args, **kwargs):
        raise RuntimeError("database went away mid-sync")

    monkeypatch.setattr(service.incident_sync, "sync", broken)
    with pytest.raises(RuntimeError):
        worker.tick()
    timer = db.session.get(CheckinTimer, uuid.UUID(ident))
    db.session.refresh(timer)
    assert timer.police_at is None and db.session.get(Incident, uuid.UUID(ident)) is None
    monkeypatch.setattr(service.incident_sync, "sync", real)
    worker.tick()
    assert db.session.get(Incident, uuid.UUID(ident)) is not None
