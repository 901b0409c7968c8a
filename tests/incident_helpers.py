"""Builders shared by the incident and sync tests."""

import uuid
from datetime import UTC, datetime

import pytest

URL = "/api/v1/incidents/sync"
# The server's clock in these tests: fixed, so the tests mean the same next year.
NOW = datetime(2026, 6, 1, 5, 5, tzinfo=UTC)  # 10:05 in Almaty


@pytest.fixture(name="frozen_clock")
def frozen_clock_fixture(monkeypatch):
    """Freeze the sync endpoint's receipt time at NOW (or at what the test sets)."""
    from api.incidents import views

    now = {"value": NOW}
    monkeypatch.setattr(views, "utcnow", lambda: now["value"])
    return now


def record(id_=None, revision=1, tapped_at="2026-06-01T09:30:00+05:00", **fields):
    return {"id": str(id_ or uuid.uuid4()), "revision": revision, "tapped_at": tapped_at,
            **fields}


def batch(*records, device_id="phone-1", outbox_size=0, sent_at=None):
    return {"device_id": device_id, "outbox_size": outbox_size, "app_version": "1.0.0",
            "sent_at": sent_at or NOW.isoformat(), "records": list(records)}


def sync(client, *records, expect=200, **kwargs):
    response = client.post(URL, json=batch(*records, **kwargs))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def result(client, rec, **kwargs):
    return sync(client, rec, **kwargs)["results"][0]


@pytest.fixture(name="no_hooks")
def no_hooks_fixture(monkeypatch):
    """Other domains' hooks (push routing) are tested there; here, none run."""
    from api.incidents import records as service

    monkeypatch.setattr(service, "incident_hooks", [])


# Every kind of the law rules, for revisions that differ in every field.
KINDS = ["unspecified", "threat", "violence", "violence_dangerous", "other"]


def version(ident, n):
    """Revision n of one incident: every crew-editable field depends on n."""
    return record(ident, revision=n, kind=KINDS[n % len(KINDS)], note=f"revision {n}",
                  police_needed=n % 2 == 0, aggravating=["group"] if n % 3 == 0 else [],
                  location={"lat": 43 + n / 100, "lon": 76.9, "source": "gps"})
