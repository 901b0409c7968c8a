"""Pushes iOS keeps: every kind Qorgau sends shows a notification, carries the
Declarative Web Push members (so iOS 18.4+ shows it with no service worker),
and has the Urgency and TTL of its kind.

iOS revokes a site's push subscription after three pushes that show nothing.
Each kind is made here the way the app makes it (a sync, a re-route, an
escalation, the police's acknowledgement, ЕРДР number and closing, a new
passkey), sent by the real worker to the loopback push service
(tests/push_service.py), which decrypts it and keeps the headers; then, in
Chromium, each decrypted payload goes into the real service worker.
"""

import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from api.db import utcnow
from api.extensions import db
from api.push import service as push
from tests.browser import deliver, notifications, open_app
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync

# The push_app, push_service, clock, worker and subscribe fixtures.
pytest_plugins = ["tests.push_service"]

ROOT = Path(__file__).resolve().parent.parent
POLICE = "/api/v1/police/incidents"

# Police alerts (and an SOS, an incident marked police-needed-now) are urgent
# and worth little after an hour; everything else is a confirmation or news.
DELIVERY = {
    "police.alert": ("high", "PUSH_TTL_ALERT"),
    "police.escalation": ("high", "PUSH_TTL_ALERT"),
    "police.rerouted": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.received": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.rerouted": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.acknowledged": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.erdr": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.closed": ("normal", "PUSH_TTL_DEFAULT"),
    # Someone may be signing in as them right now.
    "account.passkey_added": ("high", "PUSH_TTL_DEFAULT"),
    # The stated time corrected: it may move the part the officer investigates;
    # for the crew member it is news.
    "incident.time_corrected": ({"officer": "high", "crew": "normal"}, "PUSH_TTL_DEFAULT"),
    "incident.time_pending": ("normal", "PUSH_TTL_DEFAULT"),
    "incident.time_rejected": ("normal", "PUSH_TTL_DEFAULT"),
    # Check-in timers (api/checkin): the reminder and "nobody checked in" are alarms;
    # "checked in safe" stands an alarm down, so it is urgent too but keeps a day.
    "checkin.reminder": ("high", "PUSH_TTL_ALERT"),
    "checkin.overdue": ("high", "PUSH_TTL_ALERT"),
    "checkin.safe": ("high", "PUSH_TTL_DEFAULT"),
    "police.checkin_safe": ("high", "PUSH_TTL_DEFAULT"),
}


def kinds_in_the_code() -> set[str]:
    """Every push kind a literal in api/ names: a new kind must join DELIVERY."""
    found = set()
    for path in (ROOT / "api").rglob("*.py"):
        found |= set(re.findall(r'"((?:incident|police|account|checkin)\.[a-z_]+)"',
                                path.read_text()))
    return found


def every_kind(push_app, push_service, client, login, subscribe, worker, clock):
    """Make each kind of push the way the app does; returns [(kind, role, Received)]."""
    first, second = make_post(name="City Hospital No. 4"), make_post(name="City Hospital No. 7")
    station = make_station(default_post=first)
    people = {"officer_first": make_person("police", post=first, language="kk"),
              "officer_second": make_person("police", post=second, language="en"),
              "manager": make_person("manager", station=station, language="ru"),
              "crew": make_person("crew", station=station, language="ru")}
    clients, subs = {}, {}
    for name, person in people.items():
        clients[name] = client.application.test_client()
        login(person, on=clients[name])
        subs[name] = subscribe(clients[name])
    ident = uuid.uuid4()
    crew = clients["crew"]
    sync(crew, record(ident, kind="violence", police_needed=True))
    worker.tick()  # incident.received, police.alert
    sync(crew, record(ident, revision=2, kind="violence", police_needed=True,
                      destination_post_id=second.id))
    worker.tick()  # incident.rerouted, police.alert to the new post, police.rerouted
    clock.advance(push_app.config["POLICE_ESCALATE_AFTER_SECONDS"] + 60)
    worker.tick()  # police.escalation
    officer = clients["officer_second"]
    assert officer.post(f"{POLICE}/{ident}/acknowledge").status_code == 200
    assert officer.put(f"{POLICE}/{ident}/erdr",
                       json={"erdr_number": "267500031000123"}).status_code == 200
    assert officer.post(f"{POLICE}/{ident}/status",
                        json={"status": "closed", "note": "Передано в суд"}).status_code == 200
    # The crew states when it happened: shortly before the tap (the post is told),
    # then ten days before it (a manager must confirm), which the manager rejects.
    sync(crew, record(ident, revision=3, kind="violence", police_needed=True,
                      destination_post_id=second.id, occurred_at="2026-06-01T09:10:00+05:00"))
    sync(crew, record(ident, revision=4, kind="violence", police_needed=True,
                      destination_post_id=second.id, occurred_at="2026-05-22T09:10:00+05:00"))
    assert clients["manager"].post(
        f"/api/v1/review/incidents/{ident}/time-correction",
        json={"decision": "reject", "occurred_at": "2026-05-22T09:10:00+05:00"}).status_code == 200
    # A check-in timer nobody answers (the clock is POLICE_ESCALATE_AFTER_SECONDS + 60
    # ahead): the reminder, the manager, the police (an incident), then "I'm safe".
    ahead = push_app.config["POLICE_ESCALATE_AFTER_SECONDS"] + 60
    timer = str(uuid.uuid4())
    assert crew.post("/api/v1/checkin/timers", json={
        "id": timer, "address": "ул. Абая, д. 10", "minutes": 10,
        "started_at": utcnow().isoformat()}).status_code == 201
    clock.advance(600 - 110 - ahead)
    worker.tick()  # checkin.reminder
    clock.advance(111)
    worker.tick()  # checkin.overdue
    clock.advance(push_app.config["CHECKIN_POLICE_AFTER_SECONDS"] + 1)
    worker.tick()  # police.alert (the timer's incident)
    assert crew.post(f"/api/v1/checkin/timers/{timer}/safe").status_code == 200
    # (checkin.safe to the manager, police.checkin_safe to the post)
    # A passkey added to the crew member's account (as api.auth announces it).
    push.notify_passkey_added(SimpleNamespace(person=people["crew"], device_label="iPhone",
                                              created_at=utcnow(), id=1))
    db.session.commit()
    worker.tick()
    role = {name: name.split("_")[0] for name in subs}
    return [(r.payload["type"], role[name], r)
            for name, sub in subs.items() for r in push_service.delivered(sub)]


