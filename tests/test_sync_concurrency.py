"""Concurrent syncs against committed data: real threads, real transactions.

The rolled-back `app` fixture cannot show what another connection sees, so
these tests build their own app on the test database, commit, and clean up
what they made. On SQLite (a file shared by the threads) writers queue and
the sync retries a busy database; on PostgreSQL they really overlap.
"""

import os
import random
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import make_url

from api import create_app
from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.models import AuthSession
from api.auth.sessions import start_session
from api.extensions import db
from api.incidents import records
from api.incidents import sync as service
from api.incidents.models import CaseCounter, Incident, IncidentEvent, SyncDevice
from api.ledger.models import Receipt
from api.orgs.models import Person, Station
from tests.conftest import PG_URL, base_config
from tests.factories import make_person, make_station
from tests.incident_helpers import URL, batch, frozen_clock_fixture, no_hooks_fixture, record  # noqa: F401

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")
REGION = "62"  # Ulytau: no other test draws case numbers there
THREADS = 8


@pytest.fixture
def shared(database_url, tmp_path):
    """An app whose data is committed for every thread to see; cleaned up after."""
    if PG_URL:
        url = database_url
    else:
        copy = tmp_path / "shared.db"
        shutil.copyfile(make_url(database_url).database, copy)
        url = f"sqlite:///{copy}"
    # Many syncs at once in one process is the point here: no per-process
    # limit (api/shedding.py; tests/test_shedding.py tests the limit itself).
    app = create_app({**base_config(url), "SYNC_MAX_IN_FLIGHT": 0})
    made = {"people": [], "stations": []}

    def crew_clients(n):
        """n crew members of one new station, each with a signed-in test client."""
        with app.app_context():
            station = make_station(region=REGION)
            made["stations"].append(station.id)
            clients = []
            for _ in range(n):
                person = make_person("crew", station=station)
                made["people"].append(person.id)
                token, session = start_session(person, user_agent="pytest")
                client = app.test_client()
                client.set_cookie(SESSION_COOKIE, token, domain="localhost")
                client.environ_base["HTTP_" + CSRF_HEADER.upper().replace("-", "_")] = \
                    session.csrf_token
                clients.append(client)
            return clients

    yield app, crew_clients
    if not PG_URL:
        with app.app_context():
            db.engine.dispose()
        return
    with app.app_context():
        people = made["people"]
        incidents = select(Incident.id).where(Incident.reporter_id.in_(people))
        # The history is append-only; the trigger lets a maintenance purge delete.
        db.session.execute(text("SET LOCAL qorgau.purge_events = 'on'"))
        db.session.execute(delete(IncidentEvent).where(IncidentEvent.incident_id.in_(incidents)))
        db.session.execute(delete(Receipt).where(Receipt.incident_id.in_(incidents)))
        db.session.execute(delete(Incident).where(Incident.reporter_id.in_(people)))
        db.session.execute(delete(SyncDevice).where(SyncDevice.person_id.in_(people)))
        db.session.execute(delete(AuthSession).where(AuthSession.person_id.in_(people)))
        db.session.execute(delete(Person).where(Person.id.in_(people)))
        db.session.execute(delete(Station).where(Station.id.in_(made["stations"])))
        db.session.execute(delete(CaseCounter).where(CaseCounter.region_code == REGION))
        db.session.commit()
        db.engine.dispose()


