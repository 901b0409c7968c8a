"""A Web Push service on 127.0.0.1, for end-to-end tests of the push worker.

It plays both sides a real push service sits between: it makes subscriptions
the way a browser does (a P-256 key pair and a 16-byte auth secret per
subscription, the private half kept here), and it receives pywebpush's POSTs
as a push service would: it checks the VAPID Authorization header (an ES256
JWT for aud = this origin, signed by the server's key), decrypts the
aes128gcm body with http_ece and the subscription's own private key, records
TTL, Urgency and Topic, and answers whatever the test asked for: 201 by
default, or 404, 410, 429 (with Retry-After), 500, a dropped connection, or
a hang (for the client's timeout).
"""

import base64
import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What a browser keeps for one subscription, and what it hands the page."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64url(self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    def to_json(self, device_id=None) -> dict:
        """PushSubscription.toJSON(), as the PWA sends it."""
        body = {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)}}
        if device_id:
            body["device_id"] = device_id
        return body


@dataclass
class Received:
    """One POST the push service received."""

    endpoint: str
    status: int | None          # what we answered (None: dropped or hung)
    headers: dict
    payload: dict | None        # decrypted JSON, when decryption worked
    vapid_claims: dict | None   # the verified JWT claims
    vapid_key: str | None       # the k= public key of the VAPID header
    errors: list = field(default_factory=list)
    at: float = 0.0             # time.time() when the request arrived (bench/push_latency.py)

    @property
    def ttl(self):
        return self.headers.get("ttl")

    @property
    def urgency(self):
        return self.headers.get("urgency")

    @property
    def topic(self):
        return self.headers.get("topic")


class _Server(ThreadingHTTPServer):
    # A listen backlog of 5 (socketserver's default) would drop the connections a
    # worker opens side by side, each then retried by TCP a second later.
    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True  # back on the same port after a simulated outage


