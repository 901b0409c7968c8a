"""Web Push end to end: subscribe, sync, outbox, worker, a real push service on 127.0.0.1.

The push service (tests/push_service.py) decrypts every message with the
subscription's own private key and verifies the VAPID signature, so a
"delivered" message here is one a browser could have read.
"""

import os
import stat
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.extensions import db
from api.push import service as push
from api.push.models import AttemptOutcome, OutboxStatus, PushOutbox, PushSubscription, Urgency
from api.push.vapid import public_key, vapid_key
from api.push.worker import PushWorker, parse_retry_after, start_worker_thread
from tests.conftest import PG_URL
from tests.factories import make_incident, make_person, make_post, make_station
from tests.incident_helpers import (
    frozen_clock_fixture,  # noqa: F401 (a fixture)
    record,
    sync,
)

# The push_app, push_service, clock, worker and subscribe fixtures.
pytest_plugins = ["tests.push_service"]

SUBS = "/api/v1/push/subscriptions"


def outbox(**where):
    query = select(PushOutbox).order_by(PushOutbox.id)
    for key, value in where.items():
        query = query.where(getattr(PushOutbox, key) == value)
    return list(db.session.scalars(query))


def queue_one(person, text="hello"):
    """A bare notification (no incident) for `person`, committed."""
    rows = push.enqueue(person, "test", {"title": text, "body": text})
    db.session.commit()
    return rows


# --- VAPID -----------------------------------------------------------------


def test_vapid_key_is_made_once_into_the_instance_folder(app, tmp_path, runner):
    path = tmp_path / "instance" / "vapid.pem"
    app.config.update(PUSH_VAPID_PRIVATE_KEY=None, PUSH_VAPID_KEY_FILE=str(path))
    app.extensions.pop("qorgau_vapid", None)
    first = public_key(app)
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    app.extensions.pop("qorgau_vapid", None)  # as after a restart
    assert public_key(app) == first
    assert len(first) == 87  # base64url of a 65-byte uncompressed point
    result = runner.invoke(args=["push", "vapid"])
    assert result.exit_code == 0 and result.output.splitlines()[0] == first


def test_vapid_key_from_the_environment(app):
    from py_vapid import Vapid02

    made = Vapid02()
    made.generate_keys()
    app.config["PUSH_VAPID_PRIVATE_KEY"] = made.private_pem().decode()
    app.extensions.pop("qorgau_vapid", None)
    assert vapid_key(app).public_key.public_numbers() == made.public_key.public_numbers()


def test_public_key_endpoint_needs_sign_in_and_serves_every_role(push_app, client, login):
    assert client.get("/api/v1/push/vapid-public-key").status_code == 401
    for role in ("crew", "manager", "police", "admin"):
        login(make_person(role))
        response = client.get("/api/v1/push/vapid-public-key")
        assert response.status_code == 200
        assert response.get_json() == {"public_key": push_app.vapid_public_key}


# --- Subscriptions ---------------------------------------------------------


def test_subscribe_upserts_by_endpoint_and_a_person_may_have_several_devices(
        push_app, client, login, push_service):
    person = make_person("crew")
    login(person)
    phone = push_service.subscribe()
    tablet = push_service.subscribe()
    assert client.post(SUBS, json=phone.to_json("phone")).status_code == 201
    assert client.post(SUBS, json=tablet.to_json("tablet")).status_code == 201
    # The same endpoint again (a page reload) updates, never duplicates.
    again = client.post(SUBS, json=phone.to_json("phone"))
    assert again.status_code == 200 and again.get_json()["device_id"] == "phone"
    subs = db.session.scalars(select(PushSubscription).where(
        PushSubscription.person_id == person.id)).all()
    assert sorted(s.endpoint for s in subs) == sorted([phone.endpoint, tablet.endpoint])


def test_pushsubscriptionchange_replaces_the_devices_old_endpoint(
        push_app, client, login, push_service, subscribe):
    person = make_person("police")
    login(person)
    old = subscribe(client, device_id="desk-1")
    new = push_service.subscribe()
    assert client.post(SUBS, json=new.to_json("desk-1")).status_code == 201
    endpoints = db.session.scalars(select(PushSubscription.endpoint).where(
        PushSubscription.person_id == person.id)).all()
    assert endpoints == [new.endpoint] and old.endpoint not in endpoints


