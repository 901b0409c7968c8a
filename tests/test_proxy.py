"""Forwarding headers are trusted only with QORGAU_PROXY_COUNT=1 (api/proxy.py)."""

import pytest
from flask import jsonify, request

from api import create_app
from api.proxy import proxy_count

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "qorgau.example.kz"}


def seen_by(app, headers: dict) -> dict:
    """What a view sees of the client: address, scheme, host."""
    @app.get("/api/_probe")
    def probe():
        return jsonify(addr=request.remote_addr, scheme=request.scheme, host=request.host,
                       secure=request.is_secure)

    return app.test_client().get("/api/_probe", headers=headers).get_json()


@pytest.fixture
def make_app(tmp_path):
    def _make(**config):
        return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
                           "SECRET_KEY": "test", **config})
    return _make


def test_headers_ignored_by_default(make_app):
    seen = seen_by(make_app(), FORWARDED)
    assert seen == {"addr": "127.0.0.1", "scheme": "http", "host": "localhost",
                    "secure": False}


def test_headers_trusted_behind_one_proxy(make_app):
    seen = seen_by(make_app(PROXY_COUNT=1), FORWARDED)
    assert seen == {"addr": "203.0.113.7", "scheme": "https", "host": "qorgau.example.kz",
                    "secure": True}


def test_only_the_proxys_own_entry_counts(make_app):
    """A client's forged X-Forwarded-For entry comes first; nginx's is the last one."""
    headers = {**FORWARDED, "X-Forwarded-For": "10.6.6.6, 203.0.113.7"}
    assert seen_by(make_app(PROXY_COUNT=1), headers)["addr"] == "203.0.113.7"


def test_from_the_environment(monkeypatch, make_app):
    monkeypatch.setenv("QORGAU_PROXY_COUNT", "1")
    assert seen_by(make_app(), FORWARDED)["addr"] == "203.0.113.7"


@pytest.mark.parametrize("value", [2, -1, "many", True, 1.5])
def test_other_counts_are_refused(make_app, value):
    with pytest.raises(ValueError, match="PROXY_COUNT"):
        make_app(PROXY_COUNT=value)


@pytest.mark.parametrize(("value", "count"), [(0, 0), (1, 1), ("1", 1), ("0", 0)])
def test_counts_accepted(make_app, value, count):
    assert proxy_count(make_app(PROXY_COUNT=value)) == count
