"""Case numbers: QG-<region>-<local year>-<sequence>, gapless, never reused or changed."""

import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import CaseCounter, Incident
from api.incidents.sync import case_number
from tests.factories import make_person, make_station
from tests.incident_helpers import (
    NOW,
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
    sync,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")

FORMAT = re.compile(r"^QG-\d{2}-\d{4}-\d{6}$")


def test_format():
    assert case_number("75", 2026, 123) == "QG-75-2026-000123"
    assert FORMAT.match(case_number("10", 2027, 1))


def test_sequence_per_region_and_year(client, login, frozen_clock):
    almaty = make_person("crew", station=make_station(region="75"))
    astana = make_person("crew", station=make_station(region="71"))
    login(almaty)
    numbers = [result(client, record())["incident"]["case_number"] for _ in range(3)]
    frozen_clock["value"] = datetime(2027, 2, 1, 5, 1, tzinfo=UTC)
    numbers.append(result(client, record(tapped_at="2027-02-01T10:00:00+05:00"),
                          sent_at="2027-02-01T10:01:00+05:00")["incident"]["case_number"])
    frozen_clock["value"] = NOW
    login(astana)
    numbers.append(result(client, record())["incident"]["case_number"])
    assert numbers == ["QG-75-2026-000001", "QG-75-2026-000002", "QG-75-2026-000003",
                       "QG-75-2027-000001", "QG-71-2026-000001"]


def test_local_almaty_year_not_utc(client, login, frozen_clock):
    frozen_clock["value"] = datetime(2026, 12, 31, 19, 31, tzinfo=UTC)
    login(make_person("crew"))
    # 31 Dec 2026 19:30 UTC is 1 Jan 2027 00:30 in Almaty (UTC+5).
    res = result(client, record(tapped_at="2026-12-31T19:30:00+00:00"),
                 sent_at="2026-12-31T19:31:00+00:00")
    assert res["incident"]["case_number"] == "QG-75-2027-000001"
    res = result(client, record(tapped_at="2026-12-31T18:59:00+00:00"),
                 sent_at="2026-12-31T19:31:00+00:00")
    assert res["incident"]["case_number"] == "QG-75-2026-000001"


def test_no_gaps_from_replays_rejections_or_revisions(client, login):
    crew = make_person("crew")
    login(crew)
    rec = record()
    first = result(client, rec)["incident"]["case_number"]
    result(client, rec)                                       # replay
    result(client, {**rec, "revision": 2, "kind": "threat"})  # revision
    result(client, record(kind="nonsense"))                   # rejected
    login(make_person("crew", station=crew.station))
    assert result(client, rec)["status"] == "rejected"        # someone else's id
    second = result(client, record())["incident"]["case_number"]
    assert (first, second) == ("QG-75-2026-000001", "QG-75-2026-000002")
    stored = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert stored.case_number == first  # never changed by the revision
    counter = db.session.scalar(select(CaseCounter).where(CaseCounter.region_code == "75"))
    assert counter.last == 2


def test_numbers_in_one_batch_follow_the_incident_times(client, login):
    login(make_person("crew"))
    late = record(tapped_at="2026-06-01T11:00:00+05:00")
    early = record(tapped_at="2026-06-01T08:00:00+05:00")
    body = sync(client, late, early)
    got = {r["id"]: r["incident"]["case_number"] for r in body["results"]}
    assert got[early["id"]] == "QG-75-2026-000001" and got[late["id"]] == "QG-75-2026-000002"


def test_replays_in_a_batch_of_new_records_leave_no_gap(client, login):
    # Numbers are drawn for the whole batch before the insert; the replays'
    # numbers must be given back and the new records numbered compactly.
    crew = make_person("crew")
    login(crew)
    old_early = record(tapped_at="2026-06-01T07:00:00+05:00")
    old_mid = record(tapped_at="2026-06-01T09:00:00+05:00")
    assert [r["incident"]["case_number"] for r in sync(client, old_early, old_mid)["results"]
            ] == ["QG-75-2026-000001", "QG-75-2026-000002"]
    new_a = record(tapped_at="2026-06-01T08:00:00+05:00")
    new_b = record(tapped_at="2026-06-01T10:00:00+05:00")
    new_c = record(tapped_at="2026-06-01T06:00:00+05:00")
    body = sync(client, new_a, old_mid, new_b, old_early, new_c)
    got = [(r["status"], r["incident"]["case_number"]) for r in body["results"]]
    assert got == [("created", "QG-75-2026-000004"), ("unchanged", "QG-75-2026-000002"),
                   ("created", "QG-75-2026-000005"), ("unchanged", "QG-75-2026-000001"),
                   ("created", "QG-75-2026-000003")]
    counter = db.session.scalar(select(CaseCounter).where(CaseCounter.region_code == "75"))
    assert counter.last == 5
    db.session.expire_all()
    stored = {i.id: i.case_number for i in db.session.scalars(select(Incident))}
    assert sorted(stored.values()) == [f"QG-75-2026-{n:06d}" for n in range(1, 6)]
    assert stored[uuid.UUID(new_c["id"])] == "QG-75-2026-000003"