@pytest.fixture
def sent(push_app, push_service, client, login, subscribe, worker, clock):
    return every_kind(push_app, push_service, client, login, subscribe, worker, clock)


def test_each_kind_has_its_urgency_and_ttl(push_app, sent):
    assert set(DELIVERY) == kinds_in_the_code()
    assert {kind for kind, _, _ in sent} == set(DELIVERY)  # every kind was really sent
    for kind, role, received in sent:
        urgency, ttl = DELIVERY[kind]
        if isinstance(urgency, dict):
            urgency = urgency[role]
        assert (kind, received.urgency, received.ttl) == \
            (kind, urgency, str(push_app.config[ttl]))


def test_each_kind_is_a_declarative_web_push_message(push_app, sent):
    base = push_app.config["BASE_URL"].rstrip("/")
    for kind, _, received in sent:
        doc = received.payload
        assert doc["web_push"] == 8030 and doc["mutable"] is True, kind
        note = doc["notification"]
        # What iOS shows on its own says what our service worker shows elsewhere.
        assert note == {"title": doc["title"], "body": doc["body"],
                        "navigate": base + doc["url"], "lang": doc["lang"], "dir": "ltr",
                        "tag": doc["tag"], "silent": False}, kind
        assert note["title"] and note["body"], kind
        assert note["navigate"].startswith(("http://", "https://")), kind


def test_a_long_body_is_shortened_in_both_copies(push_app):
    from api.push import messages

    body = "Очень длинное описание. " * 200
    doc = messages.account_payload("account.passkey_added", "ru", "Заголовок", body,
                                   tag="passkey-1", created_at=utcnow())
    assert messages.size(doc) <= messages.MAX_PAYLOAD_BYTES
    assert doc["body"].endswith("…") and doc["notification"]["body"] == doc["body"]


# ---------------------------------------------------------------- in the service worker

def shown_after(context, page, live, payload):
    """Deliver `payload` (a JSON document, or raw text) into the service worker;
    the one notification it shows."""
    page.evaluate("""async () => {
        const reg = await navigator.serviceWorker.ready;
        for (const n of await reg.getNotifications()) n.close();
    }""")
    deliver(context, page, live, payload)
    for _ in range(200):
        shown = notifications(page)
        if shown:
            assert len(shown) == 1, shown
            return shown[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"no notification for {payload!r}")


@pytest.mark.browser
def test_every_push_shows_a_notification_in_the_service_worker(push_app, push_service, client,
                                                               login, subscribe, worker, clock,
                                                               context, live):
    push_app.config["BASE_URL"] = live.url  # the origin the service worker runs on
    sent = every_kind(push_app, push_service, client, login, subscribe, worker, clock)
    context.grant_permissions(["notifications"])
    page = open_app(context)
    for kind, _, received in sent:
        doc = received.payload
        shown = shown_after(context, page, live, doc)
        assert shown["title"] == doc["notification"]["title"], kind
        assert shown["body"] == doc["notification"]["body"], kind
        assert shown["tag"] == doc["tag"], kind
        assert shown["url"] == doc["url"], kind  # the same page as `navigate`
        assert shown["requireInteraction"] is doc["require_interaction"], kind

    # A declarative message and nothing else (another server, a future version).
    only = {"web_push": 8030, "notification": {
        "title": "Case QG-75-2026-000001", "body": "Police acknowledged",
        "navigate": live.url + "/#/incidents", "tag": "declarative-only", "silent": False}}
    shown = shown_after(context, page, live, only)
    assert (shown["title"], shown["body"], shown["url"]) == \
        ("Case QG-75-2026-000001", "Police acknowledged", live.url + "/#/incidents")
    # Even a payload that is not ours, or not JSON, shows something.
    assert shown_after(context, page, live, {})["title"] == "Qorgau"
    assert shown_after(context, page, live, "not json")["title"] == "Qorgau"
    # A link to another site is never opened from a notification.
    away = {"web_push": 8030, "notification": {"title": "x", "navigate": "https://evil.example/"}}
    assert shown_after(context, page, live, away)["url"] == "/"
    expect(page.locator("#log-incident")).to_be_visible()
