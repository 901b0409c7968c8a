"""One record never holds a phone's queue hostage, in real Chromium against the
real app: the server fails (500) on one specific record, and the rest of that
phone's queue, records logged later included, still arrives; the failing
record is kept on the phone, shown as "not sent, reported to the
administrator", and counted in the managers' device health. Also: toWire()
never cuts a note inside a surrogate pair or a grapheme, and a conflicting
replay is kept as a new revision (pwa/js/outbox.js, pwa/js/sync.js).
"""

import io
import json
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.sessions import start_session
from api.extensions import db
from api.incidents.models import Incident, SyncDevice
from api.orgs.models import Person
from tests.browser import incidents_in_idb, open_app, sign_in, tap, unsynced
from tests.factories import make_person
from tests.incident_helpers import batch, record

pytestmark = pytest.mark.browser

SYNC = "/api/v1/incidents/sync"


class FailOnRecord:
    """Test-only WSGI middleware (never part of the app): a sync request whose
    body holds `poisoned` gets a 500, as from a server bug that trips on that one
    record; every other request reaches the real app."""

    def __init__(self, app, poisoned: str):
        self.app = app
        self.poisoned = poisoned.encode()
        self.failed = 0

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == SYNC:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(body)
            if self.poisoned in body:
                self.failed += 1
                start_response("500 INTERNAL SERVER ERROR",
                               [("Content-Type", "application/problem+json")])
                return [json.dumps({"type": "about:blank", "title": "Internal Server Error",
                                    "status": 500}).encode()]
        return self.app(environ, start_response)


def stored_ids(live) -> set[str]:
    with live.app.app_context():
        return {str(i) for i in db.session.scalars(select(Incident.id))}


def eventually(page, script, arg=None, seconds=60):
    """Poll an async page function until it answers true (a ceiling, not a timing)."""
    for _ in range(seconds * 4):
        if page.evaluate(script, arg):
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"never true: {script}")


def create_offline_record(page, **fields) -> str:
    return page.evaluate("""async (fields) => {
        const { createIncident } = await import('/js/store.js');
        return (await createIncident(fields)).id;
    }""", fields)


def test_one_failing_record_never_holds_the_queue_hostage(browser, context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)
    context.set_offline(True)
    # The oldest record is the one the server fails on: it leads every batch.
    poisoned = create_offline_record(page, note="the server trips on this one")
    tap(page)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "3")
    others = {r["id"] for r in incidents_in_idb(page)} - {poisoned}
    fault = FailOnRecord(live.app.wsgi_app, poisoned)
    live.app.wsgi_app = fault
    context.set_offline(False)  # "online": the page flushes by itself, and retries
    eventually(page, """async (n) => {
        const { listIncidents } = await import('/js/store.js');
        return (await listIncidents()).filter((r) => !r.pending).length === n;
    }""", len(others))
    assert others <= stored_ids(live) and poisoned not in stored_ids(live)
    # A record logged later still arrives, while the failing one is still there.
    tap(page)
    later = ({r["id"] for r in incidents_in_idb(page)} - others - {poisoned}).pop()
    eventually(page, """async (id) => {
        const { getIncident } = await import('/js/store.js');
        return (await getIncident(id)).pending === 0;
    }""", later)
    assert later in stored_ids(live)
    # Failing alone again and again (the server answering this phone meanwhile),
    # it is set aside: still on the phone, and shown as such.
    sync_now = page.get_by_role("button", name="Sync now")
    for _ in range(10):
        if page.evaluate("""async (id) => {
            const { getIncident } = await import('/js/store.js');
            return Boolean((await getIncident(id)).set_aside);
        }""", poisoned):
            break
        sync_now.click()
        page.wait_for_timeout(500)
    [kept] = [r for r in incidents_in_idb(page) if r["id"] == poisoned]
    assert kept["pending"] == 1 and kept["set_aside"]["revision"] == 1
    assert kept["note"] == "the server trips on this one"
    page.get_by_role("link", name="My incidents").first.click()
    aside = page.locator(".incident-item", has=page.locator(".state-set-aside"))
    expect(aside).to_have_count(1)
    expect(aside.locator(".state-set-aside")).to_have_text(
        "Not sent, reported to the administrator")
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    # It is no longer sent with every flush...
    before = fault.failed
    sync_now.click()
    page.wait_for_timeout(1000)
    assert fault.failed == before
    # ...and the managers' device health counts it.
    with live.app.app_context():
        person = db.session.get(Person, crew)
        [device] = db.session.scalars(select(SyncDevice).where(SyncDevice.person_id == crew))
        assert device.set_aside == 1
        manager = make_person("manager", stations=[person.station])
        token, _ = start_session(manager, user_agent="pytest")
    client = live.app.test_client()
    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
    [health] = client.get("/api/v1/review/devices").get_json()["devices"]
    assert health["set_aside"] == 1
    # The console's device health shows it to the manager.
    desk = browser.new_context(base_url=live.url, locale="en-GB", service_workers="block")
    try:
        desk.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live.url}])
        console = desk.new_page()
        console.goto("/#/review/devices")
        table = console.locator("#rv-devices")
        expect(table.locator("th")).to_contain_text(["Not sent (server fault)"])
        expect(table.locator("td.set-aside")).to_have_text("1")
    finally:
        desk.close()


