"""Web Push in the PWA, in real Chromium: turning notifications on and off,
a push delivered into the service worker, and the server's worker end to end.

The one external part replaced: the browser's own push service. Headless
Chromium on this machine cannot reach Google's (FCM), so its
PushManager.subscribe() fails ("Registration failed - permission denied").
The tests therefore replace only PushManager.prototype.subscribe and
getSubscription (page.add_init_script) with ones that return a subscription
whose endpoint is the loopback push service of tests/push_service.py and
whose keys come from a key pair the test generated there. Everything else is
real: the permission, the page's code, the API, the database, the worker's
VAPID-signed aes128gcm request (decrypted by the loopback service with the
subscription's own private key), and the service worker's push handler
(driven with the DevTools protocol's ServiceWorker.deliverPushMessage).
"""

import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from api.extensions import db
from api.push import messages
from api.push.models import PushSubscription
from api.push.vapid import public_key
from tests.browser import (
    deliver,
    incidents_in_idb,
    open_app,
    sign_in,
    tap,
    unsynced,
    wait_for_notification,
)
from tests.factories import make_person, make_post, make_station
from tests.push_service import PushService, vapid_pem

pytestmark = pytest.mark.browser

FAKE_PUSH = """
(() => {
  const SUB = %s;
  const STORE = "__test_push_subscription";
  const calls = { requestPermission: 0 };
  window.__testPush = calls;
  const decode = (s) => Uint8Array.from(
    atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length %% 4)) %% 4)),
    (c) => c.charCodeAt(0));
  const encode = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  function make(key) {
    return {
      endpoint: SUB.endpoint, expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: decode(key).buffer },
      getKey: (name) => decode(SUB.keys[name]).buffer,
      toJSON: () => ({ endpoint: SUB.endpoint, expirationTime: null, keys: SUB.keys }),
      unsubscribe: async () => { localStorage.removeItem(STORE); return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    if (!options || options.userVisibleOnly !== true) {
      throw new DOMException("userVisibleOnly", "NotAllowedError");
    }
    const key = encode(options.applicationServerKey);
    localStorage.setItem(STORE, key);
    return make(key);
  };
  PushManager.prototype.getSubscription = async function () {
    const key = localStorage.getItem(STORE);
    return key ? make(key) : null;
  };
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => {
    calls.requestPermission += 1;
    return ask(...args);
  };
})();
"""


@pytest.fixture
def push_service(live):
    live.app.config.update(PUSH_VAPID_PRIVATE_KEY=vapid_pem(), PUSH_SEND_TIMEOUT=5)
    live.app.extensions.pop("qorgau_vapid", None)
    service = PushService()
    service.expected_vapid_key = public_key(live.app)
    yield service
    service.close()


def fake_push(context, sub):
    context.add_init_script(FAKE_PUSH % json.dumps(sub.to_json()))


def crew_member(live, language="en"):
    with live.app.app_context():
        post = make_post(name="City Hospital No. 7")
        return make_person("crew", station=make_station(default_post=post),
                           position="feldsher", language=language).id


def subscriptions(live, person_id):
    with live.app.app_context():
        rows = db.session.scalars(select(PushSubscription).where(
            PushSubscription.person_id == person_id)).all()
        return [(r.endpoint, r.device_id, r.p256dh, r.auth) for r in rows]


# ---------------------------------------------------------------- on and off

def test_turn_on_notifications_then_sign_out_removes_the_subscription(context, live,
                                                                      push_service):
    sub = push_service.subscribe()
    person = crew_member(live)
    context.grant_permissions(["notifications"])
    fake_push(context, sub)
    sign_in(context, live, person)
    page = open_app(context)
    # Never a permission prompt on page load.
    assert page.evaluate("window.__testPush.requestPermission") == 0
    page.goto("/#/account")
    expect(page.locator("#auth-whoami")).to_be_visible()
    status = page.locator("#push-control-status")
    expect(status).to_have_text("Notifications are off for this device.")
    assert subscriptions(live, person) == []

    page.get_by_role("button", name="Turn on notifications").click()
    expect(status).to_have_text("Notifications are on for this device.")
    assert page.evaluate("window.__testPush.requestPermission") == 1
    device_id = page.evaluate("""async () => {
        const { getMeta } = await import('/js/store.js');
        return await getMeta('device_id');
    }""")
    assert device_id
    keys = sub.to_json()["keys"]
    assert subscriptions(live, person) == [(sub.endpoint, device_id, keys["p256dh"],
                                            keys["auth"])]
    # Subscribed with the server's own VAPID key.
    assert page.evaluate("localStorage.getItem('__test_push_subscription')") == \
        public_key(live.app)
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#auth-signin")).to_be_visible()
    assert subscriptions(live, person) == []
    assert page.evaluate("localStorage.getItem('__test_push_subscription')") is None


def test_blocked_by_the_browser_is_said_plainly(context, live, push_service):
    person = crew_member(live, language="ru")
    context.add_init_script("""Object.defineProperty(Notification, "permission",
        { get: () => "denied" });""")
    sign_in(context, live, person)
    page = open_app(context, "/#/account")
    page.get_by_role("button", name="English").click()
    status = page.locator("#push-control-status")
    expect(status).to_have_text(re.compile("blocked by the browser"))
    expect(page.locator("#push-control .push-toggle")).to_be_hidden()
    page.get_by_role("button", name="Қазақша").click()
    expect(status).to_have_text(re.compile("браузер бұғаттады"))


