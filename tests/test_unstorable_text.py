"""Characters PostgreSQL cannot store (NUL, a lone UTF-16 surrogate) in any text
the API accepts: a 422 naming the field, never a 500; in a sync batch only the
record concerned is refused and the others are stored.

JSON's "\\ud83d" escape (half an emoji, as a string cut inside a surrogate pair
gives) parses in Python to a lone surrogate; psycopg cannot encode it. The
bodies here are sent as JSON text with that escape, exactly as a phone would.
Runs on SQLite and on PostgreSQL (QORGAU_TEST_DATABASE_URL).
"""

import inspect
import json
import uuid

import marshmallow
import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import Incident, SyncDevice
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import URL, batch, record

BROKEN = ["note a\ud83d", "\udc00tail", "mid\ud83d\u0301dle", "nul\x00"]


def send(client, method, path, body):
    # json.dumps writes a lone surrogate as its \\uXXXX escape (and NUL as \\u0000).
    return client.open(path, method=method, data=json.dumps(body),
                       content_type="application/json")


def fields_of(response) -> list[str]:
    assert response.status_code == 422, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    return [e["field"] for e in response.get_json()["errors"]]


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_note_refuses_only_its_record_and_the_batch_is_stored(client, login, text):
    login(make_person("crew"))
    good1, bad, good2 = record(note="before 🚑"), record(note=text), record(note="after")
    response = send(client, "POST", URL, batch(good1, bad, good2))
    assert response.status_code == 200, response.get_data()[:300]
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["id"] == bad["id"]
    assert [e["field"] for e in results[1]["errors"]] == ["note"]
    stored = set(db.session.scalars(select(Incident.id)))
    assert stored == {uuid.UUID(good1["id"]), uuid.UUID(good2["id"])}
    assert db.session.get(Incident, uuid.UUID(good1["id"])).note == "before 🚑"


def test_broken_text_anywhere_in_a_record_names_that_field(client, login):
    login(make_person("crew"))
    recs = [record(kind="viol\ud83dence"), record(aggravating=["group", "\ud83d"]),
            record(location={"lat": 1, "lon": 2, "source": "gps\x00"}),
            record(**{"extra\ud83d": 1})]
    results = send(client, "POST", URL, batch(*recs)).get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert [[e["field"] for e in r["errors"]] for r in results] == [
        ["kind"], ["aggravating.1"], ["location.source"], ["extra\ufffd"]]
    assert db.session.scalars(select(Incident.id)).first() is None


@pytest.mark.parametrize("field", ["device_id", "app_version"])
def test_broken_sync_device_fields_are_a_422_naming_them(client, login, field):
    login(make_person("crew"))
    body = batch(record())
    body[field] = "phone\ud83d"
    assert fields_of(send(client, "POST", URL, body)) == [field]
    assert db.session.scalars(select(SyncDevice.device_id)).first() is None


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_manager_note_is_a_422(app, client, login, text):
    station = make_station()
    crew = app.test_client()
    login(make_person("crew", station=station), on=crew)
    rec = record(note="kept")
    assert send(crew, "POST", URL, batch(rec)).status_code == 200
    login(make_person("manager", stations=[station]))
    path = f"/api/v1/review/incidents/{rec['id']}/note"
    assert fields_of(send(client, "PUT", path, {"note": text})) == ["note"]
    assert send(client, "PUT", path, {"note": "fine 🚑"}).status_code == 200


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_police_status_note_is_a_422(app, client, login, text):
    station = make_station(default_post=make_post())
    crew = app.test_client()
    login(make_person("crew", station=station), on=crew)
    rec = record(police_needed=True)
    assert send(crew, "POST", URL, batch(rec)).status_code == 200
    incident = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert incident.post is not None
    login(make_person("police", post=incident.post))
    path = f"/api/v1/police/incidents/{rec['id']}/status"
    assert fields_of(send(client, "POST", path, {"status": "closed", "note": text})) == ["note"]


def _subscription(endpoint="http://127.0.0.1:9/push/abc", device_id="tablet"):
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return {"endpoint": endpoint, "device_id": device_id,
            "keys": {"p256dh": b64(key), "auth": b64(b"0123456789abcdef")}}


@pytest.mark.parametrize("field", ["endpoint", "device_id", "keys.auth"])
@pytest.mark.parametrize("text", ["\ud83d", "\x00"])
def test_broken_push_subscription_fields_are_a_422(client, login, field, text):
    login(make_person("crew"))
    body = _subscription()
    if field == "keys.auth":
        body["keys"]["auth"] += text
    else:
        body[field] += text
    assert fields_of(send(client, "POST", "/api/v1/push/subscriptions", body)) == [field]


@pytest.mark.parametrize("endpoint", ["\x00", "\ud83d", "https://fcm.googleapis.com/\x00"])
def test_unsubscribing_a_broken_endpoint_is_a_422_not_a_500(client, login, endpoint):
    login(make_person("crew"))
    response = send(client, "DELETE", "/api/v1/push/subscriptions", {"endpoint": endpoint})
    assert fields_of(response) == ["endpoint"]


def test_a_broken_list_query_is_a_422(client, login):
    login(make_person("manager"))
    response = client.get("/api/v1/review/incidents?q=a%00b")
    assert fields_of(response) == ["q"]


def test_every_schema_of_the_api_refuses_unstorable_text():
    """Said once: every marshmallow schema in api/ derives from api.requests.Schema."""
    from api import create_app
    from api.requests import Schema

    create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})
    seen, todo = [], list(marshmallow.Schema.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("api.") and inspect.getmodule(cls) is not None:
            seen.append(cls)
    strays = [f"{c.__module__}.{c.__name__}" for c in seen if not issubclass(c, Schema)]
    assert len(seen) > 40 and strays == []
