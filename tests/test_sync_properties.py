"""Hypothesis: any interleaving of revisions and replays converges to the newest."""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.extensions import db
from api.incidents.models import Incident
from tests.factories import make_person
from tests.incident_helpers import (  # noqa: F401
    URL,
    batch,
    frozen_clock_fixture,
    no_hooks_fixture,
    record,
    version,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")


# A delivery plan: which revisions arrive (repeats are replays), in which order,
# cut into batches of which sizes.
plans = st.lists(st.integers(1, 6), min_size=1, max_size=12).flatmap(
    lambda revs: st.tuples(st.permutations(revs),
                           st.lists(st.integers(1, 4), min_size=len(revs),
                                    max_size=len(revs))))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans)
def test_any_interleaving_converges_to_the_newest_revision(client, login, plan):
    order, sizes = plan
    login(make_person("crew"))
    ident = uuid.uuid4()
    statuses, i = [], 0
    for size in sizes:
        chunk = order[i:i + size]
        i += size
        if not chunk:
            break
        response = client.post(URL, json=batch(*[version(ident, n) for n in chunk]))
        assert response.status_code == 200
        statuses += [r["status"] for r in response.get_json()["results"]]
    newest = max(order)
    assert statuses.count("created") == 1 and "rejected" not in statuses
    db.session.expire_all()
    stored = db.session.get(Incident, ident)
    expected = version(ident, newest)
    assert stored.revision == newest
    assert (stored.kind, stored.note, stored.police_needed, stored.aggravating, stored.lat) == (
        expected["kind"], expected["note"], expected["police_needed"],
        expected["aggravating"], expected["location"]["lat"])
    # One event per applied revision, each newer than the last.
    revisions = [e.revision for e in stored.events]
    assert revisions == sorted(set(revisions)) and revisions[-1] == newest
