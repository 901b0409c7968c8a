"""Reading incidents: scope (one rule, a matrix), keyset pages, detail, OpenAPI."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.extensions import db
from api.incidents.models import Incident, IncidentStatus
from api.incidents.records import append_event
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import (
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")

LIST = "/api/v1/incidents"


@pytest.fixture
def world(client, login):
    """Two stations, two crews, two managers, two police posts; one routed incident."""
    post_a, post_b = make_post(), make_post()
    station_a, station_b = make_station(), make_station()
    people = {
        "crew_a": make_person("crew", station=station_a),
        "crew_b": make_person("crew", station=station_b),
        "manager_a": make_person("manager", station=station_a),
        "manager_b": make_person("manager", station=station_b),
        "police_a": make_person("police", post=post_a),
        "police_b": make_person("police", post=post_b),
        "admin": make_person("admin"),
    }
    login(people["crew_a"])
    res = result(client, record(kind="threat"))
    incident = db.session.get(Incident, uuid.UUID(res["id"]))
    # Routing (issue 6) sets the post; here by hand, with its event.
    incident.post_id, incident.status = post_a.id, IncidentStatus.ROUTED
    append_event(incident, None, "routed", {"post_id": (None, post_a.id)})
    db.session.commit()
    return people, res["id"]


SEES = {"crew_a": True, "crew_b": False, "manager_a": True, "manager_b": False,
        "police_a": True, "police_b": False}


@pytest.mark.parametrize("who", sorted(SEES))
def test_scope_matrix(client, login, world, who):
    people, ident = world
    login(people[who])
    listed = [i["id"] for i in client.get(LIST).get_json()["items"]]
    one = client.get(f"{LIST}/{ident}")
    if SEES[who]:
        assert listed == [ident]
        assert one.status_code == 200 and one.get_json()["id"] == ident
    else:
        assert listed == []
        unknown = client.get(f"{LIST}/{uuid.uuid4()}")
        # Out of scope and unknown are indistinguishable.
        assert one.status_code == unknown.status_code == 404
        assert one.get_json() | {"instance": ""} == unknown.get_json() | {"instance": ""}


def test_admin_and_anonymous_cannot_read(app, client, login, world):
    people, ident = world
    assert app.test_client().get(LIST).status_code == 401
    login(people["admin"])
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}/{ident}").status_code == 403


def test_detail_has_events_and_classification(client, login, world):
    people, ident = world
    login(people["police_a"])
    body = client.get(f"{LIST}/{ident}").get_json()
    assert body["case_number"].startswith("QG-") and body["status"] == "routed"
    assert body["classification"]["part"] == 1
    assert body["tapped_at"] == "2026-06-01T09:30:00+05:00"
    assert [e["kind"] for e in body["events"]] == ["created", "routed"]
    assert body["events"][0]["actor"]["id"] == people["crew_a"].id
    assert body["events"][1]["actor"] is None
    assert body["events"][1]["changes"] == {"post_id": [None, body["post_id"]]}


def test_keyset_pages_newest_first(client, login):
    crew = make_person("crew")
    login(crew)
    base = datetime(2026, 5, 31, 20, 0, tzinfo=UTC)  # all before the frozen NOW
    ids = []
    for n in range(7):
        rec = record(tapped_at=(base + timedelta(hours=n)).isoformat())
        ids.append(result(client, rec)["id"])
    # Two on the same instant: the id breaks the tie, nothing is skipped or repeated.
    same = [result(client, record(tapped_at=base.isoformat()))["id"] for _ in range(2)]
    seen, cursor = [], None
    while True:
        url = f"{LIST}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9
    assert seen[:6] == list(reversed(ids[1:]))
    assert set(seen[6:]) == {ids[0], *same}
    assert seen[6:] == sorted(seen[6:], reverse=True)


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
    ("cursor=garbage", "cursor"), ("cursor=WyJ4IiwgInkiXQ", "cursor"),
])
def test_bad_list_parameters_are_422(client, login, query, field):
    login(make_person("crew"))
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == field


def test_manager_of_two_stations_sees_both(client, login):
    station_a, station_b = make_station(), make_station()
    for station in (station_a, station_b):
        login(make_person("crew", station=station))
        result(client, record())
    login(make_person("manager", stations=[station_a, station_b]))
    assert len(client.get(LIST).get_json()["items"]) == 2


def test_openapi_documents_the_incident_endpoints(client):
    doc = client.get("/api/openapi.json").get_json()
    sync = doc["paths"]["/api/v1/incidents/sync"]["post"]
    assert sync["x-roles"] == ["crew"]
    schemas = doc["components"]["schemas"]
    body = schemas["SyncRequest"]
    assert set(body["required"]) == {"device_id", "outbox_size", "sent_at", "records"}
    assert body["properties"]["records"]["maxItems"] == 100
    assert body["properties"]["records"]["items"] == {"$ref": "#/components/schemas/SyncRecord"}
    rec = schemas["SyncRecord"]["properties"]
    assert rec["note"]["maxLength"] == 2000
    assert "violence_dangerous" in rec["kind"]["enum"]
    # location may be null: OpenAPI 3.0 ignores siblings of $ref, hence the allOf.
    assert rec["location"] == {"allOf": [{"$ref": "#/components/schemas/Location"}],
                               "nullable": True}
    assert doc["paths"]["/api/v1/incidents/{incident_id}"]["get"]["responses"]["200"]
    params = {p["name"] for p in doc["paths"]["/api/v1/incidents"]["get"]["parameters"]}
    assert params == {"limit", "cursor"}
    assert "/api/v1/sync/devices" in doc["paths"]
    _ = make_post  # factories imported for the fixtures above
