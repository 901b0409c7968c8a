"""The demo sign-in: on only for `./qorgau run` (QORGAU_DEMO=1) and loopback clients."""

import os
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import click
import pytest
from flask.cli import run_command
from sqlalchemy import select

from api import create_app
from api.auth.models import AuthSession
from api.extensions import db
from tests.factories import make_person

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(ROOT / ".venv" / "bin" / "flask")


def test_demo_is_off_by_default(client):
    person = make_person("crew")
    assert client.get("/api/v1/auth/demo/people").status_code == 404
    response = client.post("/api/v1/auth/demo", json={"person_id": person.id})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert db.session.scalar(select(AuthSession)) is None


@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.1.20", "203.0.113.5", "::ffff:1.2.3.4"])
def test_demo_is_off_for_other_addresses_even_when_enabled(app, client, address):
    app.config["DEMO"] = True
    person = make_person("crew")
    env = {"REMOTE_ADDR": address}
    assert client.get("/api/v1/auth/demo/people", environ_base=env).status_code == 404
    assert client.post("/api/v1/auth/demo", json={"person_id": person.id},
                       environ_base=env).status_code == 404


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_demo_is_off_for_proxied_requests(app, client, header):
    app.config["DEMO"] = True
    person = make_person("crew")
    response = client.post("/api/v1/auth/demo", json={"person_id": person.id},
                           headers={header: "127.0.0.1"})
    assert response.status_code == 404


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_demo_sign_in_from_loopback_when_enabled(app, client, address):
    app.config["DEMO"] = True
    crew = make_person("crew", name="Demo Crew")
    env = {"REMOTE_ADDR": address}
    people = client.get("/api/v1/auth/demo/people", environ_base=env).get_json()["people"]
    assert {"id": crew.id, "display_name": "Demo Crew", "role": "crew",
            "position": "feldsher"} in people
    response = client.post("/api/v1/auth/demo", json={"person_id": crew.id}, environ_base=env)
    assert response.status_code == 200
    assert response.get_json()["demo"] is True
    me = client.get("/api/v1/auth/me", environ_base=env).get_json()
    assert me["demo"] is True and me["person"]["id"] == crew.id
    assert db.session.scalar(select(AuthSession.is_demo)) is True
    bad = client.post("/api/v1/auth/demo", json={"person_id": 999999}, environ_base=env)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "person_id"


def test_passkey_sessions_are_not_demo(client, login):
    login(make_person("crew"))
    assert client.get("/api/v1/auth/me").get_json()["demo"] is False


def demo_config(tmp_path):
    return {"TESTING": True, "SECRET_KEY": "x", "DEMO": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "qorgau.example.kz"])
def test_flask_run_on_a_non_loopback_host_refuses_demo(tmp_path, host):
    with click.Context(run_command, info_name="run") as ctx:
        ctx.params = {"host": host, "port": 5000}
        with pytest.raises(RuntimeError, match="QORGAU_DEMO"):
            create_app(demo_config(tmp_path))
        # Without DEMO the same bind is fine (production sits behind nginx).
        create_app({**demo_config(tmp_path), "DEMO": False})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_flask_run_on_loopback_allows_demo(tmp_path, host):
    with click.Context(run_command, info_name="run") as ctx:
        ctx.params = {"host": host, "port": 5000}
        assert create_app(demo_config(tmp_path)).config["DEMO"] is True


def test_demo_refuses_a_non_loopback_qorgau_host_and_gunicorn(tmp_path, monkeypatch):
    monkeypatch.setenv("QORGAU_HOST", "0.0.0.0")
    with pytest.raises(RuntimeError, match="QORGAU_HOST"):
        create_app(demo_config(tmp_path))
    monkeypatch.setenv("QORGAU_HOST", "127.0.0.1")
    create_app(demo_config(tmp_path))
    monkeypatch.setitem(sys.modules, "gunicorn", types.ModuleType("gunicorn"))
    with pytest.raises(RuntimeError, match="gunicorn"):
        create_app(demo_config(tmp_path))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flask_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QORGAU_", "FLASK_")) and k != "DATABASE_URL"}
    env.update({"FLASK_APP": "api", "QORGAU_DEMO": "1", "QORGAU_SECRET_KEY": "x",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}"})
    return env


def test_the_real_flask_run_refuses_demo_on_0_0_0_0(tmp_path):
    result = subprocess.run([FLASK, "run", "--host", "0.0.0.0", "--port", str(_free_port()),
                             "--no-reload"], env=_flask_env(tmp_path), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to serve on '0.0.0.0'" in result.stderr


def test_the_real_flask_run_serves_demo_on_loopback(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([FLASK, "run", "--host", "127.0.0.1", "--port", str(port),
                             "--no-reload"], env=_flask_env(tmp_path), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # 404 on an unmigrated database would be fine too: it answers, that is all.
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "flask run did not start"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
