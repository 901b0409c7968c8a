"""nginx's part of load shedding and of limits that fit carrier NAT, with the
real nginx and the project's config in front of the real app under gunicorn.

* The syncs in flight are bounded (limit_conn): one more is answered at once
  with 503 problem+json and Retry-After, and the phone's retry is stored once.
* nginx stamps X-Request-Start, so a request that waited in gunicorn's queue
  past the API's deadline is refused by the app before any work.
* Authenticated API traffic is rate-limited per session: many phones behind
  one address (a carrier NAT) are not limited together, one phone is.
"""

import http.client
import json
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.nginx_helpers import (
    GUNICORN,
    HOST,
    answers_health,
    fetch,
    free_port,
    render,
    stop,
    tls_context,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
SYNC = "/api/v1/incidents/sync"


def body(*ids) -> bytes:
    return json.dumps({"device_id": "phone", "outbox_size": len(ids), "app_version": "t",
                       "sent_at": "2026-06-01T10:00:00+05:00",
                       "records": [{"id": i, "revision": 1,
                                    "tapped_at": "2026-06-01T09:30:00+05:00"} for i in ids]
                       }).encode()


@pytest.fixture(scope="module")
def held_app(tmp_path_factory):
    """gunicorn (one worker, one thread) running the app with a hook that holds
    every sync inside its transaction until the test says so; a crew session."""
    from flask_migrate import upgrade

    from api import create_app
    from api.auth.sessions import start_session
    from api.extensions import db
    from tests.factories import make_person, make_station

    tmp = tmp_path_factory.mktemp("held")
    url = f"sqlite:///{tmp / 'qorgau.db'}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x" * 32})
    with app.app_context():
        upgrade()
        crew = make_person("crew", station=make_station(), position="feldsher")
        token, session = start_session(crew, user_agent="pytest")
        csrf = session.csrf_token
        db.engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QORGAU_", "DATABASE_"))}
    env.update(DATABASE_URL=url, QORGAU_SECRET_KEY="test-secret-key-" + "x" * 32,
               QORGAU_PROXY_COUNT="1", QORGAU_QUEUE_DEADLINE_SECONDS="1",
               PYTHONPATH=str(ROOT))
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1",
             f"tests.held_app:create({str(tmp)!r})"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    try:
        wait_for(lambda: answers_health(port), "gunicorn", proc, log)
        yield {"upstream": f"127.0.0.1:{port}", "dir": tmp, "token": token, "csrf": csrf,
               "url": url}
    finally:
        (tmp / "release").touch()
        stop(proc)


def crew_headers(app) -> dict:
    return {"Cookie": f"qorgau_session={app['token']}", "X-CSRF-Token": app["csrf"],
            "Content-Type": "application/json"}


def stored_ids(url: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM incidents")]


def test_syncs_over_the_limit_in_flight_get_503_with_retry_after_and_nothing_is_lost(
        start_nginx, held_app):
    server = start_nginx(held_app["upstream"], sync_in_flight="1")
    held, entered, release = (held_app["dir"] / n for n in ("held", "entered", "release"))
    held.touch()
    first, second = "11111111-1111-4111-8111-111111111111", \
        "22222222-2222-4222-8222-222222222222"
    answers = {}
    holder = threading.Thread(target=lambda: answers.setdefault("first", fetch(
        server, "POST", SYNC, body(first), crew_headers(held_app))))
    holder.start()
    deadline = time.monotonic() + 30
    while not entered.exists():
        assert time.monotonic() < deadline, "the held sync never started"
        time.sleep(0.05)
    # The one sync allowed in flight is held: the next is refused at once by nginx.
    started = time.monotonic()
    refused = fetch(server, "POST", SYNC, body(second), crew_headers(held_app))
    assert time.monotonic() - started < 5
    assert refused.status == 503
    assert refused.header("Content-Type") == "application/problem+json"
    assert refused.header("Cache-Control") == "no-store"
    problem = refused.json()
    assert problem["status"] == 503 and problem["type"].endswith("/server-busy")
    assert "safe on your phone" in problem["detail"]
    assert refused.header("Retry-After") == "2"

    # Meanwhile a read waits in gunicorn's queue (its only thread is busy) past
    # the API's deadline (1 s here): nginx stamped it, so the app refuses it
    # before any work, with Retry-After from the time it waited.
    queued = {}
    reader = threading.Thread(target=lambda: queued.setdefault("list", fetch(
        server, "GET", "/api/v1/incidents", None, crew_headers(held_app))))
    reader.start()
    time.sleep(2.5)
    held.unlink()
    release.touch()
    holder.join(60)
    reader.join(60)
    assert answers["first"].status == 200
    assert answers["first"].json()["results"][0]["status"] == "created"
    late = queued["list"]
    assert late.status == 503, late.body
    assert late.json()["type"].endswith("/server-busy")
    assert int(late.header("Retry-After")) >= 2

    # The refused phone retries: its record is stored, once; nothing was lost.
    again = fetch(server, "POST", SYNC, body(second, first), crew_headers(held_app))
    assert again.status == 200
    assert [r["status"] for r in again.json()["results"]] == ["created", "unchanged"]
    stored = [uuid.UUID(i) for i in stored_ids(held_app["url"])]
    assert sorted(stored) == sorted([uuid.UUID(first), uuid.UUID(second)])


def _burst(server, n: int, cookies: list[str]) -> list[int]:
    """n GETs of an API path from one address over 8 keep-alive connections,
    request i carrying session cookie cookies[i % len(cookies)]."""

    def worker(k):
        conn = http.client.HTTPSConnection(HOST, server.https_port, timeout=10,
                                           context=tls_context(server))
        try:
            return [fetch(server, "GET", "/api/v1/no-such-thing", None,
                          {"Cookie": f"qorgau_session={cookies[i % len(cookies)]}"},
                          conn=conn).status for i in range(k, n, 8)]
        finally:
            conn.close()

    with ThreadPoolExecutor(8) as pool:
        return [s for part in pool.map(worker, range(8)) for s in part]


def test_phones_behind_one_address_are_limited_per_session(start_nginx, gunicorn):
    server = start_nginx(gunicorn)
    # 100 phones behind one carrier address, 5 requests each at once: more than
    # the per-address burst (300), and all answered.
    statuses = _burst(server, 500, [f"phone-session-{n:03d}" for n in range(100)])
    assert 429 not in statuses and statuses.count(404) == 500
    # One phone alone is still limited: a burst of 40, then 10 a second.
    statuses = _burst(server, 200, ["one-busy-phone"])
    assert 40 <= statuses.count(404) < 150 and 429 in statuses
    # (Requests without a session keep the per-address limit:
    # tests/test_nginx.py::test_rate_limit_answers_429.)


def test_render_refuses_a_bad_sync_in_flight(tmp_path):
    with pytest.raises(ValueError):
        render.render(tmp_path, sync_in_flight="0")
    with pytest.raises(ValueError):
        render.render(tmp_path, sync_in_flight="32; evil")
    conf = render.render(tmp_path / "ok", sync_in_flight="7").read_text()
    assert "limit_conn qorgau_sync_in_flight 7;" in conf
