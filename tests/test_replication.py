"""Two machines, on one: an acknowledged incident survives the loss of the
database server, an app host or a push worker (issue 21; docs/deploy.md,
"Several servers").

- Synchronous replication: a primary and a standby (pg_basebackup -R,
  synchronous_standby_names), gunicorn on libpq's multi-host URL with
  target_session_attrs=read-write; a crowd of devices syncing; the primary
  killed (pg_ctl stop -m immediate) and the standby promoted; every incident a
  device was told about is there once, with the number it was told.
- Two app hosts behind the project's nginx; one killed (-9) mid-batch.
- Two push workers (processes); one killed mid-send.
- PgBouncer in transaction mode in front of PostgreSQL; the worker's LISTEN direct.
- The managers' list and figures from a read replica, with its lag.

Every process and cluster here is the test's own, stopped in teardown. They run
in the PostgreSQL pass (the app-host, push and PgBouncer tests use databases of
their own on the test server); the clusters need the PostgreSQL server binaries
(skipped without them, except in CI, where that fails).
"""

import os
import signal
import time
from collections import Counter

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL
from tests.fault_helpers import (
    Gunicorn,
    acknowledged,
    check_outbox,
    check_store,
    create_database,
    drop_database,
    make_batch,
    make_records,
    migrate,
    seed,
    wait_for,
)
from tests.push_service import PushService
from tests.replication_helpers import (
    Crowd,
    FlaskProcess,
    PgBouncer,
    TimedSyncClient,
    failover_run,
    replicated_pair,
    stored_numbers,
)

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="runs in the PostgreSQL pass "
                                 "(QORGAU_TEST_DATABASE_URL)"),
              pytest.mark.timeout(240)]

DEVICES, BATCHES, PER_BATCH = 8, 6, 5


@pytest.fixture
def push():
    service = PushService()
    yield service
    service.close()


def _delivered_at_least_once(db_url: str, push) -> int:
    """Every outbox row sent and accepted by the push service at least once; a repeat
    is the same notification (tag). Returns how many were repeated."""
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT o.incident_id::text, o.kind, s.endpoint, o.status::text "
                            "FROM push_outbox o JOIN push_subscriptions s "
                            "ON s.id = o.subscription_id").fetchall()
    assert {status for *_, status in rows} == {"sent"}, Counter(r[3] for r in rows)
    got = Counter((r.payload["incident_id"], r.payload["type"], r.endpoint)
                  for r in push.delivered())
    assert set(got) == {(i, k, e) for i, k, e, _ in rows}
    for r in push.delivered():
        assert r.payload["tag"] == f"incident-{r.payload['incident_id']}"
    return sum(n - 1 for n in got.values())


def _report(name: str, **figures) -> None:
    """The figures for docs/deploy.md, printed (pytest -s, or -rA shows them)."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# ---------------------------------------------------------------------------
# Synchronous replication and failover


def test_primary_killed_mid_crowd_standby_promoted_nothing_acknowledged_is_lost(push,
                                                                                tmp_path):
    with failover_run(push, tmp_path, devices=DEVICES, batches=BATCHES,
                      per_batch=PER_BATCH, push_worker=True) as run:
        # The answer waits for the second server: with the standby stopped, a sync was
        # committed on the primary but the phone heard nothing (no answer in 3 s);
        # once the standby was back, its retry was answered (in `acked`).
        assert run.unanswered.status is None, run.unanswered
        assert run.figures["sync_state"] == [("sync",)]
        assert not run.crowd.errors, run.crowd.errors
        statuses = run.crowd.statuses()
        assert set(statuses) <= {200, 503, None}, statuses  # never a 500
        assert statuses[503] + statuses[None] >= 1, statuses  # the devices met the failover
        assert len(run.acked) == len(run.ids)
        # On the promoted standby: every incident any device was told about, once, with
        # the case number it was told; numbers gapless, never reused.
        check_store(run.new_primary_url, run.ids)
        assert stored_numbers(run.new_primary_url) == run.acked
        check_outbox(run.new_primary_url, run.scene, run.ids)
        # The push worker ran throughout on the same URL: it listens on the promoted
        # standby again and every queued push went out (a send in flight at the death
        # may go twice: the same notification, see the push workers' test).
        repeats = _delivered_at_least_once(run.new_primary_url, push)
        f = run.figures
        _report("failover", incidents=len(run.ids),
                acknowledged_before_death=f["acknowledged_before_death"],
                promote_s=round(f["promote_s"], 2),
                death_to_first_sync_server_s=round(f["death_to_first_sync_server_s"], 2),
                death_to_first_device_sync_s=round(f["death_to_first_device_sync_s"], 2),
                death_to_last_device_back_s=round(f["death_to_last_device_back_s"], 2),
                answers=dict(statuses), pushes_repeated=repeats)


# ---------------------------------------------------------------------------
# Two app hosts behind nginx


@pytest.fixture
def own_db():
    """A migrated database of the test's own on the test server, dropped afterwards."""
    name = f"{make_url(PG_URL).database[:30]}_rep{os.getpid()}"
    url = create_database(PG_URL, name)
    try:
        migrate(url)
        yield url
    finally:
        drop_database(PG_URL, name)


