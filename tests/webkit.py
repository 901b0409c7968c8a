"""WebKit, the engine of Safari on the iPhone, driven for real: Debian's WebKitGTK
(`webkit2gtk-driver`: WebKitWebDriver and its MiniBrowser) through Selenium, on a
private Xvfb display. WebKitGTK has service workers, IndexedDB and Web Locks,
and, like Safari, no Background Sync; it has no PushManager and no WebAuthn
either, so sign-in is a server-side session whose cookie the test sets.

The app runs in gunicorn (tests/fault_helpers.py), a real process on a fixed
port: a test stops it (every connection with it) and starts it again on the
same port, as a phone sees a server go away and come back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.fault_helpers import Gunicorn, free_port, wait_for

WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
SECRET_KEY = "webkit-tests-secret-key"
TIMEOUT = 20  # s; a ceiling for waits, never an assertion on speed


def webkit_available() -> bool:
    return all(Path(p).exists() for p in (WEBKIT_DRIVER, MINIBROWSER)) \
        and shutil.which("Xvfb") is not None


@pytest.fixture(scope="session")
def xvfb():
    """A private X display (Xvfb picks a free number and tells us on a pipe)."""
    if not webkit_available():
        pytest.fail("WebKitGTK is not installed: ./qorgau test installs webkit2gtk-driver "
                    "and xvfb")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24",
                             "-nolisten", "tcp"], pass_fds=[write],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def webkit(xvfb):
    """A fresh WebKitGTK browser (MiniBrowser in automation mode, ephemeral data)."""
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    options = Options()
    options.binary_location = MINIBROWSER
    options.add_argument("--automation")
    service = Service(executable_path=WEBKIT_DRIVER, env={**os.environ, "DISPLAY": xvfb})
    driver = webdriver.WebKitGTK(options=options, service=service)
    driver.set_script_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()


class AppServer:
    """The real app in gunicorn on one port, over a SQLite file of its own."""

    def __init__(self, db_url: str, tmp_path: Path):
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.tmp_path = tmp_path
        self.proc: Gunicorn | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {"QORGAU_SECRET_KEY": SECRET_KEY, "QORGAU_RP_ID": "localhost",
               "QORGAU_BASE_URL": self.url,
               "QORGAU_ALLOWED_ORIGINS": f'["{self.url}"]'}
        self.proc = Gunicorn(self.db_url, workers=2, env=env, port=self.port,
                             log_path=self.tmp_path / f"gunicorn-{self.starts}.log")
        self.proc.wait_ready()

    def stop(self) -> None:
        """Stop the process: the port refuses connections until start()."""
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        import socket

        def refused():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) != 0

        assert wait_for(refused, 10), "the server's port still answers"


@pytest.fixture
def app_server(database_url, tmp_path):
    """`app_server.app` (same database, same secret) sets up data; `app_server`
    runs the app in gunicorn. Always SQLite: browser tests run in the SQLite pass."""
    from api import create_app
    from api.extensions import db
    from tests.conftest import base_config, migrate_to_head

    path = tmp_path / "webkit.db"
    if database_url.startswith("sqlite:"):
        shutil.copyfile(make_url(database_url).database, path)
    else:
        migrate_to_head(f"sqlite:///{path}")
    url = f"sqlite:///{path}"
    server = AppServer(url, tmp_path)
    server.app = create_app({**base_config(url), "SECRET_KEY": SECRET_KEY,
                             "RP_ID": "localhost", "BASE_URL": server.url,
                             "ALLOWED_ORIGINS": [server.url]})
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with server.app.app_context():
            db.engine.dispose()


def sign_in(driver, server: AppServer, person_id: int) -> None:
    """A session made on the server, its cookie set in the browser (no WebAuthn here)."""
    from api.auth.access import SESSION_COOKIE
    from api.auth.sessions import start_session
    from api.extensions import db
    from api.orgs.models import Person

    with server.app.app_context():
        token, _ = start_session(db.session.get(Person, person_id), user_agent="webkit")
    driver.get(server.url + "/api/health")  # a cookie needs a page of its origin
    driver.add_cookie({"name": SESSION_COOKIE, "value": token, "path": "/",
                       "httpOnly": True})


def until(driver, body: str, *args, seconds: float = TIMEOUT):
    """Run `body` (see run()) until it returns something truthy; returns that."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = run(driver, body, *args)
        if last and not (isinstance(last, dict) and "error" in last):
            return last
        # Not faster: polled every 0.1 s, WebKitGTK 2.50 held back the page's own
        # timers here (the retry timer never fired while a test was asking).
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s; last answer {last!r} for: {body[:300]}")


def run(driver, body: str, *args):
    """Run `body` (an async function body using `args`) in the page; return its value."""
    return driver.execute_async_script(f"""
        const done = arguments[arguments.length - 1];
        const args = Array.from(arguments).slice(0, -1);
        (async () => {{ {body} }})().then(done, (err) => done({{ error: String(err) }}));
    """, *args)
