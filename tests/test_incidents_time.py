"""When it happened, not only when it was tapped (issue 22).

The crew may state the incident's time (occurred_at) at the tap or in any
later revision; the tap's time stays as recorded. The classification follows
the stated time (the in-force date and the MCI year by the local date in
Almaty); a time too long before the tap waits for a manager of the station;
every change is an event in the incident's hash chain; and no field of a
revision is silently dropped.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.extensions import db
from api.incidents import sync as service
from api.incidents.models import Incident
from api.incidents.schemas import SyncRecordSchema
from api.ledger import service as ledger
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import (
    NOW,
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
    sync,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")

# The example: tapped at 00:30 on 7 March 2026 (the day the article came
# into force), the assault the evening before.
TAP = "2026-03-07T00:30:00+05:00"
EVENING_BEFORE = "2026-03-06T23:30:00+05:00"


@pytest.fixture
def station():
    return make_station()


@pytest.fixture
def crew(login, station):
    person = make_person("crew", station=station, position="feldsher", language="en")
    login(person)
    return person


def stored(ident) -> Incident:
    db.session.expire_all()
    return db.session.get(Incident, uuid.UUID(str(ident)))


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read(client, ident) -> dict:
    response = client.get(f"/api/v1/incidents/{ident}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def last_event(ident):
    return stored(ident).events[-1]


def chain_ok(ident) -> bool:
    return ledger.verify_all(uuid.UUID(str(ident))).ok


# --- The classification follows the stated time -------------------------------


def test_a_correction_moves_the_incident_out_of_force_and_keeps_the_tap(client, crew):
    rec = record(tapped_at=TAP, kind="threat")
    first = result(client, rec)
    assert first["incident"]["classification"]["part"] == 1

    res = result(client, {**rec, "revision": 2, "occurred_at": EVENING_BEFORE})
    assert res["status"] == "updated" and "pending" not in res
    assert instant(res["incident"]["occurred_at"]) == instant(EVENING_BEFORE)
    classification = res["incident"]["classification"]
    assert classification["status"] == "outside"
    assert classification["reason"]["code"] == "before_in_force"

    body = read(client, rec["id"])
    assert body["tapped_at"] == TAP  # recorded once, as the device wrote it
    assert instant(body["logged_at"]) == instant(TAP)
    assert instant(body["occurred_at"]) == instant(EVENING_BEFORE)
    assert body["occurred_at_pending"] is None
    # Who, from what, to what: an event in the incident's chain.
    event = last_event(rec["id"])
    assert event.kind == "revised" and event.actor_id == crew.id
    assert [instant(v) for v in event.changes["occurred_at"]] == [instant(TAP),
                                                                   instant(EVENING_BEFORE)]
    assert event.changes["in_force"] == [True, False]
    assert event.changes["classification"] == [{"status": "within", "part": 1},
                                               {"status": "outside", "part": None}]
    assert "mci_year" not in event.changes
    assert chain_ok(rec["id"])
    # The case number is the tap's and never changes.
    assert res["incident"]["case_number"] == first["incident"]["case_number"]


def test_a_correction_brings_the_incident_into_force(client, crew):
    # Stated at the tap as the evening before: outside; then corrected to after midnight.
    rec = record(tapped_at=TAP, kind="violence", occurred_at=EVENING_BEFORE)
    first = result(client, rec)
    assert first["status"] == "created"
    assert first["incident"]["classification"]["status"] == "outside"
    created = stored(rec["id"]).events[0]
    assert [instant(v) for v in created.changes["occurred_at"][1:]] == [instant(EVENING_BEFORE)]
    assert [instant(v) for v in created.changes["logged_at"][1:]] == [instant(TAP)]

    after_midnight = "2026-03-07T00:05:00+05:00"
    res = result(client, {**rec, "revision": 2, "occurred_at": after_midnight})
    assert res["status"] == "updated"
    assert (res["incident"]["classification"]["status"],
            res["incident"]["classification"]["part"]) == ("within", 3)
    event = last_event(rec["id"])
    assert event.changes["in_force"] == [False, True]
    assert event.changes["classification"] == [{"status": "outside", "part": None},
                                               {"status": "within", "part": 3}]
    assert chain_ok(rec["id"])


def test_a_correction_across_new_year_takes_that_years_mci(client, crew, frozen_clock):
    # Tapped 00:20 on 1 January 2027 (no MCI configured for 2027 yet), the
    # assault at 23:40 on 31 December 2026 (MCI 4,325 tenge), and back again.
    frozen_clock["value"] = datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    sent = "2027-01-01T10:00:00+05:00"
    rec = record(tapped_at="2027-01-01T00:20:00+05:00", kind="violence")
    first = result(client, rec, sent_at=sent)["incident"]["classification"]
    assert (first["part"], first["mci_year"], first["mci_kzt"]) == (3, 2027, None)
    assert [w["code"] for w in first["warnings"]] == ["mci_missing"]

    res = result(client, {**rec, "revision": 2, "occurred_at": "2026-12-31T23:40:00+05:00"},
                 sent_at=sent)
    c = res["incident"]["classification"]
    assert (c["status"], c["part"], c["mci_year"], c["mci_kzt"]) == ("within", 3, 2026, 4325)
    assert c["warnings"] == []
    fine = c["penalties"][0]
    assert (fine["min_kzt"], fine["max_kzt"]) == (500 * 4325, 1000 * 4325)
    assert last_event(rec["id"]).changes["mci_year"] == [2027, 2026]

    back = result(client, {**rec, "revision": 3, "occurred_at": "2027-01-01T00:10:00+05:00"},
                  sent_at=sent)["incident"]["classification"]
    assert (back["mci_year"], back["mci_kzt"]) == (2027, None)
    assert last_event(rec["id"]).changes["mci_year"] == [2026, 2027]
    assert chain_ok(rec["id"])


# --- Bounds -------------------------------------------------------------------


def test_a_stated_time_in_the_future_is_refused_for_that_record_only(client, crew):
    ahead = record(occurred_at=(NOW + timedelta(minutes=10)).isoformat())
    skewed = record(occurred_at=(NOW + timedelta(minutes=4)).isoformat())  # within tolerance
    body = sync(client, ahead, skewed)
    refused, kept = body["results"]
    assert refused["status"] == "rejected"
    assert refused["errors"] == [{"field": "occurred_at", "message": service.STATED_IN_FUTURE}]
    assert kept["status"] == "created"
    assert stored(ahead["id"]) is None


def test_a_correction_beyond_the_bound_waits_for_a_manager_of_the_station(
        client, crew, station, login, app):
    rec = record(tapped_at=TAP, kind="threat")
    result(client, rec)
    eight_days = "2026-02-27T12:00:00+05:00"
    res = result(client, {**rec, "revision": 2, "occurred_at": eight_days, "note": "later"})
    # The revision is stored (its note applied), its time is not: not "updated".
    assert res["status"] == "pending" and res["pending"] == ["occurred_at"]
    assert res["incident"]["revision"] == 2
    assert instant(res["incident"]["occurred_at"]) == instant(TAP)
    assert instant(res["incident"]["occurred_at_pending"]) == instant(eight_days)
    incident = stored(rec["id"])
    assert incident.note == "later" and incident.legal_part == 1
    event = incident.events[-1]
    assert event.kind == "revised"
    assert [None if v is None else instant(v) for v in event.changes["occurred_at_pending"]] \
        == [None, instant(eight_days)]
    assert "occurred_at" not in event.changes
    # Sending the same revision again changes nothing and says so.
    again = result(client, {**rec, "revision": 2, "occurred_at": eight_days, "note": "later"})
    assert again["status"] == "unchanged"

    url = f"/api/v1/review/incidents/{rec['id']}/time-correction"
    decision = {"decision": "confirm", "occurred_at": eight_days}
    # Role and scope: the crew member cannot confirm their own correction; a
    # manager of another station gets the same 404 as for an unknown incident.
    assert client.post(url, json=decision).status_code == 403
    other = client.application.test_client()
    login(make_person("manager", station=make_station()), on=other)
    assert other.post(url, json=decision).status_code == 404
    police = client.application.test_client()
    login(make_person("police"), on=police)
    assert police.post(url, json=decision).status_code == 403

    manager = make_person("manager", station=station, language="ru")
    desk = client.application.test_client()
    login(manager, on=desk)
    # A decision names the time the manager was shown.
    stale = desk.post(url, json={"decision": "confirm", "occurred_at": TAP})
    assert stale.status_code == 409
    assert stale.get_json()["errors"][0]["field"] == "occurred_at"
    bad = desk.post(url, json={"decision": "maybe", "occurred_at": eight_days})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "decision"

    detail = desk.get(f"/api/v1/review/incidents/{rec['id']}").get_json()
    assert instant(detail["occurred_at_pending"]) == instant(eight_days)
    confirmed = desk.post(url, json=decision)
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    assert instant(body["occurred_at"]) == instant(eight_days)
    assert body["occurred_at_pending"] is None
    assert instant(body["logged_at"]) == instant(TAP) and body["tapped_at"] == TAP
    assert body["legal_status"] == "outside"  # 27 February: before the article
    event = stored(rec["id"]).events[-1]
    assert event.kind == "time_confirmed" and event.actor_id == manager.id
    assert [instant(v) for v in event.changes["occurred_at"]] == [instant(TAP),
                                                                   instant(eight_days)]
    assert event.changes["in_force"] == [True, False]
    # The classification is the reporter's language, not the manager's.
    assert stored(rec["id"]).classification["lang"] == "en"
    assert desk.post(url, json=decision).status_code == 409  # nothing waits any more
    assert chain_ok(rec["id"])

    # The bound is a setting: with 30 days, the same correction needs nobody.
    app.config["STATED_TIME_MAX_DAYS_BEFORE_TAP"] = 30
    rec2 = record(tapped_at=TAP)
    result(client, rec2)
    res = result(client, {**rec2, "revision": 2, "occurred_at": eight_days})
    assert res["status"] == "updated" and "pending" not in res


def test_a_manager_may_reject_a_correction_and_the_crew_may_replace_it(
        client, crew, station, login):
    rec = record(tapped_at=TAP, kind="threat", occurred_at="2026-01-01T10:00:00+05:00")
    created = result(client, rec)
    # Stated too early at the tap itself: created, its time waiting.
    assert created["status"] == "created" and created["pending"] == ["occurred_at"]
    assert instant(created["incident"]["occurred_at"]) == instant(TAP)
    assert created["incident"]["classification"]["part"] == 1
    manager = make_person("manager", station=station)
    desk = client.application.test_client()
    login(manager, on=desk)
    url = f"/api/v1/review/incidents/{rec['id']}/time-correction"
    rejected = desk.post(url, json={"decision": "reject",
                                    "occurred_at": "2026-01-01T10:00:00+05:00"})
    assert rejected.status_code == 200
    assert rejected.get_json()["occurred_at_pending"] is None
    assert instant(rejected.get_json()["occurred_at"]) == instant(TAP)
    event = stored(rec["id"]).events[-1]
    assert event.kind == "time_rejected" and event.actor_id == manager.id

    # A pending time is replaced by a later revision within the bound.
    result(client, {**rec, "revision": 2, "occurred_at": "2026-01-01T10:00:00+05:00"})
    assert stored(rec["id"]).occurred_at_pending is not None
    res = result(client, {**rec, "revision": 3, "occurred_at": "2026-03-07T00:10:00+05:00"})
    assert res["status"] == "updated"
    incident = stored(rec["id"])
    assert incident.occurred_at_pending is None
    assert incident.occurred_at == instant("2026-03-07T00:10:00+05:00")
    assert incident.events[-1].changes["occurred_at_pending"][1] is None
    assert chain_ok(rec["id"])


# --- No revision is silently dropped ------------------------------------------


def test_a_revision_changing_the_taps_time_is_refused_while_the_batch_syncs(client, crew):
    rec = record(tapped_at=TAP, kind="threat", note="first")
    result(client, rec)
    moved = {**rec, "revision": 2, "tapped_at": "2026-03-06T23:30:00+05:00", "note": "second"}
    same_instant = {**rec, "revision": 2, "tapped_at": "2026-03-06T19:30:00+00:00"}
    fresh = record(kind="violence")
    body = sync(client, moved, fresh)
    refused, created = body["results"]
    assert refused["status"] == "rejected" and refused["id"] == rec["id"]
    assert refused["errors"] == [{"field": "tapped_at", "message": service.TAPPED_AT_FIXED}]
    assert "incident" not in refused
    assert created["status"] == "created"
    incident = stored(rec["id"])
    assert (incident.revision, incident.note, incident.legal_part) == (1, "first", 1)
    assert [e.kind for e in incident.events] == ["created"]
    # The same instant written with another offset is another record of the tap: refused too.
    again = result(client, same_instant)
    assert again["status"] == "rejected" and again["errors"][0]["field"] == "tapped_at"


# What each field of the sync record becomes in a revision: a new value and how
# to read it back from GET /incidents/<id>. Fields fixed at creation are refused.
def _walk_values(post_id: int) -> dict:
    return {
        "tapped_at": ("2026-06-01T08:00:00+05:00", None),
        # Created as an SOS (below); a revision may not make it an ordinary incident.
        "sos": (False, None),
        "occurred_at": ("2026-06-01T09:00:00+05:00",
                        lambda b: instant(b["occurred_at"]) == instant(
                            "2026-06-01T09:00:00+05:00")),
        "kind": ("violence", lambda b: b["kind"] == "violence"),
        "aggravating": (["group"], lambda b: b["aggravating"] == ["group"]),
        "victim_role": ("driver", lambda b: b["victim_role"] == "driver"),
        "on_duty": (False, lambda b: b["on_duty"] is False),
        "police_needed": (True, lambda b: b["police_needed"] is True),
        "location": ({"lat": 43.3, "lon": 76.95, "source": "gps"},
                     lambda b: (b["location"]["lat"], b["location"]["lon"]) == (43.3, 76.95)),
        "destination_post_id": (post_id, lambda b: b["destination_post_id"] == post_id),
        "note": ("changed", lambda b: b["note"] == "changed"),
    }


def test_every_field_of_a_revision_is_applied_or_refused_by_name(client, crew):
    post = make_post()
    values = _walk_values(post.id)
    fields = set(SyncRecordSchema().fields)
    # id is the identity (another id is another incident; someone else's is
    # refused, test_incidents_sync) and revision orders the revisions: every
    # other field must be walked here, so a new field cannot be dropped unseen.
    assert set(values) == fields - {"id", "revision"}
    assert set(service.FIXED) | set(service.MUTABLE) | {service.STATED} == set(values)
    for name, (value, applied) in values.items():
        rec = record(kind="threat", victim_role="feldsher", note="first",
                     **({"sos": True} if name == "sos" else {}))
        result(client, rec)
        res = result(client, {**rec, "revision": 2, name: value})
        if name in service.FIXED:
            assert res["status"] == "rejected", name
            assert [e["field"] for e in res["errors"]] == [name]
            assert stored(rec["id"]).revision == 1
        else:
            assert res["status"] == "updated", (name, res)
            assert applied(read(client, rec["id"])), name
            assert name in last_event(rec["id"]).changes, name
