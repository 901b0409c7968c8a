"""Roles are enforced in one place (@require), and every API endpoint says which.

Walks the URL map, so a new endpoint is covered the day it is added: signed
out, every non-public endpoint answers 401; every one declares its roles;
signed in with a role it does not admit, it answers 403 before doing anything.
(Incident scope rows, whose incidents each role sees, live with the incidents.)
"""

import uuid

import pytest

from api.orgs.models import Role
from tests.factories import make_person

# Endpoints anyone may call without signing in. Keep this list short and explicit.
PUBLIC = {
    "/api/health",
    "/api/openapi.json",
    "/api/v1/regions",
    "/api/v1/law/rules",
    "/api/v1/law/classify",
    "/api/v1/ledger/public-key",
    "/api/v1/auth/login/options",
    "/api/v1/auth/login/verify",
    "/api/v1/auth/register/options",
    "/api/v1/auth/register/verify",
    "/api/v1/auth/demo",
    "/api/v1/auth/demo/people",
}


SAMPLE_ARGS = {"IntegerConverter": 1, "UUIDConverter": uuid.UUID(int=1)}


def api_endpoints(app):
    """(method, url, rule, view) for every /api/ route, path arguments filled in."""
    out = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        values = {name: SAMPLE_ARGS.get(type(conv).__name__, "x")
                  for name, conv in rule._converters.items()}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, values, method=method)
            out.append((method, url, rule.rule, app.view_functions[rule.endpoint]))
    return out


def test_the_public_list_names_real_endpoints(app):
    rules = {rule for _, _, rule, _ in api_endpoints(app)}
    assert PUBLIC - rules == set(), "stale entries in PUBLIC"


def test_every_non_public_endpoint_declares_its_roles(app):
    missing = [f"{m} {rule}" for m, _, rule, view in api_endpoints(app)
               if rule not in PUBLIC and not getattr(view, "required_roles", None)]
    assert missing == [], "endpoints without @require: " + ", ".join(missing)


def test_signed_out_every_non_public_endpoint_is_401(app, client):
    checked = 0
    for method, url, rule, _ in api_endpoints(app):
        if rule in PUBLIC:
            continue
        response = client.open(url, method=method, json={})
        assert response.status_code == 401, f"{method} {rule}: {response.status_code}"
        assert response.mimetype == "application/problem+json"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("role", list(Role))
def test_a_role_not_admitted_is_403_everywhere(app, login, role):
    client = app.test_client()
    login(make_person(role.value), on=client)
    for method, url, rule, view in api_endpoints(app):
        if rule in PUBLIC or role in view.required_roles:
            continue
        response = client.open(url, method=method, json={})
        assert response.status_code == 403, f"{role} {method} {rule}: {response.status_code}"
