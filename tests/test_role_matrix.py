"""Roles are enforced in one place (@require), and every API endpoint says which.

Walks the URL map, so a new endpoint is covered the day it is added: signed
out, every non-public endpoint answers 401; every one declares its roles;
signed in with a role it does not admit, it answers 403 before doing anything.
(Incident scope rows, whose incidents each role sees, live with the incidents.)
"""


import pytest
from flask import Blueprint

from api.orgs.models import Role
from tests.endpoints import PUBLIC, api_endpoints
from tests.factories import make_person


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


# --- the role matrix really covers every endpoint ----------------------------------

def test_the_role_matrix_walks_every_api_rule_the_document_lists(app):
    from api.openapi import build_document

    walked = {(m, rule) for m, _, rule, _ in api_endpoints(app)}
    assert len(walked) == sum(len(ops) for ops in build_document(app)["paths"].values())
    in_map = {(m, r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api/")
              for m in (r.methods or set()) - {"HEAD", "OPTIONS"}}
    assert walked == in_map


def test_the_role_matrix_fails_on_a_new_unprotected_endpoint(app, login):
    leaky = Blueprint("leaky", __name__)

    @leaky.post("/api/v1/leaky/<int:item_id>")
    def leak(item_id):
        return {"everyone's": "data"}

    app.register_blueprint(leaky)
    client = app.test_client()
    with pytest.raises(AssertionError, match="/api/v1/leaky/<int:item_id>"):
        test_every_non_public_endpoint_declares_its_roles(app)
    with pytest.raises(AssertionError, match="/api/v1/leaky/<int:item_id>"):
        test_signed_out_every_non_public_endpoint_is_401(app, client)
