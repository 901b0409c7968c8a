"""Fixtures in the flaskr style: `app`, `client`, `runner`.

The suite runs against SQLite by default and against PostgreSQL when
QORGAU_TEST_DATABASE_URL names one (`./qorgau test` runs both passes). The
schema comes from the migrations, exactly as in production. Each test gets a
clean database: on SQLite a fresh copy of a migrated template file, on
PostgreSQL a transaction that is rolled back after the test.
"""

import os
import shutil

import pytest
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import scoped_session, sessionmaker

from api import create_app
from api.config import normalise_database_url
from api.extensions import db

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