def test_an_app_host_killed_mid_batch_behind_nginx_devices_retry_exactly_once(
        own_db, push, tmp_path, start_nginx):
    scene = seed(own_db, push, crews=DEVICES)
    holds = [tmp_path / "hold-a", tmp_path / "hold-b"]
    for hold in holds:
        hold.mkdir()
    hosts = [Gunicorn(own_db, app="tests.fault_helpers:fault_app()", workers=2,
                      env={"QORGAU_FAULT_DIR": str(hold), "QORGAU_PROXY_COUNT": "1"},
                      log_path=tmp_path / f"gunicorn-{n}.log")
             for n, hold in enumerate(holds)]
    outboxes = [[make_records(PER_BATCH) for _ in range(BATCHES)] for _ in range(DEVICES)]
    clients = []
    try:
        for host in hosts:
            host.wait_ready()
        nginx = start_nginx(",".join(f"127.0.0.1:{h.port}" for h in hosts))
        clients = [TimedSyncClient(nginx.origin, crew.devices[0], seed=n, deadline_s=150,
                                   verify=str(nginx.cert))
                   for n, crew in enumerate(scene.crews)]
        crowd = Crowd(clients, outboxes).start()
        assert wait_for(lambda: crowd.batches_done() >= DEVICES, 60), crowd.errors
        # Host A holds the next batch that reaches it after its COMMIT (stored, the
        # answer not yet sent); the whole host is then killed.
        (holds[0] / "armed").write_text("after-commit")
        assert wait_for(lambda: (holds[0] / "held").exists(), 60), \
            f"no batch reached host A: {crowd.errors[:3]} " + hosts[0].log_tail()
        served_before = crowd.batches_done()
        os.killpg(hosts[0].proc.pid, signal.SIGKILL)
        assert crowd.join(180)
        assert hosts[1].proc.poll() is None  # host B carried on
    finally:
        for host in hosts:
            host.stop()
        for c in clients:
            c.close()
    assert not crowd.errors, crowd.errors
    ids, acked = crowd.ids, crowd.acked
    statuses = crowd.statuses()
    # The killed host's batches: 502 from nginx (the problem+json the phone retries).
    assert statuses[502] >= 1, statuses
    assert set(statuses) <= {200, 502, 503, 504}, statuses
    assert len(acked) == len(ids)
    # The batch host A stored but never answered came back through host B: "unchanged".
    replayed = [r for c in clients for a in c.answers if a.status == 200
                for r in a.body["results"] if r["status"] == "unchanged"]
    assert len(replayed) >= PER_BATCH
    check_store(own_db, ids)
    assert stored_numbers(own_db) == acked
    check_outbox(own_db, scene, ids)
    _report("app-host", replayed=len(replayed), incidents=len(ids),
            batches_before_kill=served_before,
            answers=dict(statuses))