class PushService:
    def __init__(self):
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.received: list[Received] = []
        self.scripted: dict[str, deque] = defaultdict(deque)
        self.expected_vapid_key: str | None = None
        self.release = threading.Event()  # ends hung requests at close
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            # As the real push services: connections kept alive between messages.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def setup(self):
                super().setup()
                with service.lock:
                    service.connections.add(self.connection)

            def finish(self):
                with service.lock:
                    service.connections.discard(self.connection)
                super().finish()

            def do_POST(self):
                service._handle(self)

        self.connections: set = set()  # kept alive between messages
        self._listen(Handler, 0)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _listen(self, handler, port: int) -> None:
        self.server = _Server(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop_listening(self) -> None:
        """Refuse new connections and cut the kept-alive ones, as a service that is down."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.release.set()
        self.stop_listening()

    # The browser's side ---------------------------------------------------

    def subscribe(self) -> BrowserSubscription:
        sub = BrowserSubscription(endpoint=f"{self.origin}/push/{secrets.token_urlsafe(16)}",
                                  private_key=ec.generate_private_key(ec.SECP256R1()),
                                  auth_secret=os.urandom(16))
        self.subscriptions[sub.endpoint] = sub
        return sub

    # What the test scripts ------------------------------------------------

    def answer(self, sub: BrowserSubscription, *statuses, retry_after=None):
        """Answer the next POSTs to `sub` with these statuses (201 after they run out).

        A status may also be "drop" (close without an answer) or "hang" (never answer).
        """
        for status in statuses:
            self.scripted[sub.endpoint].append((status, retry_after))

    def delivered(self, sub: BrowserSubscription | None = None) -> list[Received]:
        """Messages accepted (201) with a verified signature and a decrypted payload."""
        with self.lock:
            return [r for r in self.received if r.status == 201 and not r.errors
                    and (sub is None or r.endpoint == sub.endpoint)]

    def posts(self, sub: BrowserSubscription | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if sub is None or r.endpoint == sub.endpoint]

    # The push service's side ----------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler):
        arrived = time.time()
        endpoint = self.origin + handler.path
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        sub = self.subscriptions.get(endpoint)
        with self.lock:
            status, retry_after = (self.scripted[endpoint].popleft()
                                   if self.scripted[endpoint] else (201, None))
        if sub is None:
            status = 404
        record = Received(endpoint, status if isinstance(status, int) else None, headers,
                          None, None, None, at=arrived)
        self._verify_vapid(headers.get("authorization", ""), record)
        if sub is not None:
            self._decrypt(sub, headers, body, record)
        with self.lock:
            self.received.append(record)
        if status == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if status == "hang":
            self.release.wait(30)
            return
        handler.send_response(status)
        if status == 201:
            handler.send_header("Location", f"{self.origin}/message/{secrets.token_hex(8)}")
        elif 300 <= status < 400:  # a redirect: elsewhere on this service (never to follow)
            handler.send_header("Location", f"{self.origin}/redirected/{secrets.token_hex(8)}")
        if retry_after is not None:
            handler.send_header("Retry-After", str(retry_after))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _verify_vapid(self, authorization: str, record: Received) -> None:
        """RFC 8292: `vapid t=<JWT>, k=<public key>`; ES256 over header.claims."""
        try:
            scheme, _, params = authorization.partition(" ")
            assert scheme.lower() == "vapid", f"scheme {scheme!r}"
            parts = dict(p.strip().split("=", 1) for p in params.split(","))
            token, key = parts["t"], parts["k"]
            record.vapid_key = key
            signing_input, _, signature = token.rpartition(".")
            header = json.loads(b64url_decode(signing_input.split(".")[0]))
            assert header.get("alg") == "ES256", f"alg {header.get('alg')!r}"
            raw = b64url_decode(signature)
            assert len(raw) == 64, "ES256 signature must be 64 bytes"
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                       int.from_bytes(raw[32:], "big"))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                                  b64url_decode(key))
            public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(b64url_decode(signing_input.split(".")[1]))
            assert claims.get("aud") == self.origin, f"aud {claims.get('aud')!r}"
            assert claims.get("exp", 0) > time.time(), "expired"
            assert claims.get("exp", 0) <= time.time() + 24 * 3600, "exp over 24 h ahead"
            assert str(claims.get("sub", "")).startswith(("mailto:", "https:")), "sub"
            if self.expected_vapid_key is not None:
                assert key == self.expected_vapid_key, "signed by another VAPID key"
            record.vapid_claims = claims
        except (AssertionError, KeyError, ValueError, InvalidSignature) as err:
            record.errors.append(f"vapid: {err!r}")

    def _decrypt(self, sub: BrowserSubscription, headers: dict, body: bytes,
                 record: Received) -> None:
        try:
            assert headers.get("content-encoding") == "aes128gcm", "content-encoding"
            plain = http_ece.decrypt(body, private_key=sub.private_key,
                                     auth_secret=sub.auth_secret, version="aes128gcm")
            record.payload = json.loads(plain)
        except Exception as err:  # any failure to decrypt is a test failure, recorded
            record.errors.append(f"decrypt: {err!r}")


# ---------------------------------------------------------------------------
# Fixtures and helpers shared by the push, routing and police tests.


_VAPID_PEM: list[str] = []


def vapid_pem() -> str:
    """One VAPID key for the whole test session (as PUSH_VAPID_PRIVATE_KEY)."""
    if not _VAPID_PEM:
        key = ec.generate_private_key(ec.SECP256R1())
        _VAPID_PEM.append(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode())
    return _VAPID_PEM[0]


class Clock:
    """The worker's clock: real time plus whatever the test has skipped ahead."""

    def __init__(self):
        self.offset = timedelta(0)

    def __call__(self):
        from api.db import utcnow

        return utcnow() + self.offset

    def advance(self, seconds: float):
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def push_app(app):
    """The app with a known VAPID key and quick, small retry settings."""
    from api.push.vapid import public_key

    app.config.update(PUSH_VAPID_PRIVATE_KEY=vapid_pem(), PUSH_RETRY_BASE_SECONDS=10,
                      PUSH_RETRY_MAX_SECONDS=600, PUSH_MAX_ATTEMPTS=4, PUSH_SEND_TIMEOUT=5)
    app.extensions.pop("qorgau_vapid", None)
    app.vapid_public_key = public_key(app)
    return app


@pytest.fixture
def push_service(push_app):
    service = PushService()
    service.expected_vapid_key = push_app.vapid_public_key
    yield service
    service.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def worker(push_app, clock):
    from api.push.worker import PushWorker

    return PushWorker(push_app, clock=clock, name="test-worker")


@pytest.fixture
def subscribe(push_service):
    """subscribe(client, device_id=None): subscribe the person signed in on `client` as
    the PWA does; returns the browser side."""

    def _subscribe(client, device_id=None) -> BrowserSubscription:
        sub = push_service.subscribe()
        response = client.post("/api/v1/push/subscriptions", json=sub.to_json(device_id))
        assert response.status_code == 201, response.get_json()
        return sub

    return _subscribe
