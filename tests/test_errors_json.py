"""Malformed, oversized and wrongly typed bodies get specific problem+json answers.

These go through the real stateless classification endpoint, the first JSON
endpoint every client meets.
"""

PROBLEM = "application/problem+json"
URL = "/api/v1/law/classify"
GOOD = {"kind": "threat", "aggravating": [], "victim_role": "feldsher", "on_duty": True,
        "occurred_at": "2026-06-01T02:30:00+05:00"}


def test_malformed_json_is_400(client):
    response = client.post(URL, data='{"kind": "threat",', content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert "not valid JSON" in response.get_json()["detail"]


def test_non_json_body_is_415(client):
    response = client.post(URL, data="kind=threat", content_type="text/plain")
    assert response.status_code == 415
    assert response.mimetype == PROBLEM


def test_oversized_body_is_413(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(URL, data="x" * (limit + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == PROBLEM
    assert str(limit) in response.get_json()["detail"]


def test_invalid_field_is_422_naming_the_field(client):
    response = client.post(URL, json={**GOOD, "kind": "punch", "on_duty": "maybe"})
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"kind", "on_duty"}
