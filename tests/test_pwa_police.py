"""The police officer's screens in real Chromium (js/police.js): the post's
list with the urgent incident at the top, acknowledge, the ЕРДР number with
the server's field error shown inline, closing with a note; then the crew
member's own phone shows that the police acknowledged. No serious or critical
axe violations, and nothing refused by the production Content-Security-Policy.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser import TIMEOUT, api_client, open_app, serve_with_csp, sign_in, tap, unsynced
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import batch, record

pytestmark = pytest.mark.browser



@pytest.fixture
def post_world(live):
    with live.app.app_context():
        post = make_post(name="City Hospital No. 7")
        station = make_station(default_post=post)
        crew = make_person("crew", station=station, position="feldsher", language="en")
        officer = make_person("police", post=post, language="en", name="Lt. Serikbayev")
        return {"crew": crew.id, "officer": officer.id}


def new_context(browser, live):
    ctx = browser.new_context(base_url=live.url, locale="en-GB")
    ctx.set_default_timeout(TIMEOUT)
    return ctx


def sync_older_incident(live, person_id):
    """An earlier incident of the same crew member, synced from another phone."""
    client = api_client(live.app, person_id)
    body = batch(record(tapped_at="2026-06-01T08:00:00+05:00", kind="threat"),
                 sent_at="2026-06-01T08:01:00+05:00")
    response = client.post("/api/v1/incidents/sync", json=body)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["results"][0]
    assert result["status"] == "created", result
    return result["incident"]["case_number"]


def axe_serious(page):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_officer_acknowledges_records_erdr_and_closes(browser, live, post_world):
    if not live.has_route("/api/v1/police/incidents"):
        pytest.skip("waits on the police API")
    older_case = sync_older_incident(live, post_world["crew"])

    # The crew member logs it on their phone: police needed now, with a location.
    crew_ctx = browser.new_context(base_url=live.url, locale="en-GB",
                                   permissions=["geolocation"],
                                   geolocation={"latitude": 43.2389, "longitude": 76.8897,
                                                "accuracy": 12})
    crew_ctx.set_default_timeout(TIMEOUT)
    police_ctx = new_context(browser, live)
    try:
        sign_in(crew_ctx, live, post_world["crew"])
        crew = open_app(crew_ctx)
        tap(crew)
        crew.get_by_label("Violence", exact=True).check()
        crew.get_by_label("Police needed now").check()
        # (wait_for_function does not await an async predicate: poll instead.)
        for _ in range(300):
            if crew.evaluate("""async () => {
                const { listIncidents } = await import('/js/store.js');
                const [r] = await listIncidents();
                return Boolean(r && r.police_needed && r.kind === 'violence'
                    && r.location !== null && r.pending === 0 && r.server?.case_number);
            }"""):
                break
            crew.wait_for_timeout(50)
        expect(unsynced(crew)).to_have_attribute("data-count", "0")
        [mine] = crew.evaluate("""async () => {
            const { listIncidents } = await import('/js/store.js');
            return await listIncidents();
        }""")
        case = mine["server"]["case_number"]
        incident_id = mine["id"]

        # The officer's screen, under the production CSP.
        sign_in(police_ctx, live, post_world["officer"])
        page = police_ctx.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        serve_with_csp(page, f"{live.url}/")
        page.goto("/")
        expect(page).to_have_url(f"{live.url}/#/police")
        cards = page.locator("#pl-list .pl-item")
        expect(cards).to_have_count(2)
        top = cards.first
        expect(top.locator(".pl-case")).to_have_text(case)
        expect(top).to_contain_text("POLICE NEEDED NOW")
        expect(top).to_contain_text("Art. 380-3 part")
        expect(top).to_contain_text("Routed to a police post")
        expect(cards.nth(1).locator(".pl-case")).to_have_text(older_case)
        expect(page.locator("#log-incident")).to_be_hidden()  # the crew's button is not theirs
        expect(page.locator("#pl-push .push-toggle")).to_have_text("Turn on notifications")
        assert axe_serious(page) == [], json.dumps(axe_serious(page), indent=1)[:4000]

        # A big target on a phone-sized screen too.
        box = top.locator("a").bounding_box()
        assert box["height"] >= 48

        top.locator("a").click()
        expect(page).to_have_url(f"{live.url}/#/police/incidents/{incident_id}")
        expect(page.locator("#pl-case")).to_have_text(f"Case {case}")
        expect(page.locator("#pl-coords")).to_have_text("43.238900, 76.889700")
        expect(page.locator("#pl-map")).to_have_attribute(
            "href", "https://www.openstreetmap.org/?mlat=43.238900&mlon=76.889700"
            "#map=17/43.238900/76.889700")
        # Nearest by the fix when it arrived before the first sync, else the station's post.
        expect(page.locator("#pl-reason")).to_have_text(
            re.compile(r"^(the nearest post of the region to the place"
                       r"|the substation's default post)$"))
        history = page.locator("#pl-history li")
        expect(history.first).to_contain_text("logged")
        expect(page.locator("#pl-history")).to_contain_text("routed")
        assert axe_serious(page) == [], json.dumps(axe_serious(page), indent=1)[:4000]

        page.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#pl-acknowledged")).to_contain_text(
            "Acknowledged by Lt. Serikbayev at")
        expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

        # A bad ЕРДР number: the server's field error, in words, next to the field.
        page.get_by_role("textbox", name="ЕРДР number").fill("QG-75-2026-000001")
        page.get_by_role("button", name="Save ЕРДР number").click()
        error = page.locator("#pl-erdr-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("digits only")
        expect(page.locator("#pl-erdr")).to_have_attribute("aria-invalid", "true")
        page.get_by_role("textbox", name="ЕРДР number").fill("261000031000123")
        page.get_by_role("button", name="Save ЕРДР number").click()
        expect(page.locator("#pl-erdr-current")).to_have_text(
            "Recorded ЕРДР number: 261000031000123")

        # Closing needs a note.
        page.get_by_role("radio", name="Closed").check()
        page.get_by_role("button", name="Save status").click()
        expect(page.locator("#pl-note-error")).to_have_text(
            "To close the case, say why in the note.")
        page.locator("#pl-note").fill("Offender detained; materials passed to the investigator.")
        page.get_by_role("button", name="Save status").click()
        expect(page.locator("#pl-status-now")).to_have_text("Now: Closed")
        expect(page.locator("#pl-notice")).to_have_text("Case closed; the crew has been told.")
        expect(page.locator("#pl-status-form")).to_have_count(0)

        # Russian and Kazakh too.
        page.get_by_role("button", name="Қазақша").click()
        expect(page.locator("#pl-status-now")).to_have_text("Қазір: Жабылды")
        page.get_by_role("button", name="Русский").click()
        expect(page.locator("#pl-status-now")).to_have_text("Сейчас: Закрыто")
        page.get_by_role("button", name="English").click()
        page.locator(".pl-back").click()
        expect(page.locator("#pl-list .pl-item").nth(1)).to_contain_text("Closed")
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors

        # The crew member's phone: acknowledged by police, and closed.
        crew.goto("/#/incidents")
        crew.goto(f"/#/incidents/{incident_id}")
        expect(crew.locator(".history")).to_contain_text("Acknowledged by police")
        expect(crew.locator("#incident-body .states")).to_contain_text("Closed")
    finally:
        crew_ctx.close()
        police_ctx.close()


def test_a_push_link_opens_the_officers_detail(browser, live, post_world):
    """The push's /#/incidents/<id> is the crew's route; an officer lands on their detail."""
    if not live.has_route("/api/v1/police/incidents"):
        pytest.skip("waits on the police API")
    client = api_client(live.app, post_world["crew"])
    body = batch(record(police_needed=True), sent_at="2026-06-01T09:31:00+05:00")
    res = client.post("/api/v1/incidents/sync", json=body)
    incident = res.get_json()["results"][0]["incident"]
    ctx = new_context(browser, live)
    try:
        sign_in(ctx, live, post_world["officer"])
        page = ctx.new_page()
        page.goto(f"/#/incidents/{incident['id']}")
        expect(page).to_have_url(f"{live.url}/#/police/incidents/{incident['id']}")
        expect(page.locator("#pl-case")).to_have_text(f"Case {incident['case_number']}")
        expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    finally:
        ctx.close()


def test_a_refresh_never_takes_the_acknowledge_button_from_under_a_finger(
        browser, live, post_world):
    """The screen refreshes itself (a timer, a push, coming back to the app). If that
    happens between the press and the release of "Acknowledge" while the case has
    changed, a redraw would put a new button under the finger: released on the new
    one, the press is no click at all. The refresh waits for the finger instead."""
    client = api_client(live.app, post_world["crew"])
    first = record(police_needed=True)
    res = client.post("/api/v1/incidents/sync",
                      json=batch(first, sent_at="2026-06-01T09:31:00+05:00"))
    ident = res.get_json()["results"][0]["incident"]["id"]
    ctx = new_context(browser, live)
    try:
        sign_in(ctx, live, post_world["officer"])
        page = ctx.new_page()
        page.goto(f"/#/police/incidents/{ident}")
        button = page.get_by_role("button", name="Acknowledge")
        expect(button).to_be_visible()
        box = button.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        # Meanwhile the crew adds a note from the ambulance, and the screen refreshes.
        res = client.post("/api/v1/incidents/sync",
                          json=batch({**first, "revision": 2, "note": "second man ran off"},
                                     sent_at="2026-06-01T09:40:00+05:00"))
        assert res.get_json()["results"][0]["status"] == "updated"
        with page.expect_response(lambda r: f"/api/v1/police/incidents/{ident}" in r.url):
            page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        page.evaluate("new Promise((done) => requestAnimationFrame(() => "
                      "requestAnimationFrame(done)))")
        page.mouse.up()
        expect(page.locator("#pl-acknowledged")).to_contain_text("Lt. Serikbayev")
        # The refresh was only put off: the next one shows the crew's note.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        expect(page.locator("#main")).to_contain_text("second man ran off")
    finally:
        ctx.close()
