"""A note holding HTML or script is data: stored verbatim, returned as JSON, and shown
as text in the crew app and the manager console (real Chromium, no dialog fires).

The dev server sets no CSP (nginx does, in production): the CSP itself is
checked in the shipped nginx config by test_the_csp_forbids_inline_script.
"""

import re
import uuid

import pytest
from playwright.sync_api import expect

from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.sessions import start_session
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person
from tests.browser import CSP, ROOT, TIMEOUT
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import batch, record

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
def scene(live_server):
    """A crew member's incident whose note is HTML, synced through the API."""
    app = live_server.app
    with app.app_context():
        station = make_station(default_post=make_post())
        crew = make_person("crew", station=station, language="en")
        manager = make_person("manager", stations=[station], language="en")
        token, session = start_session(crew, user_agent="pytest")
        client = app.test_client()
        client.set_cookie(SESSION_COOKIE, token, domain="localhost")
        rec = record(uuid.uuid4(), note=HOSTILE, kind="threat")
        answer = client.post("/api/v1/incidents/sync", json=batch(rec),
                             headers={CSRF_HEADER: session.csrf_token})
        assert answer.get_json()["results"][0]["status"] == "created"
        # Stored verbatim and returned as JSON data, not as markup.
        one = client.get(f"/api/v1/incidents/{rec['id']}")
        assert one.mimetype == "application/json" and one.get_json()["note"] == HOSTILE
        return {"crew": crew.id, "manager": manager.id, "id": rec["id"]}


def open_signed_in(browser, live_server, person_id, path):
    with live_server.app.app_context():
        token, _ = start_session(db.session.get(Person, person_id), user_agent="playwright")
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    context.set_default_timeout(TIMEOUT)
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live_server.url}])
    page = context.new_page()
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A broken image would fire its onerror: count requests for "x" as an attempt.
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if r.url.endswith("/x") else None)
    page.goto(path)
    return context, page, dialogs, fetched


def shows_literally(page):
    """The note's characters appear as text (or as a field's value), all of them."""
    page.wait_for_function("""hostile => {
        const shown = el => el.offsetParent !== null;
        return [...document.querySelectorAll('textarea, input')]
                 .some(f => f.value === hostile && shown(f))
            || [...document.querySelectorAll('body *')]
                 .some(e => shown(e) && [...e.childNodes].some(
                     n => n.nodeType === 3 && n.textContent.includes(hostile)));
    }""", arg=HOSTILE)
    # The text is text: nothing the note could have made exists in the page.
    assert page.evaluate("""() => [...document.scripts].every(s => !s.text.includes('alert('))
                          && ![...document.querySelectorAll('img')].some(i =>
                               i.getAttribute('src') === 'x')""")


def test_the_crew_app_shows_a_hostile_note_as_text(browser, live_server, scene):
    """The crew app shows the notes its phone holds: one is made through the app's own
    store (as typing it does), goes out through the sync API, and is opened."""
    context, page, dialogs, fetched = open_signed_in(browser, live_server, scene["crew"], "/")
    try:
        expect(page.locator("#unsynced")).to_have_attribute("data-count", re.compile(r"\d+"))
        ident = page.evaluate("""async note => {
            const store = await import('/js/store.js');
            const record = await store.createIncident({ note, kind: 'threat' });
            return record.id;
        }""", HOSTILE)
        page.evaluate("location.hash = '#/incidents'")
        page.get_by_role("button", name="Sync now").click()
        # The count may read 0 before the new record is even counted: wait for the
        # record itself to be marked sent on the phone.
        # (wait_for_function cannot await an async predicate, so poll, bounded.)
        for _ in range(100):
            if page.evaluate("""async id => {
                const store = await import('/js/store.js');
                const row = await store.getIncident(id);
                return Boolean(row && row.synced_revision >= row.revision);
            }""", ident):
                break
            page.wait_for_timeout(100)
        else:
            raise AssertionError("the record was never acknowledged by the server")
        expect(page.locator("#unsynced")).to_have_attribute("data-count", "0")
        with live_server.app.app_context():
            assert db.session.get(Incident, uuid.UUID(ident)).note == HOSTILE
        page.locator(f"a[href='#/incidents/{ident}']").first.click()
        shows_literally(page)
        page.wait_for_timeout(300)  # an onerror or script would have run by now
        assert dialogs == [] and fetched == []
    finally:
        context.close()


def test_the_manager_console_shows_a_hostile_note_as_text(browser, live_server, scene):
    context, page, dialogs, fetched = open_signed_in(
        browser, live_server, scene["manager"], f"/#/review/incidents/{scene['id']}")
    try:
        shows_literally(page)
        page.goto("/#/review")
        expect(page.locator("main")).to_contain_text(re.compile(r"\S"))
        page.wait_for_timeout(300)
        assert dialogs == [] and fetched == []
    finally:
        context.close()


def test_the_csp_forbids_inline_script():
    """What production serves (nginx adds it to every location; test_nginx checks that)."""
    conf = (ROOT / "nginx" / "snippets" / "security-headers.conf").read_text()
    assert f'add_header Content-Security-Policy "{CSP}" always;' in conf
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in CSP and "*" not in CSP