def test_an_endpoint_moves_to_whoever_subscribes_with_it(push_app, client, login, subscribe):
    first, second = make_person("police"), make_person("police")
    login(first)
    sub = subscribe(client)
    login(second)  # the post's shared desktop, next shift
    assert client.post(SUBS, json=sub.to_json()).status_code == 200
    row = db.session.scalar(select(PushSubscription).where(
        PushSubscription.endpoint == sub.endpoint))
    db.session.refresh(row)
    assert row.person_id == second.id


def test_unsubscribe_removes_only_ones_own_and_is_idempotent(
        push_app, client, login, push_service, subscribe):
    owner, other = make_person("crew"), make_person("crew")
    login(owner)
    sub = subscribe(client)
    login(other)
    assert client.delete(SUBS, json={"endpoint": sub.endpoint}).status_code == 204
    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 1
    login(owner)
    assert client.delete(SUBS, json={"endpoint": sub.endpoint}).status_code == 204
    assert client.delete(SUBS, json={"endpoint": sub.endpoint}).status_code == 204
    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: b["keys"].update(p256dh="AAAA"), "keys.p256dh"),
    (lambda b: b["keys"].update(auth="!!not base64!!"), "keys.auth"),
    (lambda b: b.pop("keys"), "keys"),
    (lambda b: b.update(endpoint="http://push.example.com/x"), "endpoint"),
    (lambda b: b.update(endpoint="not a url"), "endpoint"),
    (lambda b: b.update(device_id=""), "device_id"),
    (lambda b: b.update(extra=1), "extra"),
])
def test_bad_subscriptions_are_422_naming_the_field(push_app, client, login, push_service,
                                                    change, field):
    login(make_person("crew"))
    body = push_service.subscribe().to_json()
    change(body)
    response = client.post(SUBS, json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in {e["field"] for e in response.get_json()["errors"]}


def test_subscribe_refuses_non_json_and_signed_out(push_app, client, login):
    assert client.post(SUBS, json={}).status_code == 401
    login(make_person("crew"))
    response = client.post(SUBS, data="x", content_type="text/plain")
    assert response.status_code == 415


# --- End to end: sync -> outbox -> worker -> push service -------------------


@pytest.fixture
def scene(push_app, client, login, push_service, subscribe):
    """A post with a subscribed officer, a station, a subscribed crew member (Russian)."""
    post = make_post(name="City Hospital No. 4")
    station = make_station(default_post=post)
    officer = make_person("police", post=post, language="kk")
    crew = make_person("crew", station=station, language="ru")
    officer_client = client.application.test_client()
    login(officer, on=officer_client)
    officer_sub = subscribe(officer_client)
    login(crew)
    crew_sub = subscribe(client)
    return {"post": post, "station": station, "officer": officer, "crew": crew,
            "officer_sub": officer_sub, "crew_sub": crew_sub}


def test_sync_alerts_the_post_and_confirms_to_the_crew_once(scene, client, worker,
                                                           push_service, push_app):
    res = sync(client, record(kind="violence", police_needed=True))["results"][0]
    incident = res["incident"]
    # Written with the incident, sent by the worker: nothing has left yet.
    assert push_service.posts() == []
    assert len(outbox(status=OutboxStatus.PENDING)) == 2

    assert worker.tick() == 2
    alert, = push_service.delivered(scene["officer_sub"])
    confirm, = push_service.delivered(scene["crew_sub"])

    case = incident["case_number"]
    assert alert.payload["type"] == "police.alert"
    assert alert.payload["lang"] == "kk" and case in alert.payload["title"]
    assert alert.payload["require_interaction"] is True
    assert alert.payload["body"].startswith("ПОЛИЦИЯ ҚАЗІР ҚАЖЕТ")
    assert alert.urgency == "high"
    assert alert.ttl == str(push_app.config["PUSH_TTL_ALERT"])
    assert alert.topic == push.topic_for(incident["id"])
    assert alert.vapid_key == push_app.vapid_public_key

    p = confirm.payload
    assert p["type"] == "incident.received" and p["lang"] == "ru"
    assert p["title"] == f"Принято: дело {case}"
    assert "Статья 380-3 часть 3" in p["body"] and "City Hospital No. 4" in p["body"]
    assert p["url"] == f"/#/incidents/{incident['id']}"
    assert p["tag"] == f"incident-{incident['id']}"
    assert p["incident_id"] == incident["id"] and p["case_number"] == case
    assert p["incident"]["status"] == "routed"
    assert p["incident"]["post"]["name"] == "City Hospital No. 4"
    assert p["incident"]["classification"] == {"status": "within", "part": 3}
    # A confirmation, even with police needed now: the police alert is the urgent push.
    assert confirm.urgency == "normal"
    assert confirm.ttl == str(push_app.config["PUSH_TTL_DEFAULT"])

    # Delivered once: more ticks, and replaying the same sync, send nothing more.
    assert worker.tick() == 0
    sync(client, record(id_=incident["id"], kind="violence", police_needed=True))
    assert worker.tick() == 0
    assert len(push_service.posts()) == 2
    for row in outbox():
        assert row.status == OutboxStatus.SENT and row.attempts == 1
        assert [a.outcome for a in row.attempt_log] == [AttemptOutcome.SENT]
        assert row.attempt_log[0].status_code == 201


def test_crew_confirmation_without_police_needed_is_normal_urgency(scene, client, worker,
                                                                   push_service):
    sync(client, record(kind="threat"))
    worker.tick()
    confirm, = push_service.delivered(scene["crew_sub"])
    assert confirm.urgency == "normal"
    assert "часть 1" in confirm.payload["body"]


def test_a_rolled_back_change_sends_nothing(push_app, worker, push_service, login, client,
                                            subscribe):
    person = make_person("crew")
    login(person)
    subscribe(client)
    push.enqueue(person, "test", {"title": "x"})
    db.session.rollback()
    assert worker.tick() == 0 and push_service.posts() == []


def test_every_device_of_a_person_gets_its_own_message(push_app, worker, push_service,
                                                       login, client, subscribe):
    person = make_person("manager")
    login(person)
    subs = [subscribe(client) for _ in range(3)]
    queue_one(person)
    assert worker.tick() == 3
    assert [len(push_service.delivered(s)) for s in subs] == [1, 1, 1]


def test_a_police_alert_goes_before_the_confirmations_queued_ahead_of_it(
        push_app, worker, push_service, login, client, subscribe):
    """A reconnection storm queues thousands of crews' confirmations; the alert
    queued after them is claimed in the worker's very next batch."""
    crew, officer = make_person("crew"), make_person("police")
    login(crew)
    crew_phone = subscribe(client)
    login(officer)
    officer_phone = subscribe(client)
    for n in range(3 * worker.batch):
        queue_one(crew, f"received {n}")
    push.enqueue(officer, "police.alert", {"title": "alert", "body": "x"},
                 urgency=Urgency.HIGH)
    db.session.commit()
    assert worker.process_batch(worker.batch) == worker.batch
    assert [r.payload["title"] for r in push_service.delivered(officer_phone)] == ["alert"]
    # The crew's arrive in the order queued, the rest in the next batches.
    assert [r.payload["title"] for r in push_service.delivered(crew_phone)] == [
        f"received {n}" for n in range(worker.batch - 1)]
    assert worker.tick() == 2 * worker.batch + 1
    assert [r.payload["title"] for r in push_service.delivered(crew_phone)] == [
        f"received {n}" for n in range(3 * worker.batch)]


@pytest.mark.parametrize("spread", ["devices", "cases"])
def test_a_batch_is_sent_side_by_side(push_app, clock, login, client, subscribe, spread):
    """Each send waits on a push service far away: a batch's sends overlap, so a
    slow service costs the batch one wait, not one per message. Here each of four
    sends waits until all four are in flight: one after another, none would be.
    Four devices of one person, or one officer's phone alerted of four cases."""
    from api.push.worker import SendResult

    person = make_person("manager")
    login(person)
    if spread == "devices":
        for _ in range(4):
            subscribe(client)
        queue_one(person)
    else:
        subscribe(client)
        crew = make_person("crew")
        for _ in range(4):
            push.enqueue(person, "police.alert", {"title": "alert", "body": "x"},
                         incident=make_incident(crew), urgency=Urgency.HIGH)
        db.session.commit()
    together = threading.Barrier(4, timeout=10)

    def send(row, data):
        try:
            together.wait()
        except threading.BrokenBarrierError:
            return SendResult(None, error="sent alone")
        return SendResult(201)

    worker = PushWorker(push_app, clock=clock, send=send, name="side-by-side")
    try:
        assert worker.tick() == 4
    finally:
        worker.close()
    rows = outbox()
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 4, [r.last_error for r in rows]


def test_people_without_devices_get_no_rows(push_app):
    assert push.enqueue(make_person("crew"), "test", {}) == []


# --- Push service answers ---------------------------------------------------


@pytest.mark.parametrize("gone", [404, 410])
def test_404_and_410_delete_the_subscription_and_its_queued_messages(
        push_app, worker, push_service, login, client, gone, subscribe):
    person = make_person("crew")
    login(person)
    dead = subscribe(client)
    alive = subscribe(client)
    push_service.answer(dead, gone)
    queue_one(person, "first")
    queue_one(person, "second")
    worker.tick()
    assert db.session.scalar(select(PushSubscription).where(
        PushSubscription.endpoint == dead.endpoint)) is None
    assert len(push_service.delivered(alive)) == 2
    assert len(push_service.posts(dead)) == 1  # the second was never tried
    dead_rows = [r for r in outbox() if r.status == OutboxStatus.GONE]
    assert len(dead_rows) == 2 and all(r.subscription_id is None for r in dead_rows)
    tried = [r for r in dead_rows if r.attempt_log]
    assert len(tried) == 1
    assert [(a.outcome, a.status_code) for a in tried[0].attempt_log] == [
        (AttemptOutcome.GONE, gone)]


def test_a_device_gone_while_its_messages_of_two_cases_are_in_flight(
        push_app, worker, push_service, login, client, subscribe):
    """Two cases' messages to one phone go side by side; the push service takes one
    and then says the subscription is gone: the one is sent, the other gone, the
    subscription deleted, and the worker goes on."""
    crew = make_person("crew")
    login(crew)
    phone = subscribe(client)
    push_service.answer(phone, 201, 410)
    for _ in range(2):
        push.enqueue(crew, "incident.received", {"title": "received", "body": "x"},
                     incident=make_incident(crew))
    db.session.commit()
    assert worker.tick() == 2
    db.session.expire_all()
    assert sorted(r.status for r in outbox()) == [OutboxStatus.GONE, OutboxStatus.SENT]
    assert db.session.scalar(select(PushSubscription).where(
        PushSubscription.endpoint == phone.endpoint)) is None
    assert worker.tick() == 0


def test_429_waits_for_retry_after_then_succeeds(push_app, worker, push_service, login,
                                                 client, clock, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, 429, retry_after=120)
    row, = queue_one(person)
    worker.tick()
    db.session.refresh(row)
    first = row.attempt_log[0]
    assert (first.outcome, first.status_code, first.retry_after) == (
        AttemptOutcome.RETRY, 429, 120)
    assert row.status == OutboxStatus.PENDING
    assert row.next_attempt_at == first.attempted_at + timedelta(seconds=120)
    clock.advance(60)
    assert worker.tick() == 0  # not before Retry-After
    clock.advance(61)
    assert worker.tick() == 1
    db.session.refresh(row)
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert len(push_service.delivered(sub)) == 1 and len(push_service.posts(sub)) == 2


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(push_app, worker, push_service,
                                                              login, client, clock, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, 500, 503)
    row, = queue_one(person)
    delays = []
    for _ in range(3):
        worker.tick()
        db.session.refresh(row)
        if row.status != OutboxStatus.PENDING:
            break
        delays.append(row.next_attempt_at - row.attempt_log[-1].attempted_at)
        clock.advance(delays[-1].total_seconds())
    assert delays == [timedelta(seconds=10), timedelta(seconds=20)]
    assert [(a.outcome, a.status_code) for a in row.attempt_log] == [
        (AttemptOutcome.RETRY, 500), (AttemptOutcome.RETRY, 503), (AttemptOutcome.SENT, 201)]
    assert row.status == OutboxStatus.SENT
    assert len(push_service.delivered(sub)) == 1


def test_gives_up_after_the_limit_and_records_it(push_app, worker, push_service, login,
                                                client, clock, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, 500, 500, 500, 500, 500)
    row, = queue_one(person)
    for _ in range(10):
        worker.tick()
        clock.advance(600)
    db.session.refresh(row)
    assert row.status == OutboxStatus.FAILED and row.attempts == 4
    assert [a.outcome for a in row.attempt_log] == [AttemptOutcome.RETRY] * 3 + [
        AttemptOutcome.GAVE_UP]
    assert len(push_service.posts(sub)) == 4


def test_dropped_connections_and_timeouts_are_retried(push_app, worker, push_service, login,
                                                      client, clock, subscribe):
    push_app.config["PUSH_SEND_TIMEOUT"] = 0.5
    worker = PushWorker(push_app, clock=clock)
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, "drop", "hang")
    row, = queue_one(person)
    for _ in range(3):
        worker.tick()
        clock.advance(600)
    db.session.refresh(row)
    outcomes = [(a.outcome, a.status_code) for a in row.attempt_log]
    assert outcomes == [(AttemptOutcome.RETRY, None)] * 2 + [(AttemptOutcome.SENT, 201)]
    assert "Timeout" in row.attempt_log[1].error or "timed out" in row.attempt_log[1].error


