"""The console says when the list and figures come from a replica that is behind
(api/replica.py, pwa/js/replica.js), in each language, on a 360 px phone.

The live server is SQLite, so the replica is a stand-in: the same database,
reported 95 s behind by api.replica.replica_lag. What the replica really does on
PostgreSQL (lag, stale rows, falling back to the primary) is
tests/test_replication.py::test_managers_list_and_figures_read_from_the_replica_with_its_lag.
"""

import os

import pytest
from playwright.sync_api import expect, sync_playwright

from api.auth.sessions import start_session
from api.extensions import db
from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve_with_csp
from tests.factories import make_incident, make_person, make_station

pytestmark = pytest.mark.browser

EXPECTED = {
    "en": "This may be up to 1 min 35 s behind",
    "ru": "Данные могут отставать на 1 мин 35 с",
    "kk": "Деректер 1 мин 35 с кешігуі мүмкін",
}


@pytest.fixture
def lagging_replica(live_server, monkeypatch):
    import api.replica as replica

    monkeypatch.setattr(replica, "replica_engine", lambda app: db.engine)
    monkeypatch.setattr(replica, "replica_lag", lambda engine: 95.0)
    return live_server


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_the_replicas_lag_is_shown_above_the_list_and_the_figures(lagging_replica, lang,
                                                                  tmp_path):
    url = lagging_replica.url
    with lagging_replica.app.app_context():
        station = make_station()
        crew = make_person("crew", station=station)
        make_incident(crew)
        manager = make_person("manager", station=station, language=lang)
        token, _ = start_session(manager, user_agent="pytest-browser")
    shots = os.environ.get("QORGAU_SCREENSHOTS")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 360, "height": 740},
                                      locale={"kk": "kk-KZ", "ru": "ru-RU"}.get(lang, "en-GB"),
                                      service_workers="block")
        context.add_cookies([{"name": "qorgau_session", "value": token, "url": url,
                              "httpOnly": True}])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        serve_with_csp(page, f"{url}/")
        try:
            page.goto(url + "/#/review")
            for screen in ("list", "figures"):
                if screen == "figures":
                    page.goto(url + "/#/review/figures")
                note = page.locator("#rv-lag")
                expect(note).to_contain_text(EXPECTED[lang], timeout=15000)
                # Right under the heading, on the first screen, no sideways scroll.
                box = note.bounding_box()
                assert box and box["y"] + box["height"] <= 740
                expect(page.locator(".console-view h2")).to_be_in_viewport()
                assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
                if shots:
                    page.screenshot(path=f"{shots}/replica-lag-{screen}-{lang}.png")
        finally:
            context.close()
            browser.close()
    assert not errors, errors