def test_a_server_failing_on_everything_sets_nothing_aside(context, live, crew):
    """Only a record the server fails on while it takes this phone's other
    requests is to blame: a server that fails on every request (down, or
    broken for everyone) never makes the phone set a record aside."""
    sign_in(context, live, crew)
    page = open_app(context)
    context.set_offline(True)
    create_offline_record(page)
    tap(page)
    fault = FailOnRecord(live.app.wsgi_app, "")  # every sync request fails
    live.app.wsgi_app = fault
    context.set_offline(False)
    sync_now = page.get_by_role("button", name="Sync now")
    for _ in range(6):
        sync_now.click()
        page.wait_for_timeout(300)
    assert fault.failed >= 6
    records = incidents_in_idb(page)
    assert [(r["pending"], r.get("failures"), r.get("set_aside")) for r in records] == \
        [(1, None, None)] * 2
    live.app.wsgi_app = fault.app  # the server is fine again: everything goes
    sync_now.click()
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    assert len(stored_ids(live)) == 2


# ---------------------------------------------------------------- toWire

CUT = """async ([note, withSegmenter]) => {
    const saved = Intl.Segmenter;
    if (!withSegmenter) delete Intl.Segmenter;
    try {
        const { toWire } = await import('/js/outbox.js');
        return toWire({ id: 'x', revision: 1, tapped_at: 't', note }).note;
    } finally {
        Intl.Segmenter = saved;
    }
}"""


@pytest.mark.parametrize("with_segmenter", [True, False])
def test_to_wire_never_cuts_inside_a_surrogate_pair_or_a_grapheme(context, live, with_segmenter):
    page = open_app(context)
    nurse = "👩🏽‍⚕️"  # five code points, seven UTF-16 units, one grapheme
    cases = {
        "a" * 1999 + "🚑": "a" * 1999 + "🚑",              # 2000 code points: all of it
        "a" * 1999 + "🚑🚑": "a" * 1999 + "🚑",
        "a" * 1997 + nurse: "a" * 1997 + ("" if with_segmenter else nurse[:3]),
        "a" * 1990 + "é" * 20: "a" * 1990 + "é" * 10,  # e + combining acute
        "broken \ud83d half": "broken \ufffd half",          # a lone surrogate typed in
        "nul\x00": "nul",
    }
    for note, expected in cases.items():
        cut = page.evaluate(CUT, [note, with_segmenter])
        assert cut == expected, (note[-12:], cut[-12:])
        assert len(cut) <= 2000 and "\x00" not in cut
        cut.encode("utf-8")  # no lone surrogate: it encodes


def test_a_note_ending_in_an_emoji_at_the_limit_syncs_whole(context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)
    note = "а" * 1999 + "🚑"  # 2000 code points, 2001 UTF-16 units
    ident = create_offline_record(page, note=note)
    page.get_by_role("button", name="Sync now").click()
    eventually(page, """async (id) => {
        const { getIncident } = await import('/js/store.js');
        return (await getIncident(id)).pending === 0;
    }""", ident)
    with live.app.app_context():
        assert db.session.get(Incident, uuid.UUID(ident)).note == note


# ---------------------------------------------------------------- a conflicting replay

def test_a_conflict_keeps_the_phones_version_as_a_new_revision(context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)
    context.set_offline(True)
    ident = create_offline_record(page, note="written on the phone")
    [mine] = incidents_in_idb(page)
    # The server already holds revision 1 of this id with other content (e.g. the
    # phone's storage was restored from an older copy and sent before).
    client = live.app.test_client()
    with live.app.app_context():
        token, session = start_session(db.session.get(Person, crew), user_agent="pytest")
        csrf = session.csrf_token
    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
    theirs = record(ident, tapped_at=mine["tapped_at"], note="an older copy")
    answer = client.post(SYNC, json=batch(theirs), headers={CSRF_HEADER: csrf})
    assert answer.get_json()["results"][0]["status"] == "created"
    context.set_offline(False)
    page.get_by_role("button", name="Sync now").click()
    eventually(page, """async (id) => {
        const { getIncident } = await import('/js/store.js');
        return (await getIncident(id)).pending === 0;
    }""", ident)
    [kept] = incidents_in_idb(page)
    assert kept["note"] == "written on the phone"
    assert kept["revision"] == 2 and kept["synced_revision"] == 2
    with live.app.app_context():
        incident = db.session.get(Incident, uuid.UUID(ident))
        assert incident.note == "written on the phone" and incident.revision == 2
        notes = [(e.revision, e.changes["note"]) for e in incident.events
                 if "note" in e.changes]
        assert notes == [(1, [None, "an older copy"]),
                         (2, ["an older copy", "written on the phone"])]
