"""The SOS API (api/sos): an SOS synced like any incident opens a live alarm; the
police alert is Urgency high with the SOS's short TTL and the managers are told;
fixes are checked and land in order; "on the way" reaches the crew's status and
stream; the own PIN ends it, the duress PIN answers the same and keeps it open
marked duress; wrong PINs are counted and then refused; scope: another station's
crew, another post's officer and another station's manager get 404. Runs on
SQLite and on PostgreSQL."""

import hashlib
import json
import uuid

import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.push.models import PushOutbox
from api.sos.models import SosAlarm
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

pytest_plugins = ["tests.push_service"]

BASE = "/api/v1/sos"
SALT = "00112233445566778899aabbccddeeff"


def key(pin: str, salt: str = SALT) -> str:
    """The phone's derivation (pwa/js/sos_pin.js): PBKDF2-SHA256, 100 000 rounds."""
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), 100_000).hex()


@pytest.fixture
def world(push_app, client, login, subscribe):
    post_a = make_post(region="75", name="Post A")
    post_b = make_post(region="75", name="Post B")
    station = make_station(region="75", default_post=post_a)
    other_station = make_station(region="75", default_post=post_a)
    w = {
        "post_a": post_a, "station": station,
        "crew": make_person("crew", station=station, language="en", name="Aigerim"),
        "other_crew": make_person("crew", station=other_station),
        "manager": make_person("manager", station=station),
        "other_manager": make_person("manager", station=other_station),
        "officer_a": make_person("police", post=post_a, language="en", name="Lt. Serikbayev"),
        "officer_b": make_person("police", post=post_b),
    }
    w["clients"] = {}
    for name in ("crew", "other_crew", "manager", "other_manager", "officer_a", "officer_b"):
        c = client.application.test_client()
        login(w[name], on=c)
        w["clients"][name] = c
        subscribe(c)
    return w


def open_sos(world, **fields) -> str:
    rec = record(sos=True, location={"lat": 43.25, "lon": 76.9, "accuracy_m": 15,
                                     "source": "gps"}, **fields)
    res = sync(world["clients"]["crew"], rec)["results"][0]
    assert res["status"] == "created", res
    return res["incident"]["id"]


def set_pins(world, pin="2468", duress="1357"):
    res = world["clients"]["crew"].put(f"{BASE}/pins", json={
        "salt": SALT, "pin_key": key(pin), "duress_key": key(duress)})
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def fix(lat, lon, at="2026-06-01T09:31:00+05:00", accuracy=10.0):
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy, "fixed_at": at}


def test_an_sos_opens_an_alarm_and_alerts_post_and_managers_at_once(world):
    ident = open_sos(world)
    incident = db.session.get(Incident, uuid.UUID(ident))
    assert incident.sos and incident.police_needed  # always police-needed-now
    alarm = db.session.get(SosAlarm, incident.id)
    assert alarm.state == "open" and alarm.fixes == 1 and alarm.last_lat == 43.25
    rows = db.session.scalars(select(PushOutbox).where(
        PushOutbox.incident_id == incident.id).order_by(PushOutbox.id)).all()
    by_person = {(r.person_id, r.kind): r for r in rows}
    alert = by_person[(world["officer_a"].id, "police.alert")]
    assert alert.urgency == "high" and alert.ttl == 300
    assert alert.payload["title"].startswith("SOS:")
    manager = by_person[(world["manager"].id, "sos.alarm")]
    assert manager.urgency == "high" and manager.ttl == 300
    assert (world["other_manager"].id, "sos.alarm") not in by_person
    assert (world["officer_b"].id, "police.alert") not in by_person


def test_an_sos_replayed_after_a_lost_response_is_one_incident_one_alarm(world):
    rec = record(sos=True)
    first = sync(world["clients"]["crew"], rec)["results"][0]
    again = sync(world["clients"]["crew"], rec)["results"][0]
    assert (first["status"], again["status"]) == ("created", "unchanged")
    assert db.session.query(SosAlarm).count() == 1
    assert db.session.query(Incident).count() == 1
    alerts = db.session.scalars(select(PushOutbox).where(
        PushOutbox.kind == "police.alert")).all()
    assert len(alerts) == 1
    # Whether it is an SOS is fixed at creation.
    later = sync(world["clients"]["crew"], {**rec, "revision": 2, "sos": False})["results"][0]
    assert later["status"] == "rejected" and later["errors"][0]["field"] == "sos"


