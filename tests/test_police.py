"""Police screens' API: the post's list, acknowledge, ЕРДР number, status, escalation."""

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.police.models import PoliceAlert
from api.push.models import PushOutbox
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

pytest_plugins = ["tests.push_service"]

BASE = "/api/v1/police/incidents"


@pytest.fixture
def world(push_app, client, login):
    """Region 75: posts A (the station's default) and B; region 71: post C."""
    post_a = make_post(region="75", name="Post A")
    post_b = make_post(region="75", name="Post B")
    post_c = make_post(region="71", name="Post C")
    station = make_station(region="75", default_post=post_a)
    w = {
        "post_a": post_a, "post_b": post_b, "post_c": post_c, "station": station,
        "crew": make_person("crew", station=station, language="en"),
        "manager": make_person("manager", station=station),
        "officer_a": make_person("police", post=post_a, language="en"),
        "officer_b": make_person("police", post=post_b),
        "officer_c": make_person("police", post=post_c),
    }
    w["clients"] = {}
    for name in ("crew", "manager", "officer_a", "officer_b", "officer_c"):
        c = client.application.test_client()
        login(w[name], on=c)
        w["clients"][name] = c
    return w


def new_incident(world, **fields) -> str:
    res = sync(world["clients"]["crew"], record(**fields))["results"][0]
    return res["incident"]["id"]


def kinds_for(person, incident_id=None):
    query = select(PushOutbox.kind).where(PushOutbox.person_id == person.id)
    if incident_id:
        query = query.where(PushOutbox.incident_id == uuid.UUID(incident_id))
    return list(db.session.scalars(query.order_by(PushOutbox.id)))


def events(incident_id):
    return db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == uuid.UUID(incident_id)).order_by(IncidentEvent.id)).all()


def subscribe_everyone(world, subscribe):
    for c in world["clients"].values():
        subscribe(c)


def test_officer_sees_their_posts_incidents_urgent_then_newest(world, push_service):
    a = world["clients"]["officer_a"]
    old = new_incident(world, tapped_at="2026-06-01T08:00:00+05:00")
    newer = new_incident(world, tapped_at="2026-06-01T09:00:00+05:00")
    needed = new_incident(world, tapped_at="2026-06-01T07:00:00+05:00", police_needed=True)
    acked = new_incident(world, tapped_at="2026-06-01T09:30:00+05:00")
    assert a.post(f"{BASE}/{acked}/acknowledge").status_code == 200
    body = a.get(BASE).get_json()
    assert [i["id"] for i in body["items"]] == [needed, newer, old, acked]
    assert [i["urgent"] for i in body["items"]] == [True, True, True, False]
    assert body["items"][0]["alert"]["reason"] == "station_default"
    # Post B and region 71 see none of them; crew may not use the police API.
    assert world["clients"]["officer_b"].get(BASE).get_json()["items"] == []
    assert world["clients"]["officer_c"].get(BASE).get_json()["items"] == []
    assert world["clients"]["crew"].get(BASE).status_code == 403
    assert world["clients"]["officer_b"].get(f"{BASE}/{old}").status_code == 404
    assert a.get(f"{BASE}?status=acknowledged").get_json()["items"][0]["id"] == acked
    assert a.get(f"{BASE}?status=nonsense").status_code == 422


def test_acknowledge_records_who_and_when_and_tells_the_crew_once(world, push_service):
    ident = new_incident(world)
    a = world["clients"]["officer_a"]
    response = a.post(f"{BASE}/{ident}/acknowledge")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "acknowledged"
    assert body["alert"]["acknowledged_by"]["id"] == world["officer_a"].id
    assert body["alert"]["acknowledged_at"] is not None
    assert a.post(f"{BASE}/{ident}/acknowledge").status_code == 200  # repeat: no change
    assert [e.kind for e in events(ident)] == ["created", "routed", "acknowledged"]
    ack = events(ident)[-1]
    assert ack.actor_id == world["officer_a"].id
    assert ack.changes["status"] == ["routed", "acknowledged"]
    # The station manager's figures count it, with the delay the officer took.
    figures = world["clients"]["manager"].get(
        "/api/v1/review/figures?from=2026-01-01&to=2026-12-31").get_json()
    delay = (datetime.fromisoformat(body["alert"]["acknowledged_at"])
             - datetime.fromisoformat(body["received_at"])).total_seconds()
    assert figures["sync_to_ack"]["count"] == 1
    assert figures["sync_to_ack"]["median_s"] == pytest.approx(delay, abs=0.001)


