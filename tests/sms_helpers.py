"""The SMS fallback's test parts: the PWA's encoder run by node, and a loopback
HTTP server playing the SMS gateway (it signs and posts inbound webhooks to the
app, and takes the app's replies on its send API, as SMS Gateway for Android does)."""

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-webhook-secret"
WEBHOOK = "/api/v1/sms/inbound"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JsEncoder:
    """pwa/js/sms_codec.js in one node process, fed a line per message."""

    def __init__(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None:
            pytest.fail("node is needed to run the PWA's SMS encoder (./qorgau installs nodejs)")
        self.proc = subprocess.Popen([node, str(ROOT / "tests" / "sms_encode.mjs")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def encode(self, record: dict, key_id: int, key: bytes) -> str:
        self.proc.stdin.write(json.dumps({"record": record, "key": {
            "key_id": key_id, "key": b64url(key)}}) + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        if "error" in out:
            raise ValueError(out["error"])
        return out["body"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def signed(body: bytes, secret: str = SECRET, stamp: int | None = None) -> dict:
    """The headers SMS Gateway for Android signs a webhook with."""
    stamp = str(int(time.time()) if stamp is None else stamp)
    signature = hmac.new(secret.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Timestamp": stamp, "X-Signature": signature}


def webhook_body(text: str, sender: str = "+77015550101", event_id: str | None = None,
                 event: str = "sms:received") -> bytes:
    return json.dumps({
        "deviceId": "station-gateway-phone", "event": event, "id": event_id or uuid.uuid4().hex,
        "webhookId": "qorgau", "payload": {
            "messageId": hashlib.sha1(text.encode()).hexdigest()[:8], "message": text,
            "phoneNumber": sender, "simNumber": 1,
            "receivedAt": "2026-12-03T17:05:09.000+05:00"}}).encode()


class Gateway:
    """A loopback SMS gateway. `sent` is what it would have sent as SMS (one entry per
    message id: a second request with an id it has is answered 409 and not sent again).
    `answers` lists statuses for the next send requests; "drop" takes the message and
    closes the connection without an answer (the answer lost on the way)."""

    def __init__(self):
        self.sent: list[dict] = []
        self.requests: list[dict] = []
        self.answers: list = []
        self.auth: list[str | None] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append(data)
                gateway.auth.append(self.headers.get("Authorization"))
                answer = gateway.answers.pop(0) if gateway.answers else 202
                known = any(m["id"] == data["id"] for m in gateway.sent)
                if answer in ("drop", 202) and not known:
                    gateway.sent.append(data)
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status = 409 if known and answer == 202 else answer
                self.send_response(status)
                body = json.dumps({"id": data["id"], "state": "Pending"}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/message"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def deliver(self, app_url: str, text: str, *, sender: str = "+77015550101",
                event_id: str | None = None, secret: str = SECRET, stamp: int | None = None,
                body: bytes | None = None) -> tuple[int, dict]:
        """Post an incoming SMS to the app's webhook over HTTP, as the gateway phone does."""
        body = body or webhook_body(text, sender, event_id)
        request = urllib.request.Request(app_url + WEBHOOK, data=body, method="POST",
                                         headers=signed(body, secret, stamp))
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def post_sms(client, text: str, *, sender: str = "+77015550101", event_id: str | None = None,
             secret: str = SECRET, stamp: int | None = None):
    """The same webhook post through the Flask test client (for the PostgreSQL pass)."""
    body = webhook_body(text, sender, event_id)
    return client.post(WEBHOOK, data=body, headers=signed(body, secret, stamp))


@pytest.fixture(scope="module")
def js_encoder():
    encoder = JsEncoder()
    yield encoder
    encoder.close()


@pytest.fixture
def gateway():
    g = Gateway()
    yield g
    g.close()
