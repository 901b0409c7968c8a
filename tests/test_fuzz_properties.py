"""Hypothesis properties that widen the two already in the suite.

tests/test_sync_properties.py replays one incident's revisions in any order;
here several incidents' revisions and replays are interleaved in the same
batches (as a phone's outbox sends them), and the converged state is read back
through the API the crew app uses. tests/test_law.py checks parts within the
law's scope; here every combination of facts is classified and the outcome is
checked against the rule as a lawyer would state it.
"""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.law.service import classify, rules
from tests.factories import make_person
from tests.incident_helpers import (  # noqa: F401
    URL,
    batch,
    frozen_clock_fixture,
    no_hooks_fixture,
    version,
)

# --- sync: several incidents, interleaved ---------------------------------------------

deliveries = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 5)), min_size=1,
                      max_size=15).flatmap(
    lambda sends: st.tuples(st.just(sends), st.lists(st.integers(1, 5), min_size=len(sends),
                                                     max_size=len(sends))))


@pytest.mark.usefixtures("frozen_clock", "no_hooks")
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=deliveries)
def test_interleaved_incidents_each_converge_and_read_back_newest(client, login, plan):
    sends, sizes = plan
    login(make_person("crew"))
    idents = [uuid.uuid4() for _ in range(3)]
    i, created = 0, []
    for size in sizes:
        chunk = sends[i:i + size]
        i += size
        if not chunk:
            break
        response = client.post(URL, json=batch(*[version(idents[k], n) for k, n in chunk]))
        assert response.status_code == 200
        results = response.get_json()["results"]
        assert [r["id"] for r in results] == [str(idents[k]) for k, _ in chunk]
        assert "rejected" not in {r["status"] for r in results}
        created += [r["id"] for r in results if r["status"] == "created"]
    newest = {}
    for k, n in sends:
        newest[k] = max(newest.get(k, 0), n)
    assert sorted(created) == sorted(str(idents[k]) for k in newest)  # each created once
    listed = {item["id"]: item for item in client.get("/api/v1/incidents").get_json()["items"]}
    assert set(listed) == {str(idents[k]) for k in newest}
    for k, n in newest.items():
        expected = version(idents[k], n)
        one = client.get(f"/api/v1/incidents/{idents[k]}").get_json()
        for got in (one, listed[str(idents[k])]):
            assert (got["revision"], got["kind"], got["note"], got["police_needed"],
                    got["aggravating"], got["location"]["lat"]) == (
                n, expected["kind"], expected["note"], expected["police_needed"],
                expected["aggravating"], expected["location"]["lat"])


# --- classification: the whole input space ---------------------------------------------

DOC = rules()
KINDS = [k["id"] for k in DOC["kinds"]]
ACTS = {k["id"]: k["act"] for k in DOC["kinds"]}
# A kind with no act names its reason: "outside" (not this article) or "pending".
KIND_STATUS = {k["id"]: next(r["status"] for r in DOC["reasons"] if r["code"] == k["reason"])
               for k in DOC["kinds"] if k["act"] is None}
ROLES = {r["id"]: r["protected"] for r in DOC["victim_roles"]}
CIRCUMSTANCES = [c["id"] for c in DOC["aggravating_circumstances"]]
IN_FORCE = date.fromisoformat(DOC["in_force_date"])
ALMATY = timezone(timedelta(hours=5))  # Asia/Almaty has no DST since 2024
MCI_YEARS = sorted(int(y) for y in DOC["mci"])


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), subset=st.sets(st.sampled_from(CIRCUMSTANCES)),
       role=st.sampled_from(sorted(ROLES)), on_duty=st.booleans(),
       instant=st.datetimes(min_value=datetime(2025, 1, 1),
                            max_value=datetime(MCI_YEARS[-1], 12, 31, 18, 59)),
       offset=st.integers(-12, 14), lang=st.sampled_from(DOC["languages"]))
def test_classification_follows_the_article_everywhere(kind, subset, role, on_duty, instant,
                                                       offset, lang):
    when = instant.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=offset)))
    facts = {"kind": kind, "aggravating": sorted(subset), "victim_role": role,
             "on_duty": on_duty, "occurred_at": when.isoformat()}
    result = classify(facts, lang)
    local_day = when.astimezone(ALMATY).date()
    assert result["local_date"] == local_day.isoformat()
    outside = local_day < IN_FORCE or not ROLES[role] or not on_duty
    if outside:
        assert result["status"] == "outside" and result["part"] is None
    elif ACTS[kind] is None:
        assert result["status"] == KIND_STATUS[kind] and result["part"] is None
    else:
        assert result["status"] == "within"
        assert (result["part"] % 2 == 0) == bool(subset)
        assert set(result["aggravating"]) == subset and result["penalties"]
        # Aggravating circumstances never lower the part; dropping them gives the base part.
        base = classify({**facts, "aggravating": []}, lang)
        assert base["part"] == result["part"] - (1 if subset else 0)
    assert result["summary"] and result["disclaimer"] and result["lang"] == lang
    # The language changes the words, never the outcome.
    other = classify(facts, "ru" if lang != "ru" else "en")
    assert {k: other[k] for k in ("status", "part", "aggravating", "local_date")} == {
        k: result[k] for k in ("status", "part", "aggravating", "local_date")}
