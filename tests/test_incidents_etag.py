"""The incident list answers 304 to a phone that already has the page (ETag),
and a new body as soon as anything on the page changed."""

import uuid

import pytest

from api.extensions import db
from api.incidents.models import Incident, IncidentStatus
from api.incidents.records import append_event
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import (
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")

LIST = "/api/v1/incidents?limit=100"


def test_unchanged_page_is_304_and_any_change_gives_a_new_one(client, login):
    post = make_post()
    crew = make_person("crew", station=make_station(default_post=post), position="feldsher")
    login(crew)
    first = result(client, record(kind="threat"))
    page = client.get(LIST)
    assert page.status_code == 200 and len(page.get_json()["items"]) == 1
    etag = page.headers["ETag"]
    assert etag.startswith('W/"')

    again = client.get(LIST, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag

    # A revision from the phone: the page changes.
    result(client, record(first["id"], revision=2, kind="violence"))
    changed = client.get(LIST, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["items"][0]["kind"] == "violence"
    etag2 = changed.headers["ETag"]
    assert etag2 != etag

    # Something the crew did not do: an officer acknowledges the alert.
    incident = db.session.get(Incident, uuid.UUID(first["id"]))
    incident.post_id = post.id
    db.session.commit()
    officer = make_person("police", post=post)
    # As api/police/service.py does: the status changes, with its event.
    before, incident.status = incident.status, IncidentStatus.ACKNOWLEDGED
    append_event(incident, officer, "acknowledged", {"status": (before, incident.status)})
    db.session.commit()
    acked = client.get(LIST, headers={"If-None-Match": etag2})
    assert acked.status_code == 200 and acked.headers["ETag"] != etag2

    # A new incident: new page.
    result(client, record())
    assert client.get(LIST, headers={"If-None-Match": acked.headers["ETag"]}).status_code == 200


def test_the_etag_is_per_person_and_per_page(client, login):
    station = make_station()
    a = make_person("crew", station=station, position="feldsher")
    b = make_person("crew", station=station, position="feldsher")
    login(a)
    result(client, record())
    result(client, record())
    etag = client.get(LIST).headers["ETag"]
    assert client.get("/api/v1/incidents?limit=1", headers={"If-None-Match": etag}
                      ).status_code == 200
    login(b)  # nothing of theirs yet: their page differs
    assert client.get(LIST, headers={"If-None-Match": etag}).status_code == 200
