""""When did it happen?" on the crew's phone, in real Chromium (issue 22).

The crew member states the time offline (a quick choice, then the picker);
each choice is a revision in the outbox, classified on the phone at once, and
syncs when the network is back; the server then holds the stated time, the
tap's own time unchanged.
"""

import re
import uuid
from datetime import datetime

import pytest
from playwright.sync_api import expect

from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.sessions import start_session
from api.extensions import db
from api.incidents.models import Incident
from api.law import service as law
from api.orgs.models import Person
from tests.browser import (
    TIMEOUT,
    incidents_in_idb,
    open_app,
    sign_in,
    tap,
    unsynced,
)
from tests.factories import make_person
from tests.incident_helpers import batch, record

pytestmark = pytest.mark.browser

TAP = "2026-03-07T00:30:00+05:00"  # the day the article came into force, just after midnight


@pytest.fixture
def almaty(browser, live):
    """A phone set to Kazakhstan's time, its clock fixed at 00:30 on 7 March 2026."""
    ctx = browser.new_context(base_url=live.url, locale="en-GB", timezone_id="Asia/Almaty")
    ctx.set_default_timeout(TIMEOUT)
    try:
        yield ctx
    finally:
        ctx.close()


def idb_record(page):
    [record] = incidents_in_idb(page)
    return record


def wait_for_record(page, predicate):
    """Poll IndexedDB until predicate(record) holds (an async page function is not awaited
    by wait_for_function)."""
    for _ in range(300):
        if predicate(idb_record(page)):
            return idb_record(page)
        page.wait_for_timeout(50)
    raise AssertionError(f"the record never got there: {idb_record(page)}")


def test_the_picker_sends_a_correction_made_offline_when_back_online(almaty, live, crew):
    sign_in(almaty, live, crew)
    page = open_app(almaty)
    page.clock.set_fixed_time(TAP)
    tap(page)  # online: synced at once
    page.get_by_label("Threat", exact=True).check()
    expect(page.locator("#incident-body .state-case")).to_be_visible()
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    expect(page.locator("#classification-summary")).to_contain_text("part 1")
    almaty.set_offline(True)  # the correction is made with no network
    # Defaults to the tap.
    expect(page.get_by_label("Date and time")).to_have_value("2026-03-07T00:30")

    page.get_by_role("button", name="15 min ago").click()
    record = wait_for_record(page, lambda r: r["occurred_at"])
    assert datetime.fromisoformat(record["occurred_at"]) == datetime.fromisoformat(
        "2026-03-07T00:15:00+05:00")
    expect(page.locator("#incident-when")).to_contain_text("Happened")

    # The picker: 23:30 the evening before, before the article came into force.
    page.get_by_label("Date and time").fill("2026-03-06T23:30")
    record = wait_for_record(page, lambda r: r["occurred_at"].startswith("2026-03-06T23:30"))
    assert record["tapped_at"].startswith("2026-03-07T00:30")  # the tap stays
    expected = law.classify({"kind": "threat", "aggravating": [], "victim_role": "feldsher",
                             "on_duty": True, "occurred_at": record["occurred_at"]}, "en")
    assert expected["status"] == "outside"
    expect(page.locator("#classification-summary")).to_have_text(expected["summary"])
    [note] = law.time_change(record["tapped_at"], record["occurred_at"], "en")
    expect(page.locator(".classification .time-note")).to_have_text(note["text"])
    expect(page.locator("#incident-when")).to_have_text(re.compile(r"^Happened .* · logged "))
    expect(unsynced(page)).to_have_attribute("data-count", "1")

    # A time in the future is refused on the phone as the server would.
    page.get_by_label("Date and time").fill("2026-03-07T02:00")
    expect(page.locator("#when-message")).to_have_text("The time cannot be in the future.")
    assert idb_record(page)["occurred_at"].startswith("2026-03-06T23:30")

    almaty.set_offline(False)  # "online": the outbox flushes by itself
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    record = idb_record(page)
    assert record["synced_revision"] == record["revision"]
    with live.app.app_context():
        stored = db.session.get(Incident, uuid.UUID(record["id"]))
        assert stored.occurred_at == datetime.fromisoformat("2026-03-06T23:30:00+05:00")
        assert stored.logged_at == datetime.fromisoformat(TAP)
        assert stored.tapped_at_local.isoformat().startswith("2026-03-07T00:30")
        assert (stored.legal_status, stored.revision) == ("outside", record["revision"])
        # The correction is an event in the chain: from the tap to the stated time.
        [revised] = [e for e in stored.events if "occurred_at" in e.changes]
        assert revised.kind == "revised" and revised.actor_id == crew
        assert [datetime.fromisoformat(v) for v in revised.changes["occurred_at"]] == [
            stored.logged_at, stored.occurred_at]
        assert revised.changes["in_force"] == [True, False]
        db.session.remove()


def test_the_officer_sees_when_it_happened_and_when_it_was_logged(browser, live, crew):
    client = live.app.test_client()
    with live.app.app_context():
        person = db.session.get(Person, crew)
        officer = make_person("police", post=person.station.default_post, language="ru")
        token, session = start_session(person, user_agent="pytest")
        csrf, officer_id = session.csrf_token, officer.id
    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
    # Logged at 02:10, the assault at 23:40 the evening before.
    body = batch(record(tapped_at="2026-06-02T02:10:00+05:00", kind="threat",
                        occurred_at="2026-06-01T23:40:00+05:00"),
                 sent_at="2026-06-02T02:11:00+05:00")
    response = client.post("/api/v1/incidents/sync", json=body, headers={CSRF_HEADER: csrf})
    assert response.get_json()["results"][0]["status"] == "created"

    ctx = browser.new_context(base_url=live.url, locale="ru-RU")
    ctx.set_default_timeout(TIMEOUT)
    try:
        sign_in(ctx, live, officer_id)
        page = ctx.new_page()
        page.goto("/")
        card = page.locator("#pl-list .pl-item")
        expect(card).to_have_count(1)
        expect(card.locator(".pl-time")).to_have_text(
            "Произошло 2026-06-01 23:40 · записано 2026-06-02 02:10")
        card.locator("a").click()
        expect(page.locator("#pl-record-title")).to_be_visible()
        expect(page.locator("section[aria-labelledby=pl-record-title]")).to_contain_text(
            "Произошло 2026-06-01 23:40 · записано 2026-06-02 02:10")
    finally:
        ctx.close()
