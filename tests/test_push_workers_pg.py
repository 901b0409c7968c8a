"""Two push workers on one PostgreSQL database never send a row twice.

Real threads, real connections and committed data, so this runs on a
database of its own (the per-test rolled-back transaction of the other tests
would hide rows from the second worker). PostgreSQL only: SQLite has no row
locks and runs a single worker.
"""

import threading
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from api import create_app
from api.extensions import db
from api.orgs.models import Person
from api.push import service as push
from api.push.models import OutboxStatus, PushAttempt, PushOutbox, PushSubscription
from api.push.worker import PushWorker
from tests.conftest import PG_URL
from tests.push_service import PushService, vapid_pem

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="needs QORGAU_TEST_DATABASE_URL")]

ROWS = 40


def wait_for(condition, seconds=60):
    """Poll until `condition()`; the deadline only stops a hung test."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def pg_app(empty_database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_database_url,
                      "PUSH_VAPID_PRIVATE_KEY": vapid_pem(), "PUSH_POLL_SECONDS": 600})
    with app.app_context():
        upgrade()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def seed(app, service, n):
    """One person with `n` devices and one committed message each."""
    with app.app_context():
        person = Person(display_name="Manager", role="manager")
        db.session.add(person)
        db.session.flush()
        subs = []
        for _ in range(n):
            browser = service.subscribe()
            subs.append(browser)
            db.session.add(PushSubscription(person_id=person.id, endpoint=browser.endpoint,
                                            p256dh=browser.p256dh,
                                            auth=browser.to_json()["keys"]["auth"]))
        db.session.flush()
        push.enqueue(person, "test", {"title": "hello", "body": "x"})
        db.session.commit()
        person_id = person.id
        db.session.remove()
    return person_id, subs


def test_skip_locked_hands_a_claimed_row_to_nobody_else(pg_app):
    service = PushService()
    try:
        seed(pg_app, service, 2)
        inside, release = threading.Event(), threading.Event()
        claimed = {}

        def slow_send(row, data):
            claimed["a"] = row.id
            inside.set()
            release.wait(30)
            from api.push.worker import SendResult
            return SendResult(201)

        def run_a():
            with pg_app.app_context():
                PushWorker(pg_app, send=slow_send, name="a").process_one()
                db.session.remove()

        thread = threading.Thread(target=run_a)
        thread.start()
        assert inside.wait(30)
        # Worker A holds its row's lock mid-send: B must take the other row.
        with pg_app.app_context():
            seen = []

            def record_send(row, data):
                from api.push.worker import SendResult
                seen.append(row.id)
                return SendResult(201)

            b = PushWorker(pg_app, send=record_send, name="b")
            assert b.process_one() is True
            assert b.process_one() is False  # nothing else is free
            db.session.remove()
        release.set()
        thread.join(30)
        assert len(seen) == 1 and seen[0] != claimed["a"]
    finally:
        service.close()


def test_two_workers_send_every_row_exactly_once_and_wake_on_notify(pg_app):
    service = PushService()
    service.expected_vapid_key = None
    stop = threading.Event()
    threads = []
    try:
        person_id, _ = seed(pg_app, service, ROWS)
        workers = [PushWorker(pg_app, name=f"w{i}") for i in range(2)]
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
        for t in threads:
            t.start()
        assert wait_for(lambda: len(service.posts()) >= ROWS)

        # Both idle now, polling only every 600 s: a new row arrives by NOTIFY alone.
        with pg_app.app_context():
            person = db.session.get(Person, person_id)
            late = service.subscribe()
            db.session.add(PushSubscription(person_id=person.id, endpoint=late.endpoint,
                                            p256dh=late.p256dh,
                                            auth=late.to_json()["keys"]["auth"]))
            db.session.flush()
            db.session.query(PushSubscription).filter(
                PushSubscription.endpoint != late.endpoint).delete()
            push.enqueue(person, "test", {"title": "late", "body": "y"})
            db.session.commit()
            db.session.remove()
        assert wait_for(lambda: len(service.delivered(late)) == 1, seconds=30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        service.close()

    endpoints = [r.endpoint for r in service.posts()]
    assert len(endpoints) == len(set(endpoints)) == ROWS + 1
    assert len(service.delivered()) == ROWS + 1
    with pg_app.app_context():
        statuses = db.session.execute(select(PushOutbox.status, func.count())
                                      .group_by(PushOutbox.status)).all()
        assert dict(statuses) == {OutboxStatus.SENT: ROWS + 1}
        per_row = db.session.execute(select(PushAttempt.outbox_id, func.count())
                                     .group_by(PushAttempt.outbox_id)).all()
        assert all(count == 1 for _, count in per_row) and len(per_row) == ROWS + 1
        db.session.remove()