def test_fixes_are_validated_and_kept_in_order(world):
    ident = open_sos(world)
    crew = world["clients"]["crew"]
    for bad, field in [({**fix(91, 76)}, "lat"), ({**fix(43, 181)}, "lon"),
                       ({**fix(43, 76), "accuracy_m": -1}, "accuracy_m"),
                       ({**fix(43, 76), "lat": "NaN"}, "lat"),
                       ({**fix(43, 76), "fixed_at": "yesterday"}, "fixed_at"),
                       ({**fix(43, 76), "fixed_at": "2099-01-01T00:00:00+00:00"}, "fixed_at")]:
        res = crew.post(f"{BASE}/{ident}/fixes", json=bad)
        assert res.status_code == 422, (bad, res.get_json())
        assert res.mimetype == "application/problem+json"
        assert field in [e["field"] for e in res.get_json()["errors"]]
    for n, (lat, at) in enumerate([(43.26, "09:31:00"), (43.27, "09:31:10"),
                                   (43.28, "09:31:20")]):
        res = crew.post(f"{BASE}/{ident}/fixes", json=fix(lat, 76.91 + n / 100,
                                                           f"2026-06-01T{at}+05:00"))
        assert res.status_code == 200 and res.get_json() == {"track": True}
    # A late fix from before the newest does not replace it, but joins the trail.
    crew.post(f"{BASE}/{ident}/fixes", json=fix(43.2, 76.9, "2026-06-01T09:30:50+05:00"))
    body = world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()
    assert body["fix"]["lat"] == 43.28 and body["fix"]["accuracy_m"] == 10.0
    assert [f["lat"] for f in body["trail"]] == [43.26, 43.27, 43.28, 43.2]
    assert body["fixes"] == 5 and body["open"] is True and body["duress"] is False


def test_scope_another_station_post_or_manager_gets_404(world):
    ident = open_sos(world)
    c = world["clients"]
    assert c["other_crew"].get(f"{BASE}/{ident}/status").status_code == 404
    assert c["other_crew"].post(f"{BASE}/{ident}/fixes", json=fix(43, 76)).status_code == 404
    assert c["other_crew"].get(f"{BASE}/{ident}/stream").status_code == 404
    assert c["officer_b"].get(f"{BASE}/{ident}").status_code == 404
    assert c["officer_b"].post(f"{BASE}/{ident}/on-the-way", json={}).status_code == 404
    assert c["other_manager"].get(f"{BASE}/{ident}").status_code == 404
    assert c["manager"].get(f"{BASE}/{ident}").status_code == 200
    # Roles: the crew's endpoints are not the police's, and the other way round.
    assert c["officer_a"].get(f"{BASE}/{ident}/status").status_code == 403
    assert c["crew"].get(f"{BASE}/{ident}").status_code == 403
    assert c["manager"].post(f"{BASE}/{ident}/on-the-way", json={}).status_code == 403
    # An incident that is not an SOS has no alarm.
    plain = sync(c["crew"], record())["results"][0]["incident"]["id"]
    assert c["crew"].get(f"{BASE}/{plain}/status").status_code == 404
    assert c["officer_a"].get(f"{BASE}/{plain}").status_code == 404


def test_each_step_reaches_the_crew_status(world):
    ident = open_sos(world)
    crew, officer = world["clients"]["crew"], world["clients"]["officer_a"]
    body = crew.get(f"{BASE}/{ident}/status").get_json()
    assert body["status"] == "open" and body["post"] == "Post A"
    assert body["taken"] is None and body["on_the_way"] is None
    for bad in ({"eta_minutes": 0}, {"eta_minutes": 1.5}, {"eta_minutes": "7"}):
        res = officer.post(f"{BASE}/{ident}/on-the-way", json=bad)
        assert res.status_code == 422 and res.get_json()["errors"][0]["field"] == "eta_minutes"
    res = officer.post(f"{BASE}/{ident}/on-the-way", json={"eta_minutes": 7})
    assert res.status_code == 200, res.get_json()
    body = crew.get(f"{BASE}/{ident}/status").get_json()
    assert body["taken"]["officer"] == "Lt. Serikbayev" and body["taken"]["post"] == "Post A"
    assert body["on_the_way"]["eta_minutes"] == 7
    kinds = [e.kind for e in db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == uuid.UUID(ident)).order_by(IncidentEvent.id))]
    assert kinds[-2:] == ["acknowledged", "sos_on_the_way"]
    told = db.session.scalars(select(PushOutbox).where(
        PushOutbox.person_id == world["crew"].id, PushOutbox.kind == "sos.on_the_way")).all()
    assert told and "about 7 min" in told[0].payload["body"]


