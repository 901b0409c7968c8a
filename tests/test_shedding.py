"""Load shedding in the app (api/shedding.py): a request that waited too long
and a sync over the per-process limit are answered at once with 503 and a
Retry-After from the backlog, and nothing of theirs is stored or lost.
(nginx's part, limit_conn and the X-Request-Start stamp: test_nginx_shedding.py.)
"""

import threading
import time

import requests
from sqlalchemy import func, select

from api.extensions import db
from api.incidents import records
from api.incidents.models import Incident
from api.shedding import queued_for
from tests.factories import make_person, make_station
from tests.incident_helpers import URL, batch, record


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(Incident))


def test_a_request_that_waited_past_the_deadline_is_refused_before_any_work(
        client, login, app):
    login(make_person("crew", station=make_station(), position="feldsher"))
    app.config["QUEUE_DEADLINE_SECONDS"] = 5
    rec = record()
    waited = {"X-Request-Start": f"t={time.time() - 12.3:.3f}"}
    reply = client.post(URL, json=batch(rec), headers=waited)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "13"  # the queue it waited in, rounded up
    assert reply.content_type == "application/problem+json"
    problem = reply.get_json()
    assert problem["type"].endswith("/server-busy") and "safe on your phone" in problem["detail"]
    assert stored() == 0
    # Reads are shed the same way; the health check never is.
    assert client.get("/api/v1/incidents", headers=waited).status_code == 503
    assert client.get("/api/health", headers=waited).status_code == 200
    # The phone retries (nginx stamps the new request afresh): stored once.
    fresh = {"X-Request-Start": f"t={time.time() - 0.2:.3f}"}
    reply = client.post(URL, json=batch(rec), headers=fresh)
    assert reply.status_code == 200
    assert reply.get_json()["results"][0]["status"] == "created"
    assert stored() == 1


def test_request_start_formats():
    now = 1_780_000_000.0
    assert queued_for("t=1779999990.250", now) == 9.75
    assert queued_for("1779999990250", now) == 9.75          # milliseconds
    assert abs(queued_for("t=1779999990250000", now) - 9.75) < 1e-6  # microseconds
    assert queued_for(f"t={now + 30}", now) == 0.0           # from the future: no wait
    for bad in (None, "", "t=", "t=soon", "t=nan", "t=-5", "t=inf"):
        assert queued_for(bad, now) is None


def test_a_sync_over_the_limit_in_flight_gets_503_at_once_and_nothing_is_lost(
        live_server, monkeypatch):
    """Real HTTP, real threads: one sync is held inside its transaction (by a
    hook, the way other domains join a sync); the next one is refused at once."""
    from api.auth.sessions import start_session

    app = live_server.app
    app.config["SYNC_MAX_IN_FLIGHT"] = 1
    with app.app_context():
        crew = make_person("crew", station=make_station(), position="feldsher")
        token, session = start_session(crew, user_agent="pytest")
        csrf = session.csrf_token
        db.session.remove()
    entered, release = threading.Event(), threading.Event()

    class Hold:
        def on_incidents_synced(self, batch_):
            entered.set()
            release.wait(30)

    monkeypatch.setattr(records, "incident_hooks", [*records.incident_hooks, Hold()])
    http = requests.Session()
    http.cookies.set("qorgau_session", token)
    http.headers["X-CSRF-Token"] = csrf
    first, second = record(), record()
    answers = {}
    holder = threading.Thread(target=lambda: answers.setdefault(
        "first", http.post(live_server.url + URL, json=batch(first), timeout=60)))
    holder.start()
    assert entered.wait(30)
    started = time.monotonic()
    refused = requests.post(live_server.url + URL, json=batch(second), timeout=60,
                            cookies={"qorgau_session": token},
                            headers={"X-CSRF-Token": csrf})
    assert time.monotonic() - started < 5  # at once, not after the held one
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["type"].endswith("/server-busy")
    release.set()
    holder.join(60)
    assert answers["first"].status_code == 200
    assert answers["first"].json()["results"][0]["status"] == "created"
    # The refused phone comes back after Retry-After: its record is stored, once.
    again = http.post(live_server.url + URL, json=batch(second, first), timeout=60)
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["created", "unchanged"]
    with app.app_context():
        assert stored() == 2
        db.session.remove()
