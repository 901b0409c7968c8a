"""The manager's desk in real Chromium: list, detail, SVG figures, print layout,
under the production Content-Security-Policy (no inline script or style)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect, sync_playwright

from api.auth.sessions import start_session
from api.incidents.models import IncidentStatus
from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve_with_csp
from tests.factories import make_incident, make_person, make_post, make_station

pytestmark = pytest.mark.browser


@pytest.fixture
def desk(live_server):
    with live_server.app.app_context():
        post = make_post(name="City Hospital No. 7")
        station = make_station(default_post=post)
        doctor = make_person("crew", station=station, position="doctor", name="Айгерим")
        manager = make_person("manager", station=station, language="en")
        now = datetime.now(UTC).replace(microsecond=0)
        first = make_incident(doctor, now - timedelta(days=40), part=3, kind="violence",
                              post=post, ack_after_s=120, status=IncidentStatus.ACKNOWLEDGED,
                              note="Ударил по лицу", lat=43.2389, lon=76.8897)
        make_incident(doctor, now - timedelta(days=2), part=1, police_needed=True)
        token, _ = start_session(manager, user_agent="pytest-browser")
        case = first.case_number
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", service_workers="block")
        context.add_cookies([{"name": "qorgau_session", "value": token,
                              "url": live_server.url, "httpOnly": True}])
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        serve_with_csp(page, f"{live_server.url}/")
        try:
            yield page, live_server.url, case, errors
        finally:
            context.close()
            browser.close()


def test_manager_desk_list_detail_figures_and_print(desk):
    page, url, case, errors = desk
    page.goto(url + "/")
    expect(page.locator("#console")).to_be_visible(timeout=15000)
    expect(page).to_have_url(f"{url}/#/review")
    rows = page.locator("#rv-list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#rv-total")).to_have_text("Found: 2")
    expect(page.locator("#log-incident")).to_be_hidden()  # the crew's button is not the desk's

    page.select_option("#rv-part", "3")
    page.click(".rv-filters button[type=submit]")
    expect(page.locator("#rv-list tbody tr")).to_have_count(1)

    page.click(f"text={case}")
    expect(page.locator("#rv-case")).to_contain_text(case)
    expect(page.locator("#rv-history tbody tr")).to_have_count(1)
    expect(page.locator("#rv-map")).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=43.238900&mlon=76.889700"
        "#map=17/43.238900/76.889700")
    expect(page.locator(".rv-section").first).to_contain_text("part 3")
    page.fill("#rv-note", "Передано в полицию")
    page.click(".rv-note-form button[type=submit]")
    expect(page.locator("#rv-history tbody tr")).to_have_count(2)
    expect(page.locator("#rv-chain")).to_contain_text("Chain verified: 2 events")

    # Print: one report, no navigation or controls.
    page.emulate_media(media="print")
    expect(page.locator(".console-nav")).to_be_hidden()
    expect(page.locator("header.bar")).to_be_hidden()
    expect(page.locator("#rv-print")).to_be_hidden()
    expect(page.locator(".rv-print-head")).to_be_visible()
    expect(page.locator("#rv-case")).to_be_visible()
    pdf = page.pdf(format="A4")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # one A4 page
    page.emulate_media(media="screen")
    expect(page.locator(".console-nav")).to_be_visible()

    page.click("text=Figures")
    months = page.locator("#chart-months svg rect")
    expect(months.first).to_be_visible()
    assert months.count() == 2
    expect(page.locator("#chart-months table")).to_contain_text("part 3")
    expect(page.locator("#chart-stations svg text.chart-value")).to_have_text("2")
    expect(page.locator("#rv-timings")).to_contain_text("2 min 0 s")
    expect(page.locator("#rv-figures-total")).to_have_text("Found: 2")

    page.click("text=Crew devices")
    expect(page.locator(".console-view h2")).to_have_text("Crew devices")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_a_search_beyond_the_counting_cap_says_more_than(desk, live_server):
    page, url, case, errors = desk
    live_server.app.config["REVIEW_SEARCH_TOTAL_CAP"] = 1
    page.goto(url + "/")
    expect(page.locator("#rv-total")).to_have_text("Found: 2", timeout=15000)
    page.fill("#rv-q", "qg-")  # both case numbers
    page.click(".rv-filters button[type=submit]")
    expect(page.locator("#rv-total")).to_have_text("Found: more than 1")
    expect(page.locator("#rv-list tbody tr")).to_have_count(2)
    page.fill("#rv-q", case)
    page.click(".rv-filters button[type=submit]")
    expect(page.locator("#rv-total")).to_have_text("Found: 1")
    assert not errors, errors
