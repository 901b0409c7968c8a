"""The application shell: settings, health and problem+json errors."""

import json

from sqlalchemy import text

from api import create_app
from api.extensions import db

PROBLEM = "application/problem+json"


def test_settings_come_from_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QORGAU_MAX_CONTENT_LENGTH", "1234")
    monkeypatch.setenv("QORGAU_RP_ID", "qorgau.example.kz")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["MAX_CONTENT_LENGTH"] == 1234
    assert app.config["RP_ID"] == "qorgau.example.kz"
    # With no DATABASE_URL the database is a SQLite file in the instance folder.
    assert app.config["SQLALCHEMY_DATABASE_URI"] == (
        "sqlite:///" + app.instance_path + "/qorgau.db")


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/qorgau")
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/qorgau"


def test_health_reports_database_migrations_and_version(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["migrations"] == "ok"
    assert body["version"]


def test_health_is_503_when_schema_is_behind(app, client):
    db.session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    db.session.commit()
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.get_json()["migrations"] == "behind"


def test_health_is_503_when_database_unreachable(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x",
                      "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/api/health")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_unknown_api_route_is_problem_404(client):
    response = client.post("/api/v1/no-such-thing", json={})
    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_problem_405_with_allow(client):
    response = client.delete("/api/health")
    assert response.status_code == 405
    assert response.mimetype == PROBLEM
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_500_without_internals(app, client, monkeypatch):
    from api.auth import org_views as views

    def explode(*args, **kwargs):
        raise RuntimeError("db password is hunter2")

    monkeypatch.setattr(views.RegionSchema, "dump", explode)
    response = client.get("/api/v1/regions")
    assert response.status_code == 500
    assert response.mimetype == PROBLEM
    text_body = response.get_data(as_text=True)
    assert "hunter2" not in text_body and "Traceback" not in text_body
    assert json.loads(text_body)["status"] == 500


def test_health_warns_when_this_or_next_years_mci_is_missing(client, monkeypatch):
    from datetime import UTC, datetime

    from api.core import views

    def at(*when):
        monkeypatch.setattr(views, "utcnow", lambda: datetime(*when, tzinfo=UTC))
        response = client.get("/api/health")
        assert response.status_code == 200  # a warning for operators, not an outage
        return response.get_json().get("warnings")

    assert at(2026, 11, 30, 12, 0) is None  # 2026 is configured
    # December: next year's value is needed before 1 January.
    assert at(2026, 12, 1, 12, 0) == [
        "MCI for 2027 is not configured in api/law/article_380_3.json"]
    # 31 Dec 2026 20:00 UTC is already 1 January 2027 in Kazakhstan.
    assert at(2026, 12, 31, 20, 0) == [
        "MCI for 2027 is not configured in api/law/article_380_3.json"]
