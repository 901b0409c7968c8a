"""POST /api/v1/people: a station manager adds a crew member to one of their own
stations from the console (then invites them); everyone else is refused, and
a bad field is a problem+json naming it. Nothing is stored when refused."""

import pytest
from sqlalchemy import func, select

from api.extensions import db
from api.orgs.models import Person, Role
from tests.factories import make_person, make_post, make_station


@pytest.fixture
def world(app):
    mine, other = make_station(), make_station()
    manager = make_person("manager", stations=[mine])
    return {"mine": mine, "other": other, "manager": manager}


def people_count():
    return db.session.scalar(select(func.count()).select_from(Person))


def test_a_manager_adds_crew_to_their_station_and_invites_them(client, login, world):
    login(world["manager"])
    listed = client.get("/api/v1/people").get_json()
    assert listed["stations"] == [{"code": world["mine"].code, "name": world["mine"].name}]

    response = client.post("/api/v1/people", json={
        "display_name": "Асель Нурова", "position": "nurse", "station": world["mine"].code,
        "language": "kk"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["role"] == "crew" and body["station"] == world["mine"].code
    assert body["passkeys"] == 0 and body["active"] is True
    person = db.session.get(Person, body["id"])
    assert person.station_id == world["mine"].id and person.position.value == "nurse"
    assert person.language.value == "kk"
    # In the manager's list at once, and invitable through the existing flow.
    assert body["id"] in [p["id"] for p in client.get("/api/v1/people").get_json()["people"]]
    invited = client.post(f"/api/v1/people/{body['id']}/invitations", json={})
    assert invited.status_code == 201 and "/#/enrol/" in invited.get_json()["url"]


def test_a_station_outside_the_managers_scope_is_refused(client, login, world):
    login(world["manager"])
    before = people_count()
    response = client.post("/api/v1/people", json={
        "display_name": "Чужой", "position": "nurse", "station": world["other"].code})
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert people_count() == before


@pytest.mark.parametrize("role", ["manager", "police", "admin"])
def test_a_manager_adds_no_other_role(client, login, world, role):
    login(world["manager"])
    before = people_count()
    response = client.post("/api/v1/people", json={
        "display_name": "X", "role": role, "station": world["mine"].code})
    assert response.status_code == 403
    assert people_count() == before


@pytest.mark.parametrize("role", ["crew", "police"])
def test_crew_and_police_may_not_add_people(client, login, world, role):
    post = make_post()
    person = make_person(role, station=world["mine"], post=post)
    login(person)
    response = client.post("/api/v1/people", json={
        "display_name": "X", "position": "nurse", "station": world["mine"].code})
    assert response.status_code == 403


def test_signed_out_is_401(client, world):
    response = client.post("/api/v1/people", json={"display_name": "X"})
    assert response.status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"position": "nurse"}, "display_name"),
    ({"display_name": "   ", "position": "nurse"}, "display_name"),
    ({"display_name": "A" * 121, "position": "nurse"}, "display_name"),
    ({"display_name": "A", "position": "surgeon"}, "position"),
    ({"display_name": "A"}, "position"),
    ({"display_name": "A", "position": "nurse", "language": "de"}, "language"),
])
def test_bad_fields_are_named(client, login, world, body, field):
    login(world["manager"])
    before = people_count()
    response = client.post("/api/v1/people", json={"station": world["mine"].code, **body})
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert people_count() == before


def test_an_admin_adds_a_police_officer(client, login, world):
    post = make_post()
    login(make_person("admin"))
    response = client.post("/api/v1/people", json={
        "display_name": "Lt. Abenov", "role": "police", "post": post.code})
    assert response.status_code == 201, response.get_json()
    assert db.session.get(Person, response.get_json()["id"]).role == Role.POLICE
