"""What every browser test shares: Debian's Chromium, never a downloaded one; the
production CSP and the shim that serves the app under it; the PWA served by the
shared `live_server` (Live) and the helpers that drive it. The fixtures built on
these (pw, browser, pwa_dir, live, context, base_url, page) are in conftest.py."""

import contextlib
import json
import re
import sys
import time
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.sessions import start_session
from api.extensions import db
from api.law import service as law_service
from api.orgs.models import Person

ROOT = Path(__file__).resolve().parent.parent
PWA = ROOT / "pwa"
sys.path.insert(0, str(ROOT / "scripts"))
import build_pwa  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Background networking off: this machine's network is closed, and Chromium
# would otherwise keep trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT = 15_000  # ms; a ceiling for waits, never an assertion on speed

# The Content-Security-Policy nginx sends in production (nginx/; checked by test_nginx).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'; object-src 'none'")


def serve_with_csp(page, url: str) -> None:
    """The dev server sets no CSP (nginx does): serve the page at `url` under it."""

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response,
                      headers={**response.headers, "content-security-policy": CSP})

    page.route(url, with_csp)


# ---------------------------------------------------------------- the PWA on live_server

class Recorder:
    """WSGI middleware that notes every request (method, path, status) the app answered."""

    def __init__(self, app):
        self.app = app
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]

        def recording_start(status, headers, exc_info=None):
            self.calls.append((method, path, int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start)

    def count(self, method, path):
        return sum(1 for m, p, _ in self.calls if m == method and p == path)


class Live:
    """The shared `live_server` (tests/conftest.py) serving a built copy of pwa/."""

    def __init__(self, live_server, pwa_dir: Path):
        self.app = live_server.app
        self.url = live_server.url
        self.pwa_dir = pwa_dir
        self.app.config["PWA_DIR"] = str(pwa_dir)  # read per request
        self.recorder = Recorder(self.app.wsgi_app)
        self.app.wsgi_app = self.recorder

    def has_route(self, rule: str, method: str = "GET") -> bool:
        return any(r.rule == rule and method in r.methods for r in self.app.url_map.iter_rules())

    def rebuild(self) -> str:
        build_id, _ = build_pwa.build(self.pwa_dir)
        return build_id


def sign_in(context, live, person_id):
    with live.app.app_context():
        token, _ = start_session(db.session.get(Person, person_id), user_agent="playwright")
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live.url}])


def api_client(app, person_id):
    """A Flask test client signed in as the person (another phone of theirs, say),
    its CSRF header sent with every request."""
    with app.app_context():
        token, session = start_session(db.session.get(Person, person_id), user_agent="pytest")
        csrf = session.csrf_token
    client = app.test_client()
    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
    client.environ_base["HTTP_" + CSRF_HEADER.upper().replace("-", "_")] = csrf
    return client


# ---------------------------------------------------------------- helpers

def wait_until(page, script: str, arg=None, timeout: float = TIMEOUT / 1000):
    """Evaluate `script` (it may be async) until it returns something truthy.

    page.wait_for_function does not await a Promise: an async predicate's
    Promise is truthy at once, so such a wait returned before checking anything.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise PlaywrightTimeout(f"not true within {timeout} s: {script.strip()[:200]}")
        page.wait_for_timeout(100)


def open_app(context, path="/"):
    """Open the app and wait until its service worker controls the page (the shell is cached)."""
    page = context.new_page()
    page.goto(path)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(page.locator("#unsynced")).to_have_attribute("data-count", re.compile(r"\d+"))
    # The rules are fetched once online and kept in IndexedDB for offline use.
    wait_until(page, """async () => {
        const { getMeta } = await import('/js/store.js');
        return Boolean(await getMeta('rules'));
    }""")
    return page


def unsynced(page):
    return page.locator("#unsynced")


def incidents_in_idb(page):
    return page.evaluate("""async () => {
        const { listIncidents } = await import('/js/store.js');
        return await listIncidents();
    }""")


def tap(page, name="Log incident"):
    """Tap the big button; from another screen, first the crew bar's Home tab, as a
    person would (the big button shows on the home screen only)."""
    button = page.get_by_role("button", name=name, exact=True)
    if not button.is_visible():
        page.locator(".crew-nav a.crew-tab[href='#/']").click()
    button.click()
    # Once saved, the app opens the new incident's screen; wait for it, so the next
    # tap starts from where a person would be (a save that fails stays home).
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("location.hash.startsWith('#/incidents/')", timeout=5000)


# ---------------------------------------------------------------- law.js on a static server

class Handler(SimpleHTTPRequestHandler):
    """The PWA's files, the rules at their API path, and a blank page to run in."""

    def do_GET(self):
        if self.path == "/api/v1/law/rules":
            return self._send(law_service.rules_bytes(), "application/json")
        if self.path == "/blank.html":
            return self._send(b"<!doctype html><title>law.js</title>", "text/html")
        return super().do_GET()

    def _send(self, body: bytes, mimetype: str):
        self.send_response(200)
        self.send_header("Content-Type", mimetype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep pytest output clean
        pass


# ---------------------------------------------------------------- pushes into the service worker

def registration_id(context, page, live):
    """The DevTools session and the id of the app's service worker registration."""
    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        if any(r["scopeURL"].startswith(live.url) and not r["isDeleted"] for r in registrations):
            break
        page.wait_for_timeout(50)
    reg = next(r for r in registrations
               if r["scopeURL"].startswith(live.url) and not r["isDeleted"])
    return cdp, reg["registrationId"]


def deliver(context, page, live, payload):
    """A push message carrying `payload` (JSON, or raw text), into the service worker."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    cdp, reg = registration_id(context, page, live)
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": live.url, "registrationId": reg,
        "data": data})


def notifications(page):
    return page.evaluate("""async () => {
        const reg = await navigator.serviceWorker.ready;
        return (await reg.getNotifications()).map((n) => ({
            title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url,
            requireInteraction: n.requireInteraction }));
    }""")


def wait_for_notification(page, tag):
    for _ in range(200):
        shown = [n for n in notifications(page) if n["tag"] == tag]
        if shown:
            return shown[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"no notification {tag}: {notifications(page)}")