@pytest.mark.parametrize("status", [400, 403, 413])
def test_other_client_errors_fail_at_once(push_app, worker, push_service, login, client,
                                          clock, status, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, status)
    row, = queue_one(person)
    worker.tick()
    clock.advance(3600)
    worker.tick()
    db.session.refresh(row)
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    assert [a.outcome for a in row.attempt_log] == [AttemptOutcome.FAILED]


def test_a_message_past_its_ttl_is_not_sent(push_app, worker, push_service, login, client,
                                            clock, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    row, = push.enqueue(person, "test", {"title": "late"}, ttl=60)
    db.session.commit()
    clock.advance(61)
    worker.tick()
    db.session.refresh(row)
    assert row.status == OutboxStatus.FAILED and push_service.posts(sub) == []
    assert [a.outcome for a in row.attempt_log] == [AttemptOutcome.GAVE_UP]


def test_retry_after_may_be_an_http_date():
    now = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Mon, 01 Jun 2026 10:02:00 GMT", now) == 120
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_payload_is_kept_within_push_size_limits():
    from api.push.messages import MAX_PAYLOAD_BYTES, fit, size

    doc = {"title": "t", "body": "ж" * 5000}
    assert size(fit(doc)) <= MAX_PAYLOAD_BYTES and doc["body"].endswith("…")


def test_topic_is_a_valid_rfc8030_topic():
    import re

    topic = push.topic_for("6f1c8a8e-0000-4000-8000-000000000001")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic)


