"""The law endpoints: GET /api/v1/law/rules and POST /api/v1/law/classify."""

import json

import pytest

from api.law import service
from api.law.schemas import ClassificationSchema

PROBLEM = "application/problem+json"
RULES = "/api/v1/law/rules"
CLASSIFY = "/api/v1/law/classify"
GOOD = {"kind": "violence", "aggravating": ["group"], "victim_role": "driver",
        "on_duty": True, "occurred_at": "2026-06-01T02:30:00+05:00"}


def test_rules_with_etag_then_304(client):
    response = client.get(RULES)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]
    assert etag == service.rules_etag() and not etag.startswith("W/")
    assert response.get_data() == service.RULES_PATH.read_bytes()
    assert response.get_json()["article"] == "380-3"

    again = client.get(RULES, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag

    other = client.get(RULES, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_rules_star_and_weak_match(client):
    etag = client.get(RULES).headers["ETag"]
    assert client.get(RULES, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(RULES, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304


def test_rules_need_no_sign_in(client):
    # Public reference data: a fresh client with no session gets it.
    assert client.get(RULES).status_code == 200
    assert client.post(CLASSIFY, json=GOOD).status_code == 200


def test_classify(client):
    response = client.post(CLASSIFY, json=GOOD)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "within"
    assert body["part"] == 4
    assert body["aggravating"] == ["group"]
    assert body["local_date"] == "2026-06-01"
    assert body["disclaimer"] == "Provisional classification: the investigator decides."
    assert ClassificationSchema().validate(body) == {}
    assert body == json.loads(json.dumps(service.classify(
        {k: v for k, v in GOOD.items()}, "en")))


def test_classify_in_russian_with_default_aggravating(client):
    body = client.post(CLASSIFY, json={**{k: v for k, v in GOOD.items() if k != "aggravating"},
                                       "lang": "ru"}).get_json()
    assert body["part"] == 3
    assert body["penalties"][0]["min_kzt"] == 500 * 4325
    assert body["disclaimer"].startswith("Предварительная квалификация")


def test_classify_boundary_in_local_time(client):
    before = client.post(CLASSIFY, json={**GOOD, "occurred_at": "2026-03-06T23:59:59+05:00"})
    after = client.post(CLASSIFY, json={**GOOD, "occurred_at": "2026-03-06T19:30:00Z"})
    assert before.get_json()["reason"]["code"] == "before_in_force"
    assert after.get_json()["status"] == "within"


def _problem(response, status):
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    return response.get_json()


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "punch"}, "kind"),
    ({"victim_role": "patient"}, "victim_role"),
    ({"aggravating": ["weapon"]}, "aggravating.0"),
    ({"aggravating": ["group", "group"]}, "aggravating"),
    ({"on_duty": "yes"}, "on_duty"),
    ({"lang": "de"}, "lang"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": "2026-06-01 02:30:00+05:00"}, "occurred_at"),
    ({"occurred_at": "1800-06-01T02:30:00+05:00"}, "occurred_at"),
    ({"occurred_at": 1780000000}, "occurred_at"),
    ({"extra": 1}, "extra"),
])
def test_422_names_the_field(client, change, field):
    body = _problem(client.post(CLASSIFY, json={**GOOD, **change}), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert field in body["detail"]


def test_422_for_a_naive_datetime(client):
    body = _problem(client.post(CLASSIFY, json={**GOOD, "occurred_at": "2026-06-01T02:30:00"}),
                    422)
    assert body["errors"][0]["field"] == "occurred_at"
    assert "UTC offset" in body["errors"][0]["message"]


@pytest.mark.parametrize("field", ["kind", "victim_role", "on_duty", "occurred_at"])
def test_422_for_a_missing_field(client, field):
    body = _problem(client.post(CLASSIFY, json={k: v for k, v in GOOD.items() if k != field}),
                    422)
    assert body["errors"][0]["field"] == field


def test_415_for_non_json(client):
    body = _problem(client.post(CLASSIFY, data="kind=threat",
                                content_type="application/x-www-form-urlencoded"), 415)
    assert body["status"] == 415


def test_400_for_malformed_json(client):
    body = _problem(client.post(CLASSIFY, data='{"kind": ', content_type="application/json"),
                    400)
    assert "not valid JSON" in body["detail"]


def test_missing_mci_classifies_in_mci_only_with_a_warning(client):
    late = {**GOOD, "aggravating": [], "occurred_at": "2031-02-01T10:00:00+05:00",
            "lang": "kk"}
    response = client.post(CLASSIFY, json=late)
    assert response.status_code == 200
    body = response.get_json()
    assert ClassificationSchema().validate(body) == {}
    assert body["part"] == 3 and body["mci_kzt"] is None
    assert [(w["code"], w["year"]) for w in body["warnings"]] == [("mci_missing", 2031)]
    assert body["warnings"][0]["text"].startswith("2031 жылға арналған АЕК")
    assert not any("min_kzt" in p or "max_kzt" in p for p in body["penalties"])


def test_rules_are_get_only(client):
    assert client.post(RULES, json={}).status_code == 405
