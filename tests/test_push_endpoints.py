"""Push endpoints cannot reach inside the network (api/push/endpoints.py).

A subscription's endpoint is where the server later POSTs from inside its
network: only https, only hosts that resolve to public addresses, and (the
default) only the known push services' hosts; checked at subscribe (a 422
naming `endpoint`) and again at send, against the address actually connected
to; redirects are never followed. The suite's loopback push service is allowed
by a test-only setting (tests/conftest.py), turned off here where it matters.

This sandbox has no DNS for public names: where a test needs one, it answers
for api.push.endpoints.resolve (the one place the server resolves a push host).
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from api.extensions import db
from api.push import endpoints
from api.push import service as push
from api.push.endpoints import EndpointRefused, Policy, check_endpoint, pinned_session
from api.push.models import AttemptOutcome, OutboxStatus, PushOutbox, PushSubscription
from tests.factories import make_person
from tests.fault_helpers import free_port
from tests.push_service import BrowserSubscription

pytest_plugins = ["tests.push_service"]

SUBS = "/api/v1/push/subscriptions"
PUBLIC_IP = "93.184.216.34"


def queue_one(person):
    """A bare notification (no incident) for `person`, committed."""
    rows = push.enqueue(person, "test", {"title": "hello", "body": "hello"})
    db.session.commit()
    return rows


def body(endpoint: str, push_service=None) -> dict:
    sub = (push_service.subscribe() if push_service else None)
    if sub is None:
        from cryptography.hazmat.primitives.asymmetric import ec
        sub = BrowserSubscription(endpoint, ec.generate_private_key(ec.SECP256R1()),
                                  b"0123456789abcdef")
    return {**sub.to_json("phone"), "endpoint": endpoint}


@pytest.fixture
def no_loopback(app):
    app.config["PUSH_ALLOW_LOOPBACK_FOR_TESTS"] = False
    return app


def answers(monkeypatch, *addresses_in_turn):
    """The resolver answers these address lists in turn (the last one from then on)."""
    queue = [list(a) for a in addresses_in_turn]

    def resolve(host, port):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(endpoints, "resolve", resolve)


INSIDE = ["https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/",
          "https://localhost:22/", "http://127.0.0.1:{api_port}/api/v1/auth/me",
          "http://localhost:5432/", "https://[::1]/", "https://100.64.0.1/",
          "https://[::ffff:10.0.0.1]/", "https://192.168.1.1/", "https://0.0.0.0/",
          "http://fcm.googleapis.com/fcm/send/abc"]


@pytest.mark.parametrize("hosts", [None, []], ids=["known-hosts-only", "any-public-host"])
@pytest.mark.parametrize("endpoint", INSIDE)
def test_endpoints_inside_the_network_are_a_422_naming_endpoint(
        no_loopback, client, login, endpoint, hosts):
    if hosts is not None:
        no_loopback.config["PUSH_ENDPOINT_HOSTS"] = hosts
    login(make_person("crew"))
    endpoint = endpoint.format(api_port=free_port())
    response = client.post(SUBS, json=body(endpoint))
    assert response.status_code == 422, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == ["endpoint"]
    assert db.session.scalars(select(PushSubscription)).first() is None


def test_a_public_name_that_resolves_inside_is_refused(no_loopback, client, login, monkeypatch):
    no_loopback.config["PUSH_ENDPOINT_HOSTS"] = []
    answers(monkeypatch, [PUBLIC_IP, "10.1.2.3"])  # one of its addresses is private
    login(make_person("crew"))
    response = client.post(SUBS, json=body("https://push.example.net/x"))
    assert response.status_code == 422
    assert "private network" in response.get_json()["errors"][0]["message"]


@pytest.mark.parametrize("endpoint,ok", [
    ("https://fcm.googleapis.com/fcm/send/abc", True),
    ("https://updates.push.services.mozilla.com/wpush/v2/abc", True),
    ("https://api.push.apple.com/3/device/abc", True),
    ("https://db5p.notify.windows.com/w/?token=abc", True),
    ("https://push.example.net/abc", False),
    ("https://fcm.googleapis.com.evil.example/abc", False),
    ("https://push.apple.com.evil.example/abc", False),
    ("https://notpush.apple.com/abc", False),
])
def test_by_default_only_the_known_push_services(app, client, login, monkeypatch, endpoint, ok):
    answers(monkeypatch, [PUBLIC_IP])
    login(make_person("crew"))
    response = client.post(SUBS, json=body(endpoint))
    assert response.status_code == (201 if ok else 422), response.get_json()


def test_the_restriction_can_be_lifted_but_not_the_address_check(no_loopback, client, login,
                                                                 monkeypatch):
    no_loopback.config["PUSH_ENDPOINT_HOSTS"] = []
    answers(monkeypatch, [PUBLIC_IP])
    login(make_person("crew"))
    assert client.post(SUBS, json=body("https://push.example.net/abc")).status_code == 201


def test_loopback_needs_the_test_only_setting(no_loopback):
    with pytest.raises(EndpointRefused):
        check_endpoint("http://127.0.0.1:9/push/x", Policy.of(no_loopback.config))
    no_loopback.config["PUSH_ALLOW_LOOPBACK_FOR_TESTS"] = True
    assert check_endpoint("http://127.0.0.1:9/push/x", Policy.of(no_loopback.config)) == \
        ["127.0.0.1"]


# --- at send ----------------------------------------------------------------------------------

def test_dns_rebinding_after_subscribing_reaches_nothing(
        push_app, worker, push_service, client, login, monkeypatch):
    """Public when the phone subscribed; the loopback push service's address when the
    worker sends: refused, nothing arrives, and the message is not tried again."""
    push_app.config.update(PUSH_ALLOW_LOOPBACK_FOR_TESTS=False, PUSH_ENDPOINT_HOSTS=[])
    person = make_person("crew")
    login(person)
    port = push_service.server.server_address[1]
    answers(monkeypatch, [PUBLIC_IP], ["127.0.0.1"])
    assert client.post(SUBS, json=body(f"https://rebind.example.net:{port}/push/x")
                       ).status_code == 201
    row, = queue_one(person)
    worker.tick()
    db.session.refresh(row)
    assert push_service.posts() == []
    assert row.status == OutboxStatus.FAILED and "endpoint refused" in row.last_error
    assert [a.outcome for a in row.attempt_log] == [AttemptOutcome.FAILED]


class Echo:
    """A plain HTTP server on 127.0.0.1 that notes the Host header of each request."""

    def __init__(self):
        self.hosts = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                echo.hosts.append(self.headers["Host"])
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_worker_connects_to_the_address_it_checked(monkeypatch):
    """The name is resolved once per connection, by the check, and the socket goes to
    the checked address (the system resolver knows no such name here); the Host
    header keeps the name. A second answer that differs is checked in its turn."""
    echo = Echo()
    try:
        session = pinned_session(lambda: Policy(None, True))
        answers(monkeypatch, ["127.0.0.1"])
        url = f"http://pinned.example.invalid:{echo.port}/push/x"
        assert session.post(url, data=b"x", timeout=5).status_code == 201
        assert echo.hosts == [f"pinned.example.invalid:{echo.port}"]
        # The same name now resolving to a private address: refused at connect.
        fresh = pinned_session(lambda: Policy(None, False))
        answers(monkeypatch, ["10.0.0.7"])
        with pytest.raises(EndpointRefused):
            fresh.post(f"https://pinned.example.invalid:{echo.port}/push/x", data=b"x",
                       timeout=5)
        assert len(echo.hosts) == 1
    finally:
        echo.close()


def test_a_redirect_from_the_push_service_is_not_followed(
        push_app, worker, push_service, client, login, subscribe):
    person = make_person("crew")
    login(person)
    sub = subscribe(client)
    push_service.answer(sub, 307)
    row, = queue_one(person)
    worker.tick()
    db.session.refresh(row)
    posts = push_service.posts()
    assert [p.endpoint for p in posts] == [sub.endpoint]  # nothing to /redirected/...
    assert row.status == OutboxStatus.FAILED
    assert [(a.outcome, a.status_code) for a in row.attempt_log] == [
        (AttemptOutcome.FAILED, 307)]
    assert db.session.scalar(select(PushOutbox.id).where(
        PushOutbox.status == OutboxStatus.SENT)) is None
