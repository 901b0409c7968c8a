"""Routing: destination hospital's post, else nearest in the region, else the station default."""

import uuid

import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.police.models import PoliceAlert
from api.police.routing import haversine_km
from api.push.models import PushOutbox
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

pytest_plugins = ["tests.push_service"]

# Almaty (KZ-75) hospitals, and one in Astana (KZ-71).
CENTRE = (43.2380, 76.9450)


@pytest.fixture
def posts():
    return {
        "near": make_post(region="75", lat=43.2400, lon=76.9500, name="Near"),
        "far": make_post(region="75", lat=43.3500, lon=77.0500, name="Far"),
        # Closer to CENTRE than "near", but in another region: never chosen by distance.
        "other_region": make_post(region="71", lat=43.2381, lon=76.9451, name="Elsewhere"),
        "default": make_post(region="75", lat=None, lon=None, name="Default"),
        "astana": make_post(region="71", lat=51.1694, lon=71.4491, name="Astana"),
    }


def synced(client, login, station, **fields):
    crew = make_person("crew", station=station)
    login(crew)
    res = sync(client, record(**fields))["results"][0]
    assert res["status"] == "created", res
    incident = db.session.get(Incident, uuid.UUID(res["incident"]["id"]))
    return incident, db.session.get(PoliceAlert, incident.id)


def location(lat, lon):
    return {"lat": lat, "lon": lon, "accuracy_m": 10, "source": "gps"}


def routed_event(incident):
    return db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "routed")).one()


def test_haversine_matches_known_distances():
    assert haversine_km(43.2389, 76.8897, 51.1694, 71.4491) == pytest.approx(972, rel=0.01)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.19, rel=0.001)
    assert haversine_km(43.0, 76.0, 43.0, 76.0) == 0


def test_destination_hospital_wins(client, login, posts):
    station = make_station(region="75", default_post=posts["default"])
    incident, alert = synced(client, login, station, location=location(*CENTRE),
                             destination_post_id=posts["astana"].id)
    assert incident.post_id == posts["astana"].id and incident.status == "routed"
    assert alert.reason == "destination_hospital"
    assert alert.distance_km == pytest.approx(haversine_km(*CENTRE, 51.1694, 71.4491), abs=0.01)


def test_nearest_post_in_the_incidents_region(client, login, posts):
    station = make_station(region="75", default_post=posts["default"])
    incident, alert = synced(client, login, station, location=location(*CENTRE))
    assert incident.post_id == posts["near"].id
    assert alert.reason == "nearest_in_region"
    assert alert.distance_km == pytest.approx(haversine_km(*CENTRE, 43.24, 76.95), abs=0.001)
    changes = routed_event(incident).changes
    assert changes["route_reason"] == [None, "nearest_in_region"]
    assert changes["post_id"] == [None, posts["near"].id]
    assert changes["status"] == ["logged", "routed"]
    assert routed_event(incident).actor_id is None  # the system routed it


def test_location_nearer_the_far_post_picks_it(client, login, posts):
    station = make_station(region="75", default_post=posts["default"])
    incident, _ = synced(client, login, station, location=location(43.34, 77.04))
    assert incident.post_id == posts["far"].id


def test_station_default_without_a_location(client, login, posts):
    station = make_station(region="75", default_post=posts["default"])
    incident, alert = synced(client, login, station)
    assert incident.post_id == posts["default"].id
    assert alert.reason == "station_default" and alert.distance_km is None


def test_station_default_when_the_region_has_no_located_post(client, login):
    default = make_post(region="79", lat=None, lon=None)
    station = make_station(region="79", default_post=default)
    incident, alert = synced(client, login, station, location=location(42.3, 69.6))
    assert (incident.post_id, alert.reason) == (default.id, "station_default")


def test_no_post_at_all_tells_the_managers(client, login, push_service, subscribe):
    station = make_station(region="62", default_post=None)
    manager = make_person("manager", station=station)
    manager_client = client.application.test_client()
    login(manager, on=manager_client)
    subscribe(manager_client)
    incident, alert = synced(client, login, station, location=location(47.8, 67.7))
    assert incident.post_id is None and incident.status == "logged"
    assert alert.reason == "no_post"
    assert routed_event(incident).changes == {"route_reason": [None, "no_post"]}
    kinds = db.session.scalars(select(PushOutbox.kind).where(
        PushOutbox.person_id == manager.id)).all()
    assert kinds == ["police.alert"]


def test_the_posts_officers_each_get_an_alert_at_once(client, login, posts, push_service,
                                                      subscribe):
    station = make_station(region="75", default_post=posts["default"])
    officers = [make_person("police", post=posts["near"]) for _ in range(2)]
    elsewhere = make_person("police", post=posts["far"])
    for person in [*officers, elsewhere]:
        c = client.application.test_client()
        login(person, on=c)
        subscribe(c)
    incident, _ = synced(client, login, station, location=location(*CENTRE))
    alerted = set(db.session.scalars(select(PushOutbox.person_id).where(
        PushOutbox.incident_id == incident.id, PushOutbox.kind == "police.alert")))
    assert alerted == {o.id for o in officers}