def _parallel(jobs):
    """Run the callables at the same instant (a barrier), return their results."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _post(client, body):
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["results"]


def test_concurrent_retries_of_one_batch_store_each_record_once(shared):
    app, crew_clients = shared
    (client,) = crew_clients(1)
    # The same batch, retried by a flaky connection from several tabs at once.
    body = batch(*[record(kind="threat") for _ in range(20)], device_id="phone-race")
    answers = _parallel([lambda: _post(client, body)] * THREADS)
    created = [r["id"] for results in answers for r in results if r["status"] == "created"]
    assert sorted(created) == sorted(r["id"] for r in body["records"])  # once each
    for results in answers:
        assert {r["status"] for r in results} <= {"created", "unchanged"}
    # Every thread was told the same case number for the same incident.
    numbers = {}
    for results in answers:
        for r in results:
            numbers.setdefault(r["id"], set()).add(r["incident"]["case_number"])
    assert all(len(n) == 1 for n in numbers.values())
    with app.app_context():
        ids = [uuid.UUID(r["id"]) for r in body["records"]]
        assert db.session.scalar(select(func.count()).select_from(Incident)
                                 .where(Incident.id.in_(ids))) == 20
        assert db.session.scalar(select(func.count()).select_from(IncidentEvent)
                                 .where(IncidentEvent.incident_id.in_(ids))) == 20
        stored = sorted(db.session.scalars(select(Incident.case_number)
                                           .where(Incident.id.in_(ids))))
        assert stored == [f"QG-{REGION}-2026-{n:06d}" for n in range(1, 21)]


def test_concurrent_crews_draw_gapless_unique_case_numbers(shared):
    app, crew_clients = shared
    clients = crew_clients(THREADS)

    def crew_job(client):
        def job():
            out = []
            for _ in range(4):
                out += _post(client, batch(*[record() for _ in range(10)]))
            return out
        return job

    answers = _parallel([crew_job(c) for c in clients])
    numbers = [r["incident"]["case_number"] for results in answers for r in results]
    total = THREADS * 40
    assert sorted(numbers) == [f"QG-{REGION}-2026-{n:06d}" for n in range(1, total + 1)]
    with app.app_context():
        counter = db.session.get(CaseCounter, (REGION, 2026))
        assert counter.last == total


def test_concurrent_revisions_converge_to_the_newest(shared):
    app, crew_clients = shared
    (client,) = crew_clients(1)
    base = record(kind="unspecified", note="rev 1")
    result = _post(client, batch(base))
    assert result[0]["status"] == "created"
    revisions = [{**base, "revision": n, "note": f"rev {n}", "kind": "threat"}
                 for n in range(2, 2 + THREADS)]
    random.Random(os.getpid()).shuffle(revisions)
    _parallel([lambda r=r: _post(client, batch(r)) for r in revisions])
    with app.app_context():
        stored = db.session.get(Incident, uuid.UUID(base["id"]))
        assert (stored.revision, stored.note) == (THREADS + 1, f"rev {THREADS + 1}")
        kinds = [e.kind for e in stored.events]
        assert kinds[0] == "created" and set(kinds[1:]) <= {"revised"}
        # Each applied revision is newer than the one before it.
        revs = [e.revision for e in stored.events]
        assert revs == sorted(set(revs))
    assert service.FOREIGN_ID  # the module under test is the one imported


@pytest.mark.skipif(not PG_URL, reason="SQLite has one writer at a time for the whole database")
def test_a_slow_routing_never_holds_up_another_crew_of_the_region(shared, monkeypatch):
    """Every sync of a region draws its case numbers from one counter row. The
    counter is taken last, after the routing: a crew whose sync is slow to route
    (a busy CPU, a slow query) does not make the region's other crews wait; they
    are numbered first, and the numbers stay gapless."""
    app, crew_clients = shared
    slow_client, quick_client = crew_clients(2)
    slow_body, quick_body = batch(record()), batch(record(), device_id="phone-2")
    slow_id = slow_body["records"][0]["id"]
    routing_slow, quick_done = threading.Event(), threading.Event()

    class SlowRouting:
        def prepare_incidents_synced(self, created, columns):
            if any(str(incident.id) == slow_id for incident in created):
                routing_slow.set()
                quick_done.wait(timeout=15)

        def finish_incidents_synced(self, created, prepared):
            pass

    monkeypatch.setattr(records, "incident_hooks", [SlowRouting()])
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_post, slow_client, slow_body)
        assert routing_slow.wait(timeout=15)
        quick = _post(quick_client, quick_body)
        quick_done.set()
        slow = slow.result()
    assert quick[0]["incident"]["case_number"] == f"QG-{REGION}-2026-000001"
    assert slow[0]["incident"]["case_number"] == f"QG-{REGION}-2026-000002"
    with app.app_context():
        assert db.session.get(CaseCounter, (REGION, 2026)).last == 2