# ---------------------------------------------------------------------------
# Two push workers, one killed mid-send


def _outbox_counts(db_url: str) -> Counter:
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        return Counter(dict(conn.execute(
            "SELECT status::text, count(*) FROM push_outbox GROUP BY status").fetchall()))


def _ten_incidents_and_a_hanging_officer_phone(own_db, push):
    """Ten incidents synced: 20 messages queued (a police alert and the crew's
    "Received" each); the officer's third message will reach the push service,
    which never answers it."""
    from api.auth.access import CSRF_HEADER, SESSION_COOKIE
    from api.extensions import db
    from tests.fault_helpers import push_app

    scene = seed(own_db, push, crews=1)
    app = push_app(own_db)
    push.expected_vapid_key = app.vapid_public_key
    device = scene.crews[0].devices[0]
    client = app.test_client()
    client.set_cookie(SESSION_COOKIE, device.token, domain="localhost")
    client.environ_base["HTTP_" + CSRF_HEADER.upper().replace("-", "_")] = device.csrf
    response = client.post("/api/v1/incidents/sync", json=make_batch(device, make_records(10)))
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        db.engine.dispose()
    rows = _outbox_counts(own_db)["pending"]
    assert rows == 20
    officer_endpoint = next(e for e, (person, _) in scene.subscriptions.items()
                            if person == scene.officer_id)
    push.answer(push.subscriptions[officer_endpoint], 201, 201, "hang")
    return scene, rows


def test_a_push_worker_killed_mid_send_the_other_delivers_at_least_once_same_tag(
        own_db, push, tmp_path):
    """Delivery is AT LEAST ONCE, and the repeat is invisible to the person.

    A worker sends while it holds the row's lock and commits the outcome after the
    push service answers; killed in between, its transaction rolls back and the
    other worker sends that message again. The push service (and so the phone)
    may have had the first copy: the same notification tag (`incident-<id>`,
    which the service worker passes to showNotification) and the same Topic make
    the second replace the first, never a second notification. Every other
    message reaches the push service exactly once.
    """
    from tests.fault_helpers import check_delivered
    from tests.push_service import vapid_pem

    scene, rows = _ten_incidents_and_a_hanging_officer_phone(own_db, push)
    # One row per claim: a worker's batch (PUSH_SEND_BATCH) is committed together, so
    # with the default every row of A's batch would wait for the hung send and, A
    # killed, be sent again too (replaced by its tag and Topic all the same).
    env = {"QORGAU_PUSH_VAPID_PRIVATE_KEY": vapid_pem(), "QORGAU_PUSH_POLL_SECONDS": "1",
           "QORGAU_PUSH_SEND_TIMEOUT": "60", "QORGAU_PUSH_SEND_BATCH": "1"}
    workers = []
    try:
        workers.append(FlaskProcess(["push", "worker"], own_db, env, tmp_path / "worker-a.log"))
        hung = wait_for(lambda: [r for r in push.posts() if r.status is None], 60)
        assert hung, "worker A never reached the push service: " + workers[0].log_tail()
        workers.append(FlaskProcess(["push", "worker"], own_db, env, tmp_path / "worker-b.log"))
        # B sends everything but the row A holds (SKIP LOCKED).
        assert wait_for(lambda: _outbox_counts(own_db)["pending"] == 1, 60), \
            workers[1].log_tail()
        workers[0].kill()  # mid-send: the push service has the message, the outbox does not know
        assert wait_for(lambda: _outbox_counts(own_db)["pending"] == 0, 60), \
            workers[1].log_tail()
        assert workers[1].proc.poll() is None
    finally:
        for w in workers:
            w.kill(signal.SIGTERM)
    first = hung[0]
    posts = Counter((r.payload["incident_id"], r.payload["type"], r.endpoint)
                    for r in push.posts())
    repeated = [key for key, n in posts.items() if n > 1]
    assert repeated == [(first.payload["incident_id"], first.payload["type"], first.endpoint)]
    assert posts[repeated[0]] == 2 and len(posts) == rows  # every other message once
    again = [r for r in push.delivered() if r.endpoint == first.endpoint
             and r.payload["incident_id"] == first.payload["incident_id"]]
    assert len(again) == 1
    # The repeat is the same notification: same tag (replaces it on the phone), same Topic.
    assert again[0].payload["tag"] == first.payload["tag"] == \
        f"incident-{first.payload['incident_id']}"
    assert again[0].payload["web_push"] == 8030
    assert again[0].payload["notification"]["tag"] == first.payload["tag"]
    assert again[0].topic == first.topic and first.topic
    check_delivered(own_db, push, scene)  # each row SENT, each accepted exactly once
    with psycopg.connect(own_db) as conn:
        attempts = conn.execute("SELECT outbox_id, worker FROM push_attempts").fetchall()
    assert len(attempts) == rows  # the killed send left no attempt behind
    names = Counter(w.split(":")[1] for _, w in attempts)
    assert set(names) == {str(workers[0].proc.pid), str(workers[1].proc.pid)}, names
    assert names[str(workers[0].proc.pid)] >= 2  # A sent before it hung, B the rest
    _report("push-workers", messages=rows, sent_by_a=names[str(workers[0].proc.pid)],
            sent_by_b=names[str(workers[1].proc.pid)], repeated=1)


