"""Fixtures in the flaskr style: `app`, `client`, `runner`.

The suite runs against SQLite by default and against PostgreSQL when
QORGAU_TEST_DATABASE_URL names one (`./qorgau test` runs both passes). The
schema comes from the migrations, exactly as in production. Each test gets a
clean database: on SQLite a fresh copy of a migrated template file, on
PostgreSQL a transaction that is rolled back after the test.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import scoped_session, sessionmaker

from api import create_app
from api.config import normalise_database_url
from api.extensions import db
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PWA,
    ROOT,
    TIMEOUT,
    Handler,
    Live,
    build_pwa,
)
from tests.factories import make_person, make_post, make_station
from tests.nginx_helpers import (
    GUNICORN,
    HOST,
    Nginx,
    answers_health,
    free_port,
    make_certificate,
    nginx_command,
    render_for_test,
    stop,
    wait_for,
)

PG_URL = os.environ.get("QORGAU_TEST_DATABASE_URL")

# The loopback push service of tests/push_service.py (plain http on 127.0.0.1) is
# refused by the app unless this test-only setting is on (api/push/endpoints.py).
# Set in the environment, so every app the suite makes has it, gunicorn and the
# `flask push worker` processes it starts included; the tests of that defence
# turn it off on their app.
os.environ["QORGAU_PUSH_ALLOW_LOOPBACK_FOR_TESTS"] = "true"


def base_config(database_url: str) -> dict:
    return {"TESTING": True, "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-not-for-production"}


def migrate_to_head(database_url: str) -> None:
    app = create_app(base_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A migrated database for the session (the template file on SQLite)."""
    if PG_URL:
        migrate_to_head(PG_URL)
        return PG_URL
    template = tmp_path_factory.mktemp("db") / "template.db"
    migrate_to_head(f"sqlite:///{template}")
    return f"sqlite:///{template}"


@pytest.fixture
def app(database_url, tmp_path):
    if PG_URL:
        app = create_app(base_config(database_url))
        with app.app_context():
            connection = db.engine.connect()
            outer = connection.begin()
            # Every session in the test joins this transaction through savepoints,
            # so commits inside the code under test are undone at the end.
            # (A plain SQLAlchemy session: Flask-SQLAlchemy's own one would pick
            # the engine over this connection.)
            scoped = scoped_session(
                sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
                scopefunc=_app_ctx_id)
            original, db.session = db.session, scoped
            try:
                yield app
            finally:
                scoped.remove()
                db.session = original
                outer.rollback()
                connection.close()
                db.engine.dispose()
        return
    copy = tmp_path / "test.db"
    shutil.copyfile(make_url(database_url).database, copy)
    app = create_app(base_config(f"sqlite:///{copy}"))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def empty_database_url(tmp_path):
    """A brand-new empty database of the kind under test, dropped afterwards."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = make_url(normalise_database_url(PG_URL))
    name = f"{url.database}_empty"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def login(client):
    """Sign a person in on a test client (the passkey ceremony is tested on its own).

    Sets the session cookie and sends the session's CSRF token on every request,
    as the PWA does. Returns the AuthSession.
    """
    from api.auth.access import CSRF_HEADER, SESSION_COOKIE
    from api.auth.sessions import start_session

    def _login(person, on=None):
        target = on or client
        token, session = start_session(person, user_agent="pytest")
        target.set_cookie(SESSION_COOKIE, token, domain="localhost")
        target.environ_base["HTTP_" + CSRF_HEADER.upper().replace("-", "_")] = \
            session.csrf_token
        return session

    return _login


class LiveServer:
    """The real app served over HTTP in a thread (see the `live_server` fixture)."""

    def __init__(self, app, server):
        self.app = app
        self.server = server
        self.port = server.server_port
        # localhost, not 127.0.0.1: WebAuthn's RP ID must be a domain, and
        # http://localhost counts as a secure context.
        self.url = f"http://localhost:{self.port}"


@pytest.fixture
def live_server(database_url, tmp_path):
    """The app on http://localhost:<free port> against its own migrated SQLite file.

    RP_ID is "localhost" and ALLOWED_ORIGINS/BASE_URL are this server's origin,
    so passkey ceremonies from a browser (e.g. Chromium's virtual authenticator)
    verify. Use `live_server.app.app_context()` to set up data in the test; tweak
    `live_server.app.config` at any time (settings are read per request).
    Always SQLite: the browser tests run in the SQLite pass.
    """
    import threading

    from werkzeug.serving import make_server

    path = tmp_path / "live.db"
    if database_url.startswith("sqlite:"):
        shutil.copyfile(make_url(database_url).database, path)
    else:
        migrate_to_head(f"sqlite:///{path}")
    app = create_app({**base_config(f"sqlite:///{path}"), "RP_ID": "localhost"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(app, server)
    app.config.update(ALLOWED_ORIGINS=[live.url], BASE_URL=live.url)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- browsers (tests/browser.py)

@pytest.fixture
def pwa_dir(tmp_path):
    """A built copy of pwa/, so a test may change it without touching the repository."""
    target = tmp_path / "pwa"
    shutil.copytree(ROOT / "pwa", target)
    build_pwa.build(target)
    return target


@pytest.fixture
def live(live_server, pwa_dir):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise
    return Live(live_server, pwa_dir)


@pytest.fixture
def crew(live):
    """The browser tests' crew member on the live server: a feldsher at a station whose
    default police post is a hospital's (the person's id). API test modules that sign
    in through `login` define their own `crew`."""
    with live.app.app_context():
        post = make_post(name="City Hospital No. 7")
        return make_person("crew", station=make_station(default_post=post),
                           position="feldsher", language="en").id


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(pw):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(browser, live):
    ctx = browser.new_context(base_url=live.url, locale="en-GB")
    ctx.set_default_timeout(TIMEOUT)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(PWA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page(base_url):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base_url}/blank.html")
            yield page
        finally:
            browser.close()


# ---------------------------------------------------------------- nginx (tests/nginx_helpers.py)
# Module-scoped: each of test_nginx.py and test_nginx_browser.py gets its own.

@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[str]:
    """The real app under gunicorn with the shipped settings; yields host:port."""
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db

    tmp = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{tmp / 'qorgau.db'}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x" * 32})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QORGAU_", "DATABASE_"))}
    env.update(DATABASE_URL=url, QORGAU_SECRET_KEY="test-secret-key-" + "x" * 32,
               QORGAU_PROXY_COUNT="1", QORGAU_RP_ID=HOST)
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2",
             "api:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    try:
        wait_for(lambda: answers_health(port), "gunicorn", proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def start_nginx(tmp_path_factory, certificate):
    """Start a fresh nginx (its own rate-limit zones) with the project's config."""
    started: list[Nginx] = []

    def _start(upstream: str, pwa_root: Path = PWA, **overrides) -> Nginx:
        prefix = tmp_path_factory.mktemp("nginx")
        server = render_for_test(prefix, *certificate, pwa_root, upstream, **overrides)
        log = prefix / "nginx.log"
        with log.open("wb") as out:
            server.proc = subprocess.Popen(nginx_command(prefix, server.conf),
                                           stdout=out, stderr=subprocess.STDOUT)
        started.append(server)

        def listening():
            with socket.create_connection(("127.0.0.1", server.https_port), timeout=1):
                return True

        wait_for(listening, "nginx", server.proc, log)
        return server

    yield _start
    for server in started:
        stop(server.proc, signal.SIGQUIT)  # graceful: let workers finish
