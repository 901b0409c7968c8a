"""The settings for several servers, without servers (docs/deploy.md, "Several
servers"; the processes themselves are in tests/test_replication.py)."""

from api import create_app
from api.config import normalise_database_url
from api.db import libpq_params
from tests.nginx_helpers import render


def test_a_multi_host_url_reaches_libpq_with_every_host_in_order():
    url = ("postgresql://qorgau:pw@10.0.0.5:5432,10.0.0.6:5433/qorgau"
           "?target_session_attrs=read-write&sslmode=verify-full")
    assert normalise_database_url(url) == (
        "postgresql+psycopg://qorgau:pw@/qorgau?host=10.0.0.5:5432&host=10.0.0.6:5433"
        "&target_session_attrs=read-write&sslmode=verify-full")
    params = libpq_params(url)
    assert (params["host"], params["port"]) == ("10.0.0.5,10.0.0.6", "5432,5433")
    assert params["target_session_attrs"] == "read-write"
    assert params["sslmode"] == "verify-full" and params["password"] == "pw"
    # One host stays as it was.
    assert normalise_database_url("postgres://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"


def test_behind_pgbouncer_psycopg_never_prepares_statements():
    url = "postgresql://postgres@127.0.0.1:6432/qorgau"
    plain = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    assert "prepare_threshold" not in plain.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    pooled = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "DATABASE_PGBOUNCER": True})
    args = pooled.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert args["prepare_threshold"] is None and args["connect_timeout"] == 5


def test_nginx_upstream_lists_every_app_host(tmp_path):
    conf = render.render(tmp_path, upstream="10.0.0.11:8000,10.0.0.12:8000").read_text()
    block = conf.split("upstream qorgau_api {", 1)[1].split("}", 1)[0]
    assert [line.strip() for line in block.strip().splitlines()] == [
        "server 10.0.0.11:8000;", "server 10.0.0.12:8000;", "keepalive 32;"]


def test_without_a_replica_the_primary_answers_and_says_so(client, login):
    from tests.factories import make_person

    login(make_person("manager"))
    for path in ("/api/v1/review/incidents", "/api/v1/review/figures"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Qorgau-Read-From"] == "primary"
        assert "Qorgau-Replica-Lag" not in response.headers


def test_behind_pgbouncer_without_a_direct_listen_url_the_worker_says_it_polls(caplog):
    from api.push.worker import _listen

    app = create_app({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/qorgau",
                      "SECRET_KEY": "x", "DATABASE_PGBOUNCER": True})
    with app.app_context():
        assert _listen(app) is None  # never a LISTEN that would hear nothing
    assert "PUSH_LISTEN_DATABASE_URL is not" in caplog.text
    assert "polls every 2.0 s" in caplog.text