def test_a_push_worker_killed_mid_batch_its_batch_is_sent_again_with_the_same_tags(
        own_db, push, tmp_path):
    """The default: a worker claims a batch (PUSH_SEND_BATCH, 16), police alerts
    first, and commits its outcomes together. One send hangs, so the whole batch
    waits (the other sends have reached the push service); killed then, its batch
    is sent again by the other worker: every message at least once, the batch's
    twice at most, each repeat the same notification (tag and Topic), and every
    outbox row ends sent."""
    from tests.push_service import vapid_pem

    _scene, rows = _ten_incidents_and_a_hanging_officer_phone(own_db, push)
    batch = 16
    env = {"QORGAU_PUSH_VAPID_PRIVATE_KEY": vapid_pem(), "QORGAU_PUSH_POLL_SECONDS": "1",
           "QORGAU_PUSH_SEND_TIMEOUT": "60", "QORGAU_PUSH_SEND_BATCH": str(batch)}
    workers = []
    try:
        workers.append(FlaskProcess(["push", "worker"], own_db, env, tmp_path / "worker-a.log"))
        assert wait_for(lambda: [r for r in push.posts() if r.status is None], 60), \
            "worker A never reached the push service: " + workers[0].log_tail()
        workers.append(FlaskProcess(["push", "worker"], own_db, env, tmp_path / "worker-b.log"))
        # B sends what A did not claim; A's batch waits on its hung send.
        assert wait_for(lambda: _outbox_counts(own_db)["pending"] == batch, 60), \
            workers[1].log_tail()
        workers[0].kill()
        assert wait_for(lambda: _outbox_counts(own_db)["pending"] == 0, 60), \
            workers[1].log_tail()
    finally:
        for w in workers:
            w.kill(signal.SIGTERM)
    posts: dict[tuple, list] = {}
    for r in push.posts():
        posts.setdefault((r.payload["incident_id"], r.payload["type"], r.endpoint), []).append(r)
    assert len(posts) == rows  # every message reached the push service
    twice = {key: seen for key, seen in posts.items() if len(seen) > 1}
    assert len(twice) == batch and all(len(seen) == 2 for seen in twice.values())
    # All ten alerts were in A's batch (claimed first), so all were sent again.
    assert sum(kind == "police.alert" for _, kind, _ in twice) == 10
    for first, again in twice.values():
        assert again.payload["tag"] == first.payload["tag"] == \
            f"incident-{first.payload['incident_id']}"
        assert again.topic == first.topic and first.topic
    with psycopg.connect(own_db) as conn:
        statuses = Counter(s for (s,) in conn.execute(
            "SELECT status::text FROM push_outbox").fetchall())
    assert statuses == {"sent": rows}


