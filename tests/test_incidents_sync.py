"""POST /api/v1/incidents/sync: created, updated, unchanged, rejected, per record."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.extensions import db
from api.incidents import records
from api.incidents import sync as sync_service
from api.incidents.models import Incident, IncidentEvent, IncidentStatus, SyncDevice
from tests.factories import make_person, make_post
from tests.incident_helpers import (
    NOW,
    URL,
    batch,
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
    sync,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")

PROBLEM = "application/problem+json"


@pytest.fixture
def crew(login):
    person = make_person("crew", position="nurse", language="en")
    login(person)
    return person


def count(model=Incident):
    return db.session.scalar(select(func.count()).select_from(model))


def test_first_sync_creates_with_case_number_and_classification(client, crew):
    rec = record(kind="violence", aggravating=["group"], note="hit by a relative",
                 location={"lat": 43.25, "lon": 76.95, "accuracy_m": 12.5,
                           "fixed_at": "2026-06-01T09:29:50+05:00", "source": "gps"})
    body = sync(client, rec)
    assert body["server_time"]
    res = body["results"][0]
    assert res["status"] == "created" and res["id"] == rec["id"]
    inc = res["incident"]
    assert inc["case_number"] == "QG-75-2026-000001"
    assert inc["revision"] == 1 and inc["status"] == "logged" and inc["post_id"] is None
    assert inc["classification"]["part"] == 4 and inc["classification"]["status"] == "within"
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.reporter_id == crew.id and stored.station_id == crew.station_id
    assert stored.reporter_position.value == "nurse" and stored.victim_role == "nurse"
    assert stored.tapped_offset_min == 300 and stored.device_time_flag is None
    assert stored.location["source"].value == "gps" and stored.accuracy_m == 12.5
    assert stored.legal_part == 4
    events = stored.events
    assert [e.kind for e in events] == ["created"]
    assert events[0].actor_id == crew.id
    assert events[0].changes["case_number"] == [None, "QG-75-2026-000001"]
    assert events[0].changes["kind"] == [None, "violence"]


def test_defaults_apply_on_creation(client, crew):
    res = result(client, record())
    stored = db.session.get(Incident, uuid.UUID(res["id"]))
    assert (stored.kind, stored.aggravating, stored.on_duty, stored.police_needed,
            stored.note, stored.location, stored.destination_post_id) == \
        ("unspecified", [], True, False, "", None, None)
    assert res["incident"]["classification"]["status"] == "pending"


def test_replay_is_unchanged_and_stores_nothing_new(client, crew):
    rec = record(kind="threat")
    first = result(client, rec)
    again = result(client, rec)
    assert again["status"] == "unchanged"
    assert again["incident"]["case_number"] == first["incident"]["case_number"]
    assert count() == 1 and count(IncidentEvent) == 1


def test_newer_revision_updates_and_keeps_what_it_does_not_mention(client, crew):
    post = make_post()
    rec = record(kind="threat", note="first", police_needed=True,
                 location={"lat": 43.2, "lon": 76.9, "source": "network"})
    first = result(client, rec)
    newer = {"id": rec["id"], "revision": 2, "tapped_at": rec["tapped_at"],
             "kind": "violence_dangerous", "destination_post_id": post.id}
    res = result(client, newer)
    assert res["status"] == "updated"
    assert res["incident"]["revision"] == 2
    assert res["incident"]["case_number"] == first["incident"]["case_number"]
    assert res["incident"]["classification"]["part"] == 5
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.note == "first" and stored.police_needed is True
    assert stored.lat == 43.2 and stored.destination_post_id == post.id
    assert stored.tapped_at_local.isoformat() == "2026-06-01T09:30:00+05:00"
    revised = stored.events[-1]
    assert revised.kind == "revised" and revised.revision == 2
    assert revised.changes["kind"] == ["threat", "violence_dangerous"]
    assert revised.changes["destination_post_id"] == [None, post.id]
    assert revised.changes["classification"] == [{"status": "within", "part": 1},
                                                 {"status": "within", "part": 5}]
    assert "note" not in revised.changes


def test_location_null_in_a_revision_removes_it(client, crew):
    rec = record(location={"lat": 43.2, "lon": 76.9, "source": "manual"})
    result(client, rec)
    assert result(client, {**rec, "revision": 2, "location": None})["status"] == "updated"
    assert db.session.get(Incident, uuid.UUID(rec["id"])).location is None


def test_older_revision_after_newer_changes_nothing(client, crew):
    rec = record(kind="threat", note="v1")
    result(client, rec)
    result(client, {**rec, "revision": 3, "note": "v3"})
    stale = result(client, {**rec, "revision": 2, "note": "v2", "kind": "other"})
    assert stale["status"] == "unchanged" and stale["incident"]["revision"] == 3
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert (stored.note, stored.kind, stored.revision) == ("v3", "threat", 3)
    assert [e.kind for e in stored.events] == ["created", "revised"]


def test_one_bad_record_never_rejects_the_others(client, crew):
    good1, good2 = record(), record(kind="threat")
    bad = record(kind="punch", revision=0, note="x" * 2001,
                 location={"lat": 91, "lon": 0, "source": "gps"})
    body = sync(client, good1, bad, "not an object", {"revision": 1}, good2)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created", "rejected", "rejected", "rejected", "created"]
    fields = {e["field"] for e in body["results"][1]["errors"]}
    assert fields == {"kind", "revision", "note", "location.lat"}
    assert body["results"][1]["id"] == bad["id"] and "incident" not in body["results"][1]
    assert body["results"][2]["errors"] == [{"field": "_record", "message": "Must be an object."}]
    assert body["results"][3]["id"] is None
    assert {e["field"] for e in body["results"][3]["errors"]} == {"id", "tapped_at"}
    assert count() == 2


@pytest.mark.parametrize("field,value", [
    ("tapped_at", "2026-06-01T09:30:00"),        # naive
    ("tapped_at", "yesterday"),
    ("id", "not-a-uuid"),
    ("revision", 1.5),
    ("revision", "2"),
    ("revision", 2**31),
    ("on_duty", "yes"),
    ("police_needed", 1),
    ("aggravating", ["group", "group"]),
    ("aggravating", ["weapon"]),
    ("victim_role", "janitor"),
    ("note", "a\x00b"),
    ("destination_post_id", "5"),
    ("location", {"lat": 1, "lon": float("nan"), "source": "gps"}),
    ("location", {"lat": 1, "lon": 2, "source": "satellite"}),
    ("location", {"lat": 1}),
    ("unknown_field", 1),
])
def test_bad_field_is_rejected_naming_it(client, crew, field, value):
    rec = record()
    rec[field] = value
    response = client.post(URL, data=_dumps(batch(rec)), content_type="application/json")
    assert response.status_code == 200
    res = response.get_json()["results"][0]
    assert res["status"] == "rejected"
    assert any(e["field"].split(".")[0] == field for e in res["errors"]), res
    assert count() == 0


def _dumps(body):
    import json
    return json.dumps(body, allow_nan=True)


def test_unknown_destination_post_is_rejected(client, crew):
    res = result(client, record(destination_post_id=999999))
    assert res["status"] == "rejected"
    assert res["errors"] == [{"field": "destination_post_id", "message": "Unknown police post."}]


def test_a_uuid_of_someone_else_is_refused_without_revealing_it(client, login, crew):
    rec = record(note="private")
    result(client, rec)
    other = make_person("crew", position="driver")
    login(other)
    res = result(client, {**rec, "revision": 5, "note": "overwrite"})
    assert res == {"id": rec["id"], "status": "rejected",
                   "errors": [{"field": "id", "message": sync_service.FOREIGN_ID}]}
    # The same answer for a replay of the exact record: nothing distinguishes them.
    assert result(client, rec) == res
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.note == "private" and stored.revision == 1 and stored.reporter_id == crew.id


def test_same_id_twice_in_a_batch_applies_in_order(client, crew):
    rec = record(note="one")
    body = sync(client, rec, {**rec, "revision": 2, "note": "two"}, rec)
    assert [r["status"] for r in body["results"]] == ["created", "updated", "unchanged"]
    assert db.session.get(Incident, uuid.UUID(rec["id"])).note == "two"


def test_future_device_time_is_flagged_and_corrected_by_the_skew(client, crew):
    now = NOW
    ahead = timedelta(days=2)  # the phone's clock runs two days fast
    tapped = (now + ahead - timedelta(minutes=10)).isoformat()
    res = result(client, record(tapped_at=tapped), sent_at=(now + ahead).isoformat())
    stored = db.session.get(Incident, uuid.UUID(res["id"]))
    assert stored.device_time_flag.value == "future"
    assert stored.clock_skew_s == pytest.approx(-ahead.total_seconds(), abs=5)
    # Believed: ten minutes before receipt, not two days in the future.
    assert abs((stored.occurred_at - (now - timedelta(minutes=10))).total_seconds()) < 5
    assert stored.tapped_at_local.isoformat() == tapped  # the device's time is kept
    assert stored.events[0].changes["device_time_flag"] == [None, "future"]


def test_wild_clock_falls_back_to_receipt_time(client, crew):
    res = result(client, record(tapped_at="9990-01-01T00:00:00+05:00"),
                 sent_at="1901-01-01T00:00:00+00:00")
    stored = db.session.get(Incident, uuid.UUID(res["id"]))
    assert stored.device_time_flag.value == "future"
    assert stored.occurred_at == stored.received_at


def test_plausible_past_tap_is_trusted(client, crew):
    tapped = (NOW - timedelta(days=3)).isoformat()
    res = result(client, record(tapped_at=tapped))
    stored = db.session.get(Incident, uuid.UUID(res["id"]))
    assert stored.device_time_flag is None and stored.occurred_at.isoformat() == tapped


def test_device_status_is_recorded_for_managers(client, crew, login):
    sync(client, record(), device_id="phone-A", outbox_size=7)
    sync(client, device_id="phone-A", outbox_size=3)  # an empty batch still reports
    device = db.session.get(SyncDevice, (crew.id, "phone-A"))
    assert device.outbox_size == 3 and device.last_batch_size == 0
    assert device.station_id == crew.station_id and device.app_version == "1.0.0"
    manager = make_person("manager", station=crew.station)
    login(manager)
    devices = client.get("/api/v1/sync/devices").get_json()["devices"]
    assert [(d["device_id"], d["outbox_size"], d["display_name"]) for d in devices] == \
        [("phone-A", 3, crew.display_name)]
    login(make_person("manager"))
    assert client.get("/api/v1/sync/devices").get_json()["devices"] == []


def test_only_crew_may_sync(client, login):
    assert client.post(URL, json=batch(record())).status_code == 401
    for role in ("manager", "police", "admin"):
        login(make_person(role))
        response = client.post(URL, json=batch(record()))
        assert response.status_code == 403 and response.mimetype == PROBLEM
    assert count() == 0


@pytest.mark.parametrize("body,field", [
    ({"outbox_size": 0, "sent_at": "2026-06-01T10:00:00Z", "records": []}, "device_id"),
    ({"device_id": "p", "outbox_size": -1, "sent_at": "2026-06-01T10:00:00Z",
      "records": []}, "outbox_size"),
    ({"device_id": "p", "outbox_size": 0, "sent_at": "2026-06-01T10:00:00",
      "records": []}, "sent_at"),
    ({"device_id": "p" * 65, "outbox_size": 0, "sent_at": "2026-06-01T10:00:00Z",
      "records": []}, "device_id"),
    ({"device_id": "p", "outbox_size": 0, "sent_at": "2026-06-01T10:00:00Z",
      "records": {"id": 1}}, "records"),
])
def test_whole_body_problems_are_422_naming_the_field(client, crew, body, field):
    response = client.post(URL, json=body)
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert field in {e["field"] for e in response.get_json()["errors"]}


def test_more_than_100_records_is_422(client, crew):
    response = client.post(URL, json=batch(*[record() for _ in range(101)]))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "records"
    assert count() == 0


def test_a_full_batch_of_100_long_notes_fits(client, crew):
    records = [record(note="Қ" * 2000) for _ in range(100)]
    body = sync(client, *records)
    assert {r["status"] for r in body["results"]} == {"created"}
    assert count() == 100
    numbers = sorted(r["incident"]["case_number"] for r in body["results"])
    assert numbers == [f"QG-75-2026-{n:06d}" for n in range(1, 101)]


def test_not_json_and_oversized_bodies_are_problems(client, crew):
    response = client.post(URL, data="records=1", content_type="text/plain")
    assert response.status_code == 415 and response.mimetype == PROBLEM
    response = client.post(URL, data='{"device_id": ', content_type="application/json")
    assert response.status_code == 400 and response.mimetype == PROBLEM
    response = client.post(URL, data="x" * (2 * 1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413 and response.mimetype == PROBLEM
    assert "2097152" in response.get_json()["detail"]


def test_law_misconfiguration_never_loses_the_record(client, crew, monkeypatch):
    from api.law import service as law

    def misconfigured(*args, **kwargs):
        raise law.LawConfigError("no range template for fine")

    monkeypatch.setattr(law, "classify", misconfigured)
    res = result(client, record(kind="threat"))
    assert res["status"] == "created" and res["incident"]["classification"] is None
    assert res["incident"]["case_number"].startswith("QG-75-2026-")


def test_a_year_without_an_mci_still_gets_its_part(client, crew, frozen_clock):
    # From 1 January until that year's MCI is added: the part and the penalties
    # in MCI only, with a warning in the reporter's language, never a zero.
    from api.law import service as law

    assert "2027" not in law.rules()["mci"]  # else this test no longer tests that
    frozen_clock["value"] = datetime(2027, 1, 1, 4, 0, tzinfo=UTC)  # 09:00 in Almaty
    res = result(client, record(kind="threat", tapped_at="2027-01-01T08:55:00+05:00"),
                 sent_at="2027-01-01T08:59:00+05:00")
    assert res["status"] == "created"
    assert res["incident"]["case_number"] == "QG-75-2027-000001"
    c = res["incident"]["classification"]
    assert (c["status"], c["part"], c["mci_year"], c["mci_kzt"]) == ("within", 1, 2027, None)
    assert c["warnings"] == [{
        "code": "mci_missing", "year": 2027,
        "text": "The MCI for 2027 is not yet configured in Qorgau: amounts are shown in MCI only."}]
    fine = c["penalties"][0]
    assert fine == {"type": "fine", "min_mci": 200, "max_mci": 500,
                    "text": "a fine of 200–500 MCI"}
    stored = db.session.get(Incident, uuid.UUID(res["id"]))
    assert (stored.legal_status, stored.legal_part) == ("within", 1)
    assert stored.classification == c


class Recorder:
    def __init__(self, post_id):
        self.post_id = post_id
        self.synced, self.events = [], []

    def on_incident_synced(self, incident):
        self.synced.append((incident.id, incident.case_number))
        # Routing, as push will do it: in the same transaction, with its own event.
        before = incident.post_id
        incident.post_id = self.post_id
        incident.status = IncidentStatus.ROUTED
        records.append_event(incident, None, "routed", {"post_id": (before, incident.post_id)})

    def on_incident_event(self, incident, event):
        self.events.append((incident.id, event.kind))


def test_hooks_run_in_the_sync_transaction(client, crew, monkeypatch):
    recorder = Recorder(make_post().id)
    monkeypatch.setattr(records, "incident_hooks", [])
    records.register_hook(recorder)
    rec = record()
    res = result(client, rec)
    ident = uuid.UUID(rec["id"])
    assert recorder.synced == [(ident, res["incident"]["case_number"])]
    assert (ident, "created") in recorder.events and (ident, "routed") in recorder.events
    assert res["incident"]["post_id"] is not None and res["incident"]["status"] == "routed"
    # A replay fires nothing; a revision fires its event.
    result(client, rec)
    result(client, {**rec, "revision": 2, "note": "more"})
    assert len(recorder.synced) == 1
    assert recorder.events[-1] == (ident, "revised")


def test_a_failing_hook_never_loses_the_record(client, crew, monkeypatch):
    class Broken:
        def on_incident_synced(self, incident):
            incident.note = "half-done write"
            raise RuntimeError("push is down")

    monkeypatch.setattr(records, "incident_hooks", [Broken()])
    res = result(client, record(note="kept"))
    assert res["status"] == "created"
    db.session.expire_all()
    assert db.session.get(Incident, uuid.UUID(res["id"])).note == "kept"


def test_events_are_append_only(client, crew):
    res = result(client, record())
    event = db.session.scalar(select(IncidentEvent))
    event.kind = "tampered"
    with pytest.raises(RuntimeError):
        db.session.flush()
    db.session.rollback()
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    # ...and in SQL, by the migration's trigger.
    with pytest.raises(DBAPIError), db.session.begin_nested():
        db.session.execute(text("UPDATE incident_events SET kind = 'x'"))
    with pytest.raises(DBAPIError), db.session.begin_nested():
        db.session.execute(text("DELETE FROM incident_events"))
    assert db.session.scalar(select(IncidentEvent.kind)) == "created"
    assert res["status"] == "created"


def test_append_event_records_who_when_what(client, crew):
    res = result(client, record())
    incident = db.session.get(Incident, uuid.UUID(res["id"]))
    officer = make_person("police")
    event = records.append_event(incident, officer, "erdr",
                                 {"erdr_number": (None, "261234567890123")})
    db.session.commit()
    assert event.id and event.actor_id == officer.id and event.at is not None
    assert event.changes == {"erdr_number": [None, "261234567890123"]}
    assert [e.kind for e in incident.events] == ["created", "erdr"]


# --- a conflicting replay: same id and revision, other content ------------------------------

def test_a_conflicting_replay_is_a_conflict_and_the_new_revision_keeps_both(client, crew):
    rec = record(note="first version", kind="threat")
    assert result(client, rec)["status"] == "created"
    # The same revision again with other content (e.g. the phone's database was
    # restored from a backup and the person wrote the note again).
    other = {**rec, "note": "second version", "police_needed": True}
    res = result(client, other)
    assert res["status"] == "conflict"
    assert res["problem"]["status"] == 409 and res["problem"]["type"].endswith("sync-conflict")
    assert res["problem"]["next_revision"] == 2
    assert sorted(e["field"] for e in res["errors"]) == ["note", "police_needed"]
    assert res["incident"]["revision"] == 1 and "receipt" not in res
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.note == "first version" and stored.revision == 1  # never overwritten
    # The app keeps its version as the next revision: the server keeps both.
    assert result(client, {**other, "revision": 2})["status"] == "updated"
    db.session.expire_all()
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.note == "second version" and stored.police_needed is True
    events = [(e.kind, e.revision, e.changes.get("note")) for e in stored.events]
    assert events == [("created", 1, [None, "first version"]),
                      ("revised", 2, ["first version", "second version"])]


def test_an_identical_replay_stays_unchanged(client, crew):
    rec = record(note="same", victim_role=None, location={
        "lat": 43.25, "lon": 76.95, "accuracy_m": 5, "fixed_at": "2026-06-01T09:29:50+05:00",
        "source": "gps"})
    assert result(client, rec)["status"] == "created"
    assert result(client, rec)["status"] == "unchanged"
    # The same instant written with another offset would change the stored local
    # time of the tap, which is fixed at creation: refused by name, not "unchanged".
    moved = result(client, {**rec, "tapped_at": "2026-06-01T04:30:00+00:00"})
    assert moved["status"] == "rejected"
    assert [e["field"] for e in moved["errors"]] == ["tapped_at"]
    assert result(client, {**rec, "location": {**rec["location"], "accuracy_m": 6}})[
        "status"] == "conflict"
