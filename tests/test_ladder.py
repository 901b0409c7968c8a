"""The escalation ladder (api.police.ladder): per region, steps in order, each an
event in the incident's hash chain, stopping when someone acknowledges; and the
console's BS 8484 figures (each post's share of alarms taken within 10 s / 40 s)."""

import uuid

import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import IncidentEvent
from api.ledger.service import verify_all
from api.police.models import PoliceAlert
from api.push.models import PushOutbox
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

pytest_plugins = ["tests.push_service"]

BASE = "/api/v1/police/incidents"
FIGURES = "/api/v1/checkin/alarm-figures"


@pytest.fixture
def world(push_app, client, login, subscribe):
    post_a = make_post(region="75", name="Post A")
    post_b = make_post(region="75", name="Post B")
    post_c = make_post(region="71", name="Post C")
    station = make_station(region="75", default_post=post_a)
    other = make_station(region="75", default_post=post_b)
    w = {
        "post_a": post_a, "post_b": post_b, "post_c": post_c,
        "crew": make_person("crew", station=station, language="en"),
        "crew_other": make_person("crew", station=other),
        "manager": make_person("manager", station=station),
        "other_manager": make_person("manager", station=other),
        "admin": make_person("admin"),
        "officer_a": make_person("police", post=post_a, language="en"),
        "officer_b": make_person("police", post=post_b),
        "officer_c": make_person("police", post=post_c),
        # The region's duty officer: named in the ladder as person:ID.
        "duty": make_person("police", post=post_b, language="kk"),
    }
    w["clients"] = {}
    for name in ("crew", "crew_other", "manager", "other_manager", "admin", "officer_a",
                 "officer_b", "officer_c", "duty"):
        c = client.application.test_client()
        login(w[name], on=c)
        subscribe(c)
        w["clients"][name] = c
    return w


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=["escalation", *args])
    return result


def new_alarm(world, who="crew") -> str:
    res = sync(world["clients"][who], record(police_needed=True))["results"][0]
    return res["incident"]["id"]


def escalations(ident):
    return [e.changes for e in db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == uuid.UUID(ident), IncidentEvent.kind == "escalated")
        .order_by(IncidentEvent.seq))]


def pushed(person, ident):
    return list(db.session.scalars(select(PushOutbox.kind).where(
        PushOutbox.person_id == person.id, PushOutbox.incident_id == uuid.UUID(ident))
        .order_by(PushOutbox.id)))


def test_the_steps_fire_in_order_and_stop_when_someone_acknowledges(world, push_app,
                                                                    worker, clock):
    duty = world["duty"]
    result = cli(push_app, "set", "75", "60:post", f"2m:person:{duty.id}",
                 "180:region_posts,managers", "240:admins")
    assert result.exit_code == 0, result.output
    assert "75 2: after 120 s -> person:" in result.output
    ident = new_alarm(world)

    clock.advance(59)
    worker.tick()
    assert escalations(ident) == []
    clock.advance(2)
    worker.tick()  # step 1: the post again
    steps = escalations(ident)
    assert [s["escalation_level"] for s in steps] == [[0, 1]]
    assert steps[0]["escalated_to_posts"] == [None, [world["post_a"].id]]
    assert pushed(world["officer_a"], ident) == ["police.alert", "police.escalation"]
    assert pushed(duty, ident) == []

    clock.advance(60)
    worker.tick()  # step 2: the duty officer
    steps = escalations(ident)
    assert steps[-1]["escalation_level"] == [1, 2]
    assert steps[-1]["escalated_to_people"] == [None, [duty.id]]
    assert pushed(duty, ident) == ["police.escalation"]
    assert pushed(world["officer_b"], ident) == []

    # The duty officer takes it: the ladder stops there.
    taken = world["clients"]["duty"].post(f"{BASE}/{ident}/acknowledge")
    assert taken.status_code == 200
    clock.advance(3600)
    worker.tick()
    assert len(escalations(ident)) == 2
    assert pushed(world["officer_b"], ident) == []
    assert pushed(world["admin"], ident) == []
    assert db.session.get(PoliceAlert, uuid.UUID(ident)).next_step_at is None
    assert verify_all(uuid.UUID(ident)).broken_chains == []


def test_every_step_when_nobody_acknowledges_and_several_due_at_once(world, push_app,
                                                                     worker, clock):
    assert cli(push_app, "set", "75", "10:post", "20:region_posts,managers",
               "30:admins").exit_code == 0
    ident = new_alarm(world)
    clock.advance(45)  # the worker was down: all three are due, taken in order
    worker.tick()
    assert [s["escalation_level"] for s in escalations(ident)] == [[0, 1], [1, 2], [2, 3]]
    assert pushed(world["manager"], ident) == ["police.escalation"]
    assert pushed(world["other_manager"], ident) == []  # not their station
    assert pushed(world["officer_c"], ident) == []      # another region
    assert pushed(world["admin"], ident) == ["police.escalation"]
    clock.advance(3600)
    worker.tick()
    assert len(escalations(ident)) == 3


def test_another_region_keeps_the_default_ladder(world, push_app, worker, clock):
    assert cli(push_app, "set", "71", "10:admins").exit_code == 0
    ident = new_alarm(world)  # region 75: default, one step after 300 s
    clock.advance(200)
    worker.tick()
    assert escalations(ident) == []
    clock.advance(101)
    worker.tick()
    assert [s["escalation_level"] for s in escalations(ident)] == [[0, 1]]
    assert cli(push_app, "clear", "71").exit_code == 0
    assert "default" in cli(push_app, "list").output


@pytest.mark.parametrize("steps", [["60:nobody"], ["x:post"], ["60:post", "30:admins"],
                                   ["60:person:999999"], ["60:"]])
def test_a_bad_ladder_is_refused_and_the_old_one_kept(world, push_app, steps):
    assert cli(push_app, "set", "75", "60:admins").exit_code == 0
    result = cli(push_app, "set", "75", *steps)
    assert result.exit_code != 0
    assert "75 1: after 60 s -> admins" in cli(push_app, "list").output
    assert cli(push_app, "set", "99", "60:post").exit_code != 0  # no such region


def test_alarm_figures_share_taken_within_10_and_40_seconds(world, push_app):
    fast = new_alarm(world)
    new_alarm(world)  # never taken
    sync(world["clients"]["crew"], record())  # not police-needed: not an alarm
    assert world["clients"]["officer_a"].post(f"{BASE}/{fast}/acknowledge").status_code == 200
    body = world["clients"]["manager"].get(FIGURES).get_json()
    assert body["target_10s"] == 0.8 and body["target_40s"] == 0.985
    assert body["posts"] == [{"post_id": world["post_a"].id, "post_name": "Post A",
                              "alerts": 2, "within_10s": 0.5, "within_40s": 0.5}]
    # Another station's manager sees their own (none); the administrator sees all.
    assert world["clients"]["other_manager"].get(FIGURES).get_json()["posts"] == []
    assert world["clients"]["admin"].get(FIGURES).get_json()["posts"][0]["alerts"] == 2
    assert world["clients"]["crew"].get(FIGURES).status_code == 403
    bad = world["clients"]["manager"].get(FIGURES + "?from=yesterday")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"