def test_erdr_number_is_validated_recorded_and_sent_to_the_crew(world, push_service,
                                                                subscribe, worker):
    subscribe_everyone(world, subscribe)
    ident = new_incident(world)
    a = world["clients"]["officer_a"]
    for bad in ["QG-75-2026-000001", "12", "", "１２３４５６７８９０"]:
        response = a.put(f"{BASE}/{ident}/erdr", json={"erdr_number": bad})
        assert response.status_code == 422, bad
        assert response.get_json()["errors"][0]["field"] == "erdr_number"
    assert a.put(f"{BASE}/{ident}/erdr", json={}).status_code == 422
    response = a.put(f"{BASE}/{ident}/erdr", json={"erdr_number": "267500031000123"})
    assert response.status_code == 200
    body = response.get_json()
    # Recording the number is also the acknowledgement: no escalation for this post.
    assert body["erdr_number"] == "267500031000123" and body["status"] == "acknowledged"
    assert [e.kind for e in events(ident)][-2:] == ["acknowledged", "erdr_recorded"]
    assert kinds_for(world["crew"], ident) == [
        "incident.received", "incident.acknowledged", "incident.erdr"]
    worker.tick()
    erdr = next(r for r in push_service.delivered() if r.payload["type"] == "incident.erdr")
    assert erdr.payload["body"] == "ЕРДР number: 267500031000123."
    assert erdr.payload["url"] == f"/#/incidents/{ident}"


def test_investigating_then_closed_with_a_note(world, push_service):
    ident = new_incident(world)
    a = world["clients"]["officer_a"]
    url = f"{BASE}/{ident}/status"
    response = a.post(url, json={"status": "closed"})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "note"
    assert a.post(url, json={"status": "routed"}).get_json()["errors"][0]["field"] == "status"
    assert a.post(url, json={"status": "investigating"}).get_json()["status"] == "investigating"
    closed = a.post(url, json={"status": "closed", "note": "Offender detained; case sent on."})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    last = events(ident)[-1]
    assert last.changes == {"status": ["investigating", "closed"],
                            "police_note": [None, "Offender detained; case sent on."]}
    assert kinds_for(world["crew"], ident) == []  # crew had no device subscribed
    # Closed is final.
    again = a.post(f"{BASE}/{ident}/acknowledge")
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert a.put(f"{BASE}/{ident}/erdr", json={"erdr_number": "267500031000123"}
                 ).status_code == 409


def test_unknown_incident_is_404_and_bad_uuid_404(world):
    a = world["clients"]["officer_a"]
    assert a.post(f"{BASE}/{uuid.uuid4()}/acknowledge").status_code == 404
    assert a.get(f"{BASE}/not-a-uuid").status_code == 404


# --- Escalation --------------------------------------------------------------


def test_unacknowledged_alert_escalates_once_to_the_region_and_managers(
        world, push_service, subscribe, worker, clock):
    subscribe_everyone(world, subscribe)
    ident = new_incident(world, police_needed=True)
    clock.advance(299)
    worker.tick()
    assert db.session.get(PoliceAlert, uuid.UUID(ident)).escalated_at is None
    clock.advance(2)
    worker.tick()
    alert = db.session.get(PoliceAlert, uuid.UUID(ident))
    db.session.refresh(alert)
    assert alert.escalated_at is not None
    escalated = [e for e in events(ident) if e.kind == "escalated"]
    assert len(escalated) == 1
    assert escalated[0].changes["escalated_to_posts"] == [None, [world["post_b"].id]]
    assert escalated[0].changes["escalated_to_managers"] == [None, [world["manager"].id]]
    assert kinds_for(world["officer_b"], ident) == ["police.escalation"]
    assert kinds_for(world["manager"], ident) == ["police.escalation"]
    assert kinds_for(world["officer_c"], ident) == []  # another region
    assert kinds_for(world["officer_a"], ident) == ["police.alert"]
    b_push = [r for r in push_service.delivered() if r.payload["type"] == "police.escalation"]
    assert len(b_push) == 2 and all(r.urgency == "high" for r in b_push)
    # Once only.
    clock.advance(3600)
    worker.tick()
    assert len([e for e in events(ident) if e.kind == "escalated"]) == 1

    # Post B now sees it, and taking it makes the case theirs.
    b = world["clients"]["officer_b"]
    assert [i["id"] for i in b.get(BASE).get_json()["items"]] == [ident]
    body = b.post(f"{BASE}/{ident}/acknowledge").get_json()
    assert body["post_id"] == world["post_b"].id and body["status"] == "acknowledged"
    assert events(ident)[-1].changes["post_id"] == [world["post_a"].id, world["post_b"].id]
    assert world["clients"]["officer_a"].get(BASE).get_json()["items"] == []


def test_acknowledged_in_time_never_escalates(world, worker, clock):
    ident = new_incident(world)
    world["clients"]["officer_a"].post(f"{BASE}/{ident}/acknowledge")
    clock.advance(3600)
    worker.tick()
    assert [e.kind for e in events(ident)] == ["created", "routed", "acknowledged"]


def test_escalation_delay_is_configurable(world, worker, clock, push_app):
    push_app.config["POLICE_ESCALATE_AFTER_SECONDS"] = 60
    ident = new_incident(world)
    clock.advance(61)
    worker.tick()
    assert "escalated" in [e.kind for e in events(ident)]


def test_routing_reason_and_alert_are_in_the_detail(world):
    ident = new_incident(world)
    body = world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()
    assert body["alert"]["reason"] == "station_default"
    assert body["station_name"] == world["station"].name
    assert [e["kind"] for e in body["events"]] == ["created", "routed"]
    incident = db.session.get(Incident, uuid.UUID(ident))
    assert incident.occurred_at - incident.received_at < timedelta(days=1)