# ---------------------------------------------------------------- into the service worker

def test_a_push_shows_the_notification_and_updates_my_incidents_offline(context, live):
    context.grant_permissions(["notifications"])
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    [record] = incidents_in_idb(page)
    # The document the server sends (api.push.messages.payload) for "police acknowledged".
    case = "QG-75-2026-000042"
    incident = SimpleNamespace(
        id=record["id"], case_number=case, status="acknowledged", police_needed=False,
        legal_status="within", legal_part=1, post=None,
        occurred_at=datetime.fromisoformat(record["tapped_at"]),
        logged_at=datetime.fromisoformat(record["tapped_at"]), occurred_at_pending=None)
    title = messages.text("acknowledged_title", "en", case=case)
    body = messages.text("acknowledged_body", "en", post="City Hospital No. 7",
                         officer="Lt. Serikbayev") + f" ({case})"
    with live.app.app_context():  # the declarative copy's link is on the app's BASE_URL
        payload = messages.payload("incident.acknowledged", incident, "en", title, body,
                                   created_at=datetime.now(UTC))
    deliver(context, page, live, payload)

    shown = wait_for_notification(page, f"incident-{record['id']}")
    assert shown["title"] == f"Police acknowledged case {case}"
    assert case in shown["title"] and case in shown["body"]
    assert shown["url"] == f"/#/incidents/{record['id']}"
    for _ in range(200):  # wait_for_function would not await an async predicate
        if page.evaluate("""async (id) => {
            const { getIncident } = await import('/js/store.js');
            const r = await getIncident(id);
            return Boolean(r.server && r.server.status === 'acknowledged');
        }""", record["id"]):
            break
        page.wait_for_timeout(50)
    [after] = incidents_in_idb(page)
    assert after["server"]["case_number"] == case
    assert after["pending"] == 1  # a push never takes a record out of the outbox

    # Still offline: My incidents shows what the push said.
    page.goto("/#/incidents")
    item = page.locator(".incident-item").first
    expect(item.locator(".state-case")).to_have_text(f"Case {case}")
    expect(item).to_contain_text("Acknowledged by police")


def test_a_new_passkey_push_without_an_incident_shows_and_links_to_my_devices(context, live):
    context.grant_permissions(["notifications"])
    page = open_app(context)
    # The document the server sends (api.push.messages) when a passkey is added.
    now = datetime.now(UTC)
    person = SimpleNamespace(language=SimpleNamespace(value="en"), role="crew")
    title, body = messages.passkey_added(person, "Intruder's laptop", now)
    with live.app.app_context():
        payload = messages.account_payload("account.passkey_added", "en", title, body,
                                           tag="passkey-7", created_at=now,
                                           require_interaction=True)
    deliver(context, page, live, payload)

    shown = wait_for_notification(page, "passkey-7")
    assert shown["title"] == "New passkey on your Qorgau account"
    assert shown["body"].startswith("“Intruder's laptop” was added on ")
    assert shown["body"].endswith("If this was not you, tell your station manager.")
    assert shown["url"] == "/#/account"
    assert shown["requireInteraction"] is True
    assert incidents_in_idb(page) == []  # no incident in it, none made up


# ---------------------------------------------------------------- end to end

def test_synced_record_is_pushed_through_the_worker_in_the_crew_language(context, live,
                                                                         push_service):
    from api.push.worker import PushWorker

    needs = {("/api/v1/incidents/sync", "POST")}
    for rule, method in needs:
        if not live.has_route(rule, method):
            pytest.skip(f"waits on {method} {rule}")
    sub = push_service.subscribe()
    person = crew_member(live, language="kk")
    context.grant_permissions(["notifications"])
    fake_push(context, sub)
    sign_in(context, live, person)
    page = open_app(context, "/#/account")
    page.locator("#push-control .push-toggle").click()
    expect(page.locator("#push-control-status")).to_have_attribute("data-state", "on")
    assert len(subscriptions(live, person)) == 1

    page.goto("/#/")
    # The screen speaks the phone's language (en-GB here, issue 13); the push, sent
    # by the server with the phone possibly closed, the profile's (Kazakh).
    tap(page, "Log incident")
    expect(page.locator("#incident-body .state-case")).to_be_visible()  # synced
    [record] = incidents_in_idb(page)
    case = record["server"]["case_number"]
    assert case

    with live.app.app_context():
        sent = PushWorker(live.app, name="test-worker").drain()
    assert sent >= 1
    [received] = push_service.delivered(sub)
    doc = received.payload
    assert doc["type"] == "incident.received"
    assert doc["lang"] == "kk"
    assert doc["case_number"] == case
    assert doc["title"] == messages.text("received_title", "kk", case=case)
    assert case in doc["title"]
    assert messages.text("post_notified", "kk", post="City Hospital No. 7") in doc["body"]
    assert doc["tag"] == f"incident-{record['id']}"

    # And that very document, decrypted, shown by the service worker.
    deliver(context, page, live, doc)
    shown = wait_for_notification(page, f"incident-{record['id']}")
    assert shown["title"] == doc["title"] and shown["body"] == doc["body"]