def test_the_stream_sends_the_status_as_server_sent_events(world):
    world["clients"]["crew"].application.config["SOS_STREAM_SECONDS"] = 0
    ident = open_sos(world)
    res = world["clients"]["crew"].get(f"{BASE}/{ident}/stream")
    assert res.status_code == 200 and res.mimetype == "text/event-stream"
    text = res.get_data(as_text=True)
    data = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(data[0])["status"] == "open"
    assert text.rstrip().endswith("event: end\ndata: {}")  # the phone reconnects at once


def test_streams_over_the_limit_get_the_status_and_busy_and_a_slot_comes_back(world):
    crew = world["clients"]["crew"]
    config = crew.application.config
    config["SOS_STREAM_SECONDS"] = 0
    ident = open_sos(world)
    config["SOS_MAX_STREAMS"] = 0  # every thread taken: no stream, but the status now
    text = crew.get(f"{BASE}/{ident}/stream").get_data(as_text=True)
    events = [line for line in text.splitlines() if line.startswith("event: ")]
    assert events == ["event: sos", "event: busy"]
    data = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert json.loads(data[0])["status"] == "open"
    assert json.loads(data[1]) == {"retry_after": 2}
    config["SOS_MAX_STREAMS"] = 1  # a finished stream gives its slot back
    for _ in range(3):
        text = crew.get(f"{BASE}/{ident}/stream").get_data(as_text=True)
        assert "event: busy" not in text and text.rstrip().endswith("event: end\ndata: {}")


def test_pins_are_not_stored_in_clear_and_the_phone_can_check_them(world):
    assert world["clients"]["crew"].get(f"{BASE}/pins").get_json()["set"] is False
    body = set_pins(world)
    assert body["set"] is True and body["salt"] == SALT
    expected = sorted(hashlib.sha256(bytes.fromhex(key(p))).hexdigest() for p in ("2468", "1357"))
    assert body["verifiers"] == expected
    from api.sos.models import SosPin

    row = db.session.get(SosPin, world["crew"].id)
    # Slow salted hashes of the keys; the verifiers are not the keys either (and a
    # PIN never reaches the server at all: only keys derived on the phone).
    assert row.pin_hash.startswith("scrypt:") and row.duress_hash.startswith("scrypt:")
    for secret in (key("2468"), key("1357")):
        assert secret not in (row.pin_hash + row.duress_hash + json.dumps(row.verifiers))
    same = world["clients"]["crew"].put(f"{BASE}/pins", json={
        "salt": SALT, "pin_key": key("1111"), "duress_key": key("1111")})
    assert same.status_code == 422 and same.get_json()["errors"][0]["field"] == "duress_key"
    bad = world["clients"]["crew"].put(f"{BASE}/pins", json={"salt": "x", "pin_key": "1234"})
    assert {e["field"] for e in bad.get_json()["errors"]} == {"salt", "pin_key", "duress_key"}


def test_own_pin_stands_down(world):
    set_pins(world)
    ident = open_sos(world)
    crew = world["clients"]["crew"]
    res = crew.post(f"{BASE}/{ident}/stand-down", json={"key": key("2468")})
    assert res.status_code == 200 and res.get_json() == {"status": "cancelled"}
    assert crew.get(f"{BASE}/{ident}/status").get_json()["status"] == "cancelled"
    police = world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()
    assert police["open"] is False and police["duress"] is False
    assert crew.post(f"{BASE}/{ident}/fixes", json=fix(43, 76)).get_json() == {"track": False}
    assert world["clients"]["officer_a"].post(
        f"{BASE}/{ident}/on-the-way", json={}).status_code == 409