# ---------------------------------------------------------------------------
# PgBouncer in transaction mode


def test_pgbouncer_transaction_mode_api_and_push_worker_listen_direct(own_db, push, tmp_path):
    """The API through PgBouncer (transaction mode, 2 server connections for 2 gunicorn
    workers x 2 threads), with DATABASE_PGBOUNCER; the push worker's queries through it
    too, its LISTEN on a direct connection (PUSH_LISTEN_DATABASE_URL)."""
    from tests.push_service import vapid_pem

    name = make_url(own_db).database
    bouncer = PgBouncer(PG_URL, {"qorgau": (name, 2), "qorgau_one": (name, 1)})
    try:
        # Why the setting: psycopg prepares a statement run 5 times on a connection; in
        # transaction mode the next client on that server connection meets its name.
        first = psycopg.connect(bouncer.url("qorgau_one"), prepare_threshold=0)
        second = psycopg.connect(bouncer.url("qorgau_one"), prepare_threshold=0)
        first.execute("SELECT 1").fetchall()
        first.commit()
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            second.execute("SELECT 2").fetchall()
        first.close()
        second.close()

        scene = seed(own_db, push, crews=DEVICES + 1)
        server = Gunicorn(bouncer.url("qorgau"), workers=2, log_path=tmp_path / "gunicorn.log",
                          env={"QORGAU_DATABASE_PGBOUNCER": "true"})
        clients = [TimedSyncClient(server.base, crew.devices[0], seed=n, deadline_s=150)
                   for n, crew in enumerate(scene.crews[:DEVICES])]
        # One record a batch: still many statements per connection (psycopg would have
        # prepared them), and a backlog of pushes one worker sends in a few seconds.
        crowd = Crowd(clients, [[make_records(1) for _ in range(BATCHES)]
                                for _ in range(DEVICES)])
        ids, acked = crowd.ids, crowd.acked
        worker = None
        try:
            server.wait_ready()
            started = time.monotonic()
            assert crowd.start().join(180)
            crowd_s = time.monotonic() - started
            assert not crowd.errors, crowd.errors
            statuses = crowd.statuses()
            assert statuses == {200: DEVICES * BATCHES}, statuses
            # Reads through it too: each device's list of incidents.
            listing = clients[0].http.get(server.base + "/api/v1/incidents", timeout=30)
            assert listing.status_code == 200, listing.text

            direct = own_db + "?application_name=qorgau-push-listen"
            env = {"QORGAU_PUSH_VAPID_PRIVATE_KEY": vapid_pem(), "QORGAU_DATABASE_PGBOUNCER":
                   "true", "QORGAU_PUSH_LISTEN_DATABASE_URL": direct,
                   # No polling to speak of: only a NOTIFY can wake it in time.
                   "QORGAU_PUSH_POLL_SECONDS": "600"}
            worker = FlaskProcess(["push", "worker"], bouncer.url("qorgau"), env,
                                  tmp_path / "worker.log")
            rows = len(ids) * 2
            started = time.monotonic()
            assert wait_for(lambda: len(push.delivered()) == rows, 90), worker.log_tail()
            drain_s = time.monotonic() - started

            def listening():
                with psycopg.connect(own_db) as conn:
                    return conn.execute(
                        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'qorgau-push-listen'").fetchall()

            assert wait_for(listening, 30)[0][0].startswith("LISTEN")
            # The worker is idle, waiting on LISTEN: a new incident wakes it by NOTIFY.
            late = TimedSyncClient(server.base, scene.crews[DEVICES].devices[0])
            records = make_records(1)
            started = time.monotonic()
            acked.update(acknowledged(late.sync(records)))
            late.close()
            ids |= {r["id"] for r in records}
            assert wait_for(lambda: len(push.delivered()) == rows + 2, 30), \
                "the NOTIFY through PgBouncer did not wake the worker: " + worker.log_tail()
            notify_s = time.monotonic() - started
        finally:
            if worker is not None:
                worker.kill(signal.SIGTERM)
            server.stop()
            for c in clients:
                c.close()
        assert "prepared statement" not in server.log_tail()
        check_store(own_db, ids)
        assert stored_numbers(own_db) == acked
        check_outbox(own_db, scene, ids)
        _report("pgbouncer", incidents=len(ids), server_connections=2,
                answers=dict(statuses), crowd_s=round(crowd_s, 1), pushes=rows,
                drain_s=round(drain_s, 1), sync_to_push_by_notify_s=round(notify_s, 2))
    finally:
        bouncer.stop()


# ---------------------------------------------------------------------------
# The managers' reads from a replica


def test_managers_list_and_figures_read_from_the_replica_with_its_lag(tmp_path):
    from api import create_app
    from api.auth.access import CSRF_HEADER, SESSION_COOKIE
    from api.auth.sessions import start_session
    from api.extensions import db
    from api.replica import LAG_HEADER, READ_FROM_HEADER
    from tests.factories import make_person, make_station
    from tests.fault_helpers import Device

    with replicated_pair(synchronous=False) as (primary, standby):
        db_url = create_database(primary.url, "qorgau")
        migrate(db_url)
        app = create_app({"TESTING": True, "SECRET_KEY": "replica", "DATABASE_URL": db_url,
                          "REVIEW_REPLICA_DATABASE_URL": standby.database("qorgau"),
                          "REVIEW_REPLICA_LAG_WARN_SECONDS": 1})
        try:
            with app.app_context():
                station = make_station(region="75")
                manager = make_person("manager", station=station)
                crew = make_person("crew", station=station)
                clients = {}
                for who in (manager, crew):
                    token, session = start_session(who, user_agent="replica")
                    client = app.test_client()
                    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
                    client.environ_base["HTTP_" + CSRF_HEADER.upper().replace("-", "_")] = \
                        session.csrf_token
                    clients[who.role.value] = client
                db.session.remove()
            def log(n):
                body = make_batch(Device(0, "replica-phone", "", ""),
                                  make_records(n, police_needed=False))
                response = clients["crew"].post("/api/v1/incidents/sync", json=body)
                assert response.status_code == 200, response.get_json()

            def look():
                listing = clients["manager"].get("/api/v1/review/incidents")
                figures = clients["manager"].get("/api/v1/review/figures")
                assert listing.status_code == figures.status_code == 200, listing.get_json()
                assert listing.headers[READ_FROM_HEADER] == figures.headers[READ_FROM_HEADER]
                return (listing.headers[READ_FROM_HEADER], listing.get_json()["total"],
                        figures.get_json()["total"], listing.headers.get(LAG_HEADER),
                        figures.headers.get(LAG_HEADER))

            log(3)
            # Caught up: read from the replica, no lag shown.
            assert wait_for(lambda: look() == ("replica", 3, 3, None, None), 30), look()

            # The replica stops replaying (a long query on it, a slow disk): the list and
            # figures are the replica's (without the new two), and they say how far behind.
            standby.query("SELECT pg_wal_replay_pause()")
            log(2)
            behind = wait_for(lambda: (lambda r: r if r[3] else None)(look()), 15)
            assert behind, look()
            source, listed, counted, lag_list, lag_figures = behind
            assert (source, listed, counted) == ("replica", 3, 3)
            assert int(lag_list) >= 1 and int(lag_figures) >= 1
            # The manager's own writes and every crew sync go to the primary regardless.
            with psycopg.connect(db_url) as conn:
                assert conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 5

            standby.query("SELECT pg_wal_replay_resume()")
            assert wait_for(lambda: look() == ("replica", 5, 5, None, None), 30), look()

            # The replica gone: the primary answers, as with no replica at all.
            standby.stop()
            assert look() == ("primary", 5, 5, None, None)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
                for engine in app.extensions.get("qorgau_replica", {}).values():
                    engine.dispose()
