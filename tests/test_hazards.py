"""Hazard flags through the API: who may raise, renew and withdraw; who sees which
flags; the access log; the reporter's push; the rate-limited look-up."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.access_log import AccessLog
from api.db import utcnow
from api.extensions import db
from api.hazards.models import HazardFlag
from api.hazards.service import add_months
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

pytest_plugins = ["tests.push_service"]

BASE = "/api/v1/hazards"
FLAG = {"address": "г. Алматы, ул. Абая, д. 10, кв. 5", "lat": 43.2389, "lon": 76.8897,
        "reason": "weapon"}


@pytest.fixture
def world(push_app, client, login):
    """Region 75: stations A and B, each with a crew member and a manager, and a post;
    region 71: a crew member and a post."""
    station_a = make_station(region="75")
    station_b = make_station(region="75")
    station_c = make_station(region="71")
    w = {
        "crew": make_person("crew", station=station_a, language="en"),
        "crew_b": make_person("crew", station=station_b),
        "crew_other_region": make_person("crew", station=station_c),
        "manager": make_person("manager", station=station_a),
        "manager_b": make_person("manager", station=station_b),
        "police": make_person("police", post=make_post(region="75")),
        "police_other_region": make_person("police", post=make_post(region="71")),
        "admin": make_person("admin"),
    }
    w["clients"] = {}
    for name in [k for k in w if k != "clients"]:
        c = client.application.test_client()
        login(w[name], on=c)
        w["clients"][name] = c
    w["incident"] = sync(w["clients"]["crew"], record())["results"][0]["incident"]["id"]
    return w


def raise_flag(world, who="manager", **fields):
    return world["clients"][who].post(BASE, json={"incident_id": world["incident"], **FLAG,
                                                   **fields})


def region(world, who):
    response = world["clients"][who].get(f"{BASE}/region")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_raised_flag_reaches_its_regions_crews_and_post_and_no_one_else(world):
    response = raise_flag(world)
    assert response.status_code == 201, response.get_json()
    flag = response.get_json()
    assert flag["radius_m"] == 50 and flag["reason"] == "weapon" and flag["live"]
    assert flag["address_key"] == "абай 10"  # the building: the flat is not part of it
    raised = utcnow()
    expires = add_months(raised, 12)
    assert abs(datetime_of(flag["expires_at"]) - expires) < timedelta(minutes=1)

    for who in ("crew", "crew_b"):  # the whole region's crews, not only the station's
        body = region(world, who)
        assert body["region"] == "KZ-75"
        [item] = body["items"]
        # Where, why, until when: nothing about the incident or who reported it.
        assert set(item) == {"id", "address_key", "lat", "lon", "radius_m", "reason",
                             "raised_at", "expires_at"}
        assert item["address_key"] == "абай 10" and item["radius_m"] == 50
    [post_item] = region(world, "police")["items"]
    assert post_item["address"] == FLAG["address"]
    assert "incident_id" not in post_item
    assert region(world, "crew_other_region")["items"] == []
    assert region(world, "police_other_region")["items"] == []
    for who in ("manager", "admin"):
        assert world["clients"][who].get(f"{BASE}/region").status_code == 403


def datetime_of(text):
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_no_endpoint_lists_all_flags(world, app):
    raise_flag(world)
    rules = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(BASE)]
    assert sorted(rules) == sorted([BASE, f"{BASE}/incident/<uuid:incident_id>",
                                    f"{BASE}/<uuid:flag_id>/renew",
                                    f"{BASE}/<uuid:flag_id>/withdraw", f"{BASE}/region",
                                    f"{BASE}/lookup"])
    for who in world["clients"]:
        assert world["clients"][who].get(BASE).status_code == 405


def test_only_the_incidents_station_manager_may_raise(world):
    assert raise_flag(world, "crew").status_code == 403
    assert raise_flag(world, "police").status_code == 403
    response = raise_flag(world, "manager_b")  # another station's manager
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert world["clients"]["manager"].post(BASE, json={**FLAG, "incident_id": str(
        uuid.uuid4())}).status_code == 404
    assert db.session.scalar(select(HazardFlag)) is None


@pytest.mark.parametrize("field,value", [
    ("reason", "drunk neighbour"), ("radius_m", 5000), ("lat", 123.0), ("address", "Абая"),
    ("address", "x" * 201), ("months", 0), ("address", "ул. Абая\x00 10"),
])
def test_bad_input_is_a_422_naming_the_field(world, field, value):
    response = raise_flag(world, **{field: value})
    assert response.status_code == 422
    body = response.get_json()
    assert body["type"].endswith("/validation")
    assert [e["field"] for e in body["errors"]] == [field]


def test_there_is_no_free_text_to_carry_a_name(world):
    response = raise_flag(world, note="Иванов, шизофрения")
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["note"]


def test_raise_renew_withdraw_are_in_the_access_log(world):
    flag = raise_flag(world).get_json()
    manager = world["clients"]["manager"]
    renewed = manager.post(f"{BASE}/{flag['id']}/renew", json={"months": 6}).get_json()
    assert renewed["renewed_at"] is not None
    assert abs(datetime_of(renewed["expires_at"]) - add_months(utcnow(), 6)) < \
        timedelta(minutes=1)
    assert manager.post(f"{BASE}/{flag['id']}/withdraw").get_json()["live"] is False
    assert manager.post(f"{BASE}/{flag['id']}/withdraw").status_code == 200  # no new entry
    entries = db.session.scalars(select(AccessLog).order_by(AccessLog.id)).all()
    assert [e.via for e in entries] == [f"hazard.{a}:{flag['id']}"
                                        for a in ("raise", "renew", "withdraw")]
    assert {e.person_id for e in entries} == {world["manager"].id}
    assert {str(e.incident_id) for e in entries} == {world["incident"]}
    # The administrator reads them in the access log.
    log = world["clients"]["admin"].get("/api/v1/review/access-log").get_json()["items"]
    assert len(log) == 3
    # Withdrawn: gone from phones at their next download, and cannot be renewed.
    assert region(world, "crew")["items"] == []
    assert manager.post(f"{BASE}/{flag['id']}/renew").status_code == 409
    # Another station's manager cannot touch it.
    other = world["clients"]["manager_b"]
    assert other.post(f"{BASE}/{flag['id']}/withdraw").status_code == 404
    assert other.get(f"{BASE}/incident/{world['incident']}").status_code == 404
    listed = manager.get(f"{BASE}/incident/{world['incident']}").get_json()["items"]
    assert [f["id"] for f in listed] == [flag["id"]]


def test_an_expired_flag_is_no_longer_sent(world):
    flag = raise_flag(world).get_json()
    assert len(region(world, "crew")["items"]) == 1
    row = db.session.get(HazardFlag, uuid.UUID(flag["id"]))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert region(world, "crew")["items"] == []
    lookup = world["clients"]["crew"].get(f"{BASE}/lookup", query_string={
        "address": "Абая 10"}).get_json()
    assert lookup == {"address_key": "абай 10", "items": []}


def test_the_reporter_is_told_in_their_language(world, push_service, subscribe, worker):
    sub = subscribe(world["clients"]["crew"])
    raise_flag(world)
    worker.tick()
    [push] = push_service.delivered(sub)
    assert push.payload["type"] == "hazard_raised"
    assert push.payload["title"].startswith("Address flagged: case QG-")
    assert "(weapon)" in push.payload["body"] and "ask for police" in push.payload["body"]
    assert "Абая" not in push.payload["body"]  # the address itself never travels in a push


@pytest.mark.parametrize("lang,words", [("ru", "Адрес отмечен"), ("kk", "қауіпті деп")])
def test_the_push_reads_in_russian_and_kazakh(world, push_service, subscribe, worker, lang,
                                              words):
    world["crew"].language = lang
    db.session.commit()
    sub = subscribe(world["clients"]["crew"])
    raise_flag(world)
    worker.tick()
    [push] = push_service.delivered(sub)
    assert words in push.payload["title"]


def test_lookup_one_address_in_the_callers_region(world):
    raise_flag(world)
    crew = world["clients"]["crew_b"]
    found = crew.get(f"{BASE}/lookup", query_string={"address": "Aбaя 10 kв 7"}).get_json()
    assert found["address_key"] == "абай 10"
    assert [f["reason"] for f in found["items"]] == ["weapon"]
    assert crew.get(f"{BASE}/lookup", query_string={
        "address": "Абая 12"}).get_json()["items"] == []
    other = world["clients"]["crew_other_region"]
    assert other.get(f"{BASE}/lookup", query_string={
        "address": "Абая 10"}).get_json()["items"] == []
    missing = crew.get(f"{BASE}/lookup")
    assert missing.status_code == 422
    assert missing.get_json()["errors"][0]["field"] == "address"
    assert world["clients"]["manager"].get(f"{BASE}/lookup", query_string={
        "address": "Абая 10"}).status_code == 403


def test_lookup_is_rate_limited_per_session_with_a_problem(world, app):
    app.config["HAZARD_LOOKUP_LIMIT"] = [3, 60]
    crew = world["clients"]["crew"]
    for n in range(3):
        assert crew.get(f"{BASE}/lookup", query_string={"address": f"Абая {n}"}) \
            .status_code == 200
    response = crew.get(f"{BASE}/lookup", query_string={"address": "Абая 9"})
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"].endswith("/rate-limited")
    assert int(response.headers["Retry-After"]) >= 1
    # Another session (another phone) has its own allowance.
    assert world["clients"]["crew_b"].get(f"{BASE}/lookup", query_string={
        "address": "Абая 1"}).status_code == 200


def test_add_months_keeps_the_day_or_the_months_last():
    from datetime import UTC, datetime

    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 3, 7, tzinfo=UTC), 12) == datetime(2027, 3, 7, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 7, tzinfo=UTC), 2) == datetime(2027, 1, 7, tzinfo=UTC)
