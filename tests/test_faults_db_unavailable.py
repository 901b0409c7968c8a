"""A database that cannot be reached is a 503 with Retry-After, never a 500.

In-process and quick, in both passes: a PostgreSQL URL on a port where
nothing listens gives the real driver's "connection refused"; other failures
are raised from a test route. (tests/test_faults.py stops a real server.)
"""

import logging

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from api import create_app
from api.db import database_unavailable, database_unavailable_in, describe_unavailable
from tests.fault_helpers import free_port


def _refused_app(**config):
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    return create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x", **config})


def test_no_database_server_is_503_problem_with_retry_after(caplog):
    app = _refused_app()
    client = app.test_client()
    client.set_cookie("qorgau_session", "some-token", domain="localhost")
    with caplog.at_level(logging.ERROR):
        for method, path in (("get", "/api/v1/incidents"), ("post", "/api/v1/incidents/sync")):
            response = getattr(client, method)(path, json={} if method == "post" else None)
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.headers["Retry-After"] == "5"
            assert response.mimetype == "application/problem+json"
            body = response.get_json()
            assert body["type"] == "https://qorgau.kz/problems/database-unavailable"
            assert body["status"] == 503 and body["instance"] == path
            assert "s3cret" not in response.get_data(as_text=True)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Database unavailable on GET /api/v1/incidents" in logged
    assert "s3cret-pw" not in logged and "some-token" not in logged
    assert "Traceback" not in caplog.text


def test_retry_after_is_a_setting():
    app = _refused_app(DB_UNAVAILABLE_RETRY_AFTER=30)
    client = app.test_client()
    client.set_cookie("qorgau_session", "t", domain="localhost")
    assert client.get("/api/v1/incidents").headers["Retry-After"] == "30"


def test_postgres_connections_give_up_after_a_bounded_time():
    app = _refused_app()
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["connect_timeout"] == 5
    assert options["pool_pre_ping"] is True


def _raising_app(app, error):
    def boom():
        raise error

    app.add_url_rule("/api/v1/_boom", "boom", boom)
    return app.test_client().get("/api/v1/_boom")


def _operational(message, sqlstate=None):
    orig = psycopg.OperationalError(message)
    if sqlstate:
        orig = type("E", (psycopg.OperationalError,), {"sqlstate": sqlstate})(message)
    return sa_exc.OperationalError("SELECT secret_column FROM t WHERE token = %s",
                                   {"token": "tok-123"}, orig)


@pytest.mark.parametrize("error", [
    _operational("server closed the connection unexpectedly"),
    _operational("terminating connection due to administrator command", "57P01"),
    _operational("the database system is starting up", "57P03"),
    _operational("connection failed: connection to server at \"127.0.0.1\", port 1 failed"),
    sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
])
def test_connection_class_errors_are_503(app, caplog, error):
    response = _raising_app(app, error)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "tok-123" not in caplog.text and "secret_column" not in caplog.text


def test_an_error_raised_after_a_lost_connection_is_503_too(app):
    # Code that caught the lost connection and carried on meets PendingRollbackError.
    try:
        try:
            raise _operational("server closed the connection unexpectedly")
        except sa_exc.OperationalError:
            raise sa_exc.PendingRollbackError(  # implicit context, as in life
                "Can't reconnect until invalid transaction is rolled back", None)
    except sa_exc.PendingRollbackError as err:
        chained = err
    assert chained.__cause__ is None and chained.__context__ is not None
    assert database_unavailable_in(chained) is not None
    assert _raising_app(app, chained).status_code == 503


@pytest.mark.parametrize("error", [
    sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key value")),
    sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error at or near")),
    _operational("canceling statement due to statement timeout", "57014"),
    RuntimeError("a bug"),
])
def test_other_errors_stay_500(app, error):
    response = _raising_app(app, error)
    assert response.status_code == 500 and "Retry-After" not in response.headers
    assert not database_unavailable(error)


def test_the_log_line_names_the_error_without_secrets():
    err = _operational("connection failed: password=hunter2 postgresql://u:pw@h/db refused")
    text = describe_unavailable(err)
    assert text.startswith("OperationalError: connection failed")
    assert "hunter2" not in text and ":pw@" not in text and "token" not in text


def test_a_connection_lost_inside_a_sync_hook_is_503_and_stores_nothing(app, client, login,
                                                                        monkeypatch):
    """A hook's failure is normally logged and the records kept; a lost database
    cannot keep anything, so the whole sync answers 503 and the phone retries."""

    from api.incidents import records as service
    from api.incidents.models import Incident
    from tests.factories import make_person
    from tests.incident_helpers import batch, record

    class LosesTheDatabase:
        def on_incidents_synced(self, incidents):
            raise _operational("server closed the connection unexpectedly")

    monkeypatch.setattr(service, "incident_hooks", [LosesTheDatabase()])
    login(make_person("crew"))
    response = client.post("/api/v1/incidents/sync", json=batch(record()))
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    assert db_count(Incident) == 0


def db_count(model):
    from sqlalchemy import func, select

    from api.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))