def test_duress_pin_looks_like_a_cancel_and_keeps_the_alarm_open(world):
    set_pins(world)
    ident = open_sos(world)
    crew = world["clients"]["crew"]
    res = crew.post(f"{BASE}/{ident}/stand-down", json={"key": key("1357")})
    assert res.status_code == 200 and res.get_json() == {"status": "cancelled"}
    assert crew.get(f"{BASE}/{ident}/status").get_json()["status"] == "cancelled"
    # The police see it open and marked duress; fixes keep coming.
    police = world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()
    assert police["open"] is True and police["duress"] is True
    assert crew.post(f"{BASE}/{ident}/fixes", json=fix(43.3, 76.9)).get_json() == {"track": True}
    duress_pushes = db.session.scalars(select(PushOutbox).where(
        PushOutbox.kind == "sos.state")).all()
    assert {r.person_id for r in duress_pushes} == {world["officer_a"].id, world["manager"].id}
    assert all(r.urgency == "high" for r in duress_pushes)
    assert all(r.person_id != world["crew"].id for r in db.session.scalars(
        select(PushOutbox).where(PushOutbox.kind == "sos.state")))
    # The phone's own reading of the incident does not show the duress event.
    events = crew.get(f"/api/v1/incidents/{ident}").get_json()["events"]
    assert "sos_duress" not in [e["kind"] for e in events]
    officer_events = world["clients"]["manager"].get(f"/api/v1/incidents/{ident}").get_json()
    assert "sos_duress" in [e["kind"] for e in officer_events["events"]]
    # The own PIN afterwards does not end it either (they may be made to enter both).
    crew.post(f"{BASE}/{ident}/stand-down", json={"key": key("2468")})
    assert world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()["open"] is True


def test_wrong_pins_never_stand_down_and_are_then_refused(world):
    set_pins(world)
    ident = open_sos(world)
    crew = world["clients"]["crew"]
    crew.application.config["SOS_MAX_WRONG_PINS"] = 3
    for _ in range(3):
        res = crew.post(f"{BASE}/{ident}/stand-down", json={"key": key("0000")})
        assert res.status_code == 422 and res.get_json()["errors"][0]["field"] == "key"
    locked = crew.post(f"{BASE}/{ident}/stand-down", json={"key": key("2468")})
    assert locked.status_code == 429
    assert world["clients"]["officer_a"].get(f"{BASE}/{ident}").get_json()["open"] is True
    no_pin = world["clients"]["other_crew"]
    assert no_pin.post(f"{BASE}/{ident}/stand-down", json={"key": key("2468")}).status_code \
        == 404


def test_an_sos_whose_sms_arrived_first_becomes_an_sos_at_its_sync(world):
    """Issue 17's SMS creates the incident without saying SOS (its format has no room);
    the phone's own sync of the same record then makes it one, with its alarm."""
    rec = record(police_needed=True, kind="unspecified")
    first = sync(world["clients"]["crew"], rec)["results"][0]  # as api.sms stores it
    assert first["status"] == "created"
    ident = uuid.UUID(first["incident"]["id"])
    assert db.session.get(SosAlarm, ident) is None
    again = sync(world["clients"]["crew"], {**rec, "sos": True})["results"][0]
    assert again["status"] in ("unchanged", "updated"), again
    incident = db.session.get(Incident, ident)
    assert incident.sos and db.session.get(SosAlarm, ident).state == "open"
    assert db.session.query(Incident).count() == 1
    kinds = [e.kind for e in db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == ident).order_by(IncidentEvent.id))]
    assert kinds.count("sos_raised") == 1
    managers = db.session.scalars(select(PushOutbox).where(
        PushOutbox.person_id == world["manager"].id, PushOutbox.kind == "sos.alarm")).all()
    assert len(managers) == 1
    # Sent again: nothing more; and it can never go back to an ordinary incident.
    sync(world["clients"]["crew"], {**rec, "sos": True})
    assert db.session.query(SosAlarm).count() == 1
    back = sync(world["clients"]["crew"], {**rec, "revision": 2, "sos": False})["results"][0]
    assert back["status"] == "rejected" and back["errors"][0]["field"] == "sos"