# --- The worker thread of the one-process run -------------------------------


def test_worker_thread_is_off_unless_configured(push_app):
    assert start_worker_thread(push_app) is None


@pytest.mark.skipif(bool(PG_URL), reason="the PostgreSQL fixture shares one connection "
                    "across the test; the worker pair test covers threads there")
def test_worker_thread_delivers_in_the_background(push_app, push_service, login, client, subscribe):
    push_app.config.update(PUSH_WORKER_THREAD=True, PUSH_POLL_SECONDS=0.05)
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    queue_one(person)
    thread, stop = start_worker_thread(push_app)
    try:
        deadline = time.monotonic() + 20  # a deadline for a hung test, not a timing check
        while not push_service.delivered(sub) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert len(push_service.delivered(sub)) == 1
    assert not thread.is_alive()


def test_flask_push_worker_once_and_status(push_app, runner, push_service, login, client,
                                           subscribe):
    person = make_person("crew")
    login(person)
    subscribe(client)
    queue_one(person)
    result = runner.invoke(args=["push", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert len(push_service.delivered()) == 1
    assert "sent: 1" in runner.invoke(args=["push", "status"]).output


def test_urgency_values_are_rfc8030():
    assert {u.value for u in Urgency} == {"very-low", "low", "normal", "high"}


def test_a_corrected_time_reaches_the_post_with_its_part_and_what_it_moved(
        scene, client, worker, push_service):
    # Tapped 00:30 on 7 March 2026 and first stated as the evening before (not
    # yet in force); corrected to 00:10, the article applies: the officer's
    # phone gets the corrected time and part, and the note that it now applies.
    rec = record(kind="threat", tapped_at="2026-03-07T00:30:00+05:00",
                 occurred_at="2026-03-06T23:30:00+05:00")
    sync(client, rec)
    worker.tick()
    alert, = push_service.delivered(scene["officer_sub"])
    assert "06.03.2026 23:30" in alert.payload["body"]  # happened · logged
    assert "07.03.2026 00:30" in alert.payload["body"]
    assert alert.payload["incident"]["classification"] == {"status": "outside", "part": None}

    sync(client, {**rec, "revision": 2, "occurred_at": "2026-03-07T00:10:00+05:00"})
    worker.tick()
    _, corrected = push_service.delivered(scene["officer_sub"])
    p = corrected.payload
    assert p["type"] == "incident.time_corrected" and p["lang"] == "kk"
    assert p["title"] == f"{p['case_number']} ісі: оқиға уақыты нақтыланды"
    assert p["body"].startswith("Болған уақыты 07.03.2026 00:10 · тіркелген уақыты "
                                "07.03.2026 00:30")
    assert "380-3-бап, 1-бөлік" in p["body"]
    assert "енді ҚР ҚК 380-3-бабы қолданылады" in p["body"]  # entered the article's scope
    assert p["incident"]["classification"] == {"status": "within", "part": 1}
    assert p["incident"]["occurred_at"] == "2026-03-06T19:10:00+00:00"
    assert corrected.urgency == "high"
    # The crew member's own edit: no push back to them about it.
    assert len(push_service.delivered(scene["crew_sub"])) == 1


def test_a_correction_awaiting_a_manager_asks_them_and_tells_the_crew_the_outcome(
        scene, client, worker, push_service, login, subscribe, frozen_clock):
    frozen_clock["value"] = datetime(2027, 1, 8, 0, 0, tzinfo=UTC)  # 05:00 in Almaty
    manager = make_person("manager", station=scene["station"], language="en")
    desk = client.application.test_client()
    login(manager, on=desk)
    manager_sub = subscribe(desk)
    rec = record(kind="violence", tapped_at="2027-01-08T00:20:00+05:00")
    sync(client, rec, sent_at="2027-01-08T05:00:00+05:00")
    worker.tick()
    # 23:40 on 31 December 2026: eight days before the tap, and another MCI year.
    stated = "2026-12-31T23:40:00+05:00"
    res = sync(client, {**rec, "revision": 2, "occurred_at": stated},
               sent_at="2027-01-08T05:00:00+05:00")["results"][0]
    assert res["status"] == "pending"
    worker.tick()
    ask, = push_service.delivered(manager_sub)
    assert ask.payload["type"] == "incident.time_pending"
    assert "31.12.2026 23:40" in ask.payload["body"] and "08.01.2027 00:20" in ask.payload["body"]
    assert "from 2027 to 2026: fines follow the MCI of 2026" in ask.payload["body"]
    assert ask.payload["incident"]["occurred_at_pending"] == "2026-12-31T18:40:00+00:00"

    # Stated too early at the first sync itself: the managers are asked as well.
    early = record(kind="threat", tapped_at="2027-01-08T00:30:00+05:00",
                   occurred_at="2026-12-20T10:00:00+05:00")
    first = sync(client, early, sent_at="2027-01-08T05:00:00+05:00")["results"][0]
    assert first["status"] == "created" and first["pending"] == ["occurred_at"]
    worker.tick()
    assert push_service.delivered(manager_sub)[-1].payload["type"] == "incident.time_pending"
    assert push_service.delivered(manager_sub)[-1].payload["incident_id"] == early["id"]

    response = desk.post(f"/api/v1/review/incidents/{rec['id']}/time-correction",
                         json={"decision": "confirm", "occurred_at": stated})
    assert response.status_code == 200
    worker.tick()
    told = push_service.delivered(scene["crew_sub"])[-1].payload
    assert told["type"] == "incident.time_corrected" and told["lang"] == "ru"
    assert told["title"] == f"Дело {told['case_number']}: уточнение времени подтверждено"
    assert told["body"].startswith("Произошло 31.12.2026 23:40 · зарегистрировано "
                                   "08.01.2027 00:20")
    assert "Статья 380-3 часть 3" in told["body"]
    # The crew's phone stops showing the correction as waiting (sw.js applies this).
    assert told["incident"]["occurred_at_pending"] is None
    officer = push_service.delivered(scene["officer_sub"])[-1].payload
    assert officer["type"] == "incident.time_corrected" and "31.12.2026 23:40" in officer["body"]