def test_routing_that_fails_midway_leaves_the_incident_logged(client, login, posts,
                                                             monkeypatch):
    # The batch hook writes the routes first; a failure after that (here: queueing
    # the pushes) must undo them, and the answer must say what is stored.
    from api.push import service as push

    def broken(self):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(push.Notifications, "flush", broken)
    station = make_station(region="75", default_post=posts["default"])
    login(make_person("crew", station=station))
    res = sync(client, record(location=location(*CENTRE)))["results"][0]
    assert res["status"] == "created"
    assert res["incident"]["post_id"] is None and res["incident"]["status"] == "logged"
    db.session.expire_all()
    incident = db.session.get(Incident, uuid.UUID(res["id"]))
    assert incident.post_id is None and incident.status == "logged"
    assert db.session.get(PoliceAlert, incident.id) is None
    assert [e.kind for e in incident.events] == ["created"]


# ---------------------------------------------------------------- re-routing


@pytest.fixture
def reroute_world(client, login, posts, push_service, subscribe):
    """A crew member's incident routed to the nearest post before any destination was set."""
    station = make_station(region="75", default_post=posts["default"])
    people = {"near": make_person("police", post=posts["near"], language="en"),
              "far": make_person("police", post=posts["far"], language="ru")}
    clients = {}
    for name, person in people.items():
        clients[name] = client.application.test_client()
        login(person, on=clients[name])
        subscribe(clients[name])
    crew = make_person("crew", station=station, language="en")
    login(crew)
    subscribe(client)
    ident = uuid.uuid4()
    first = sync(client, record(ident, location=location(*CENTRE)))["results"][0]
    assert first["incident"]["post_id"] == posts["near"].id
    return {"id": ident, "crew": crew, "people": people, "clients": clients}


def pushes(incident_id, person):
    return list(db.session.scalars(select(PushOutbox.kind).where(
        PushOutbox.incident_id == incident_id, PushOutbox.person_id == person.id)
        .order_by(PushOutbox.id)))


def test_a_destination_named_later_moves_the_alert_to_that_hospitals_post(
        client, posts, reroute_world):
    w, ident = reroute_world, reroute_world["id"]
    second = sync(client, record(ident, revision=2, location=location(*CENTRE),
                                 destination_post_id=posts["far"].id))["results"][0]
    assert second["incident"]["post_id"] == posts["far"].id
    db.session.expire_all()
    incident, alert = db.session.get(Incident, ident), db.session.get(PoliceAlert, ident)
    assert (incident.post_id, incident.status) == (posts["far"].id, "routed")
    assert (alert.post_id, alert.reason) == (posts["far"].id, "destination_hospital")
    kinds = [e.kind for e in incident.events]
    assert kinds == ["created", "routed", "revised", "rerouted"]
    moved = incident.events[-1].changes
    assert moved["post_id"] == [posts["near"].id, posts["far"].id]
    assert moved["route_reason"] == ["nearest_in_region", "destination_hospital"]
    # The new post is alerted; the first post is told it went elsewhere; so is the crew.
    assert pushes(ident, w["people"]["far"]) == ["police.alert"]
    assert pushes(ident, w["people"]["near"]) == ["police.alert", "police.rerouted"]
    assert pushes(ident, w["crew"]) == ["incident.received", "incident.rerouted"]
    # Each post's screen shows what is now theirs.
    far_list = w["clients"]["far"].get("/api/v1/police/incidents").get_json()["items"]
    assert [i["id"] for i in far_list] == [str(ident)]
    assert w["clients"]["near"].get(f"/api/v1/police/incidents/{ident}").status_code == 404


def test_an_acknowledged_case_stays_with_the_post_that_took_it(client, posts, reroute_world):
    w, ident = reroute_world, reroute_world["id"]
    taken = w["clients"]["near"].post(f"/api/v1/police/incidents/{ident}/acknowledge")
    assert taken.status_code == 200
    sync(client, record(ident, revision=2, location=location(*CENTRE),
                        destination_post_id=posts["far"].id))
    db.session.expire_all()
    incident = db.session.get(Incident, ident)
    assert incident.post_id == posts["near"].id and incident.destination_post_id == posts["far"].id
    assert "rerouted" not in [e.kind for e in incident.events]
    assert pushes(ident, w["people"]["far"]) == []


def test_the_same_destination_again_changes_nothing(client, posts, reroute_world):
    w, ident = reroute_world, reroute_world["id"]
    for revision in (2, 3):
        sync(client, record(ident, revision=revision, location=location(*CENTRE),
                            destination_post_id=posts["far"].id,
                            note=f"revision {revision}"))
    db.session.expire_all()
    kinds = [e.kind for e in db.session.get(Incident, ident).events]
    assert kinds.count("rerouted") == 1
    assert pushes(ident, w["people"]["far"]) == ["police.alert"]
