"""The manager's desk shows both times and settles a pending time correction,
in real Chromium (issue 22)."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect, sync_playwright

from api.auth.sessions import start_session
from api.extensions import db
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.factories import make_incident, make_person, make_post, make_station

pytestmark = pytest.mark.browser


def test_the_manager_confirms_a_correction_and_sees_happened_and_logged(live_server):
    with live_server.app.app_context():
        station = make_station(default_post=make_post())
        crew = make_person("crew", station=station, position="feldsher")
        manager = make_person("manager", station=station, language="en")
        logged = datetime(2026, 11, 20, 21, 10, tzinfo=UTC)  # 02:10 on 21 November, local
        incident = make_incident(crew, logged, part=1)
        # The crew stated 23:40 on 10 November: more than seven days before the tap.
        stated = datetime(2026, 11, 10, 18, 40, tzinfo=UTC)
        incident.occurred_at_pending = stated
        db.session.commit()
        ident, case = str(incident.id), incident.case_number
        token, _ = start_session(manager, user_agent="pytest-browser")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", service_workers="block")
        context.add_cookies([{"name": "qorgau_session", "value": token,
                              "url": live_server.url, "httpOnly": True}])
        page = context.new_page()
        try:
            page.goto(f"{live_server.url}/#/review")
            row = page.locator("#rv-list tbody tr", has_text=case)
            expect(row).to_contain_text("Time correction awaiting confirmation", timeout=15000)
            page.goto(f"{live_server.url}/#/review/incidents/{ident}")
            pending = page.locator("#rv-time-pending")
            expect(pending).to_contain_text(
                "Time correction awaiting confirmation: the crew states 2026-11-10 23:40")
            expect(page.locator("#rv-happened")).to_have_count(0)
            page.click("#rv-time-confirm")
            expect(page.locator("#rv-time-pending")).to_have_count(0)
            expect(page.locator("#rv-happened")).to_have_text(
                "Happened 2026-11-10 23:40 · logged 2026-11-21 02:10")
            expect(page.locator("#rv-history")).to_contain_text("time confirmed by a manager")
            page.goto(f"{live_server.url}/#/review")
            expect(page.locator("#rv-list tbody tr", has_text=case)).to_contain_text(
                "Happened 2026-11-10 23:40 · logged 2026-11-21 02:10")
        finally:
            context.close()
            browser.close()
