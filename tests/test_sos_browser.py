"""The SOS in real Chromium (js/sos.js, js/police_sos.js): a short tap sends
nothing and a 1.5 s hold sends an SOS; the phone's moving location (Playwright's
geolocation emulation, CDP underneath) reaches the officer's screen in order,
with its accuracy and the 2GIS/Yandex/Google links; the officer's "on the way"
with an ETA reaches the crew's screen; the duress PIN looks exactly like a
cancel on the phone and keeps the alarm open; an SOS whose answer was lost is
still one incident."""

import re
import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect as playwright_expect
from sqlalchemy import select

from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.sos.models import SosAlarm
from tests.browser import TIMEOUT, incidents_in_idb, open_app, sign_in, wait_until
from tests.factories import make_person, make_post, make_station
from tests.sms_helpers import SECRET, gateway  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


class _Patient:
    """Playwright's assertions, each waiting up to the suite's ceiling (a loaded
    machine is slow, not wrong), not its 5 s default."""

    def __init__(self, assertions):
        self._assertions = assertions

    def __getattr__(self, name):
        method = getattr(self._assertions, name)
        return lambda *args, **kwargs: method(*args, **{"timeout": TIMEOUT, **kwargs})


def expect(target):
    return _Patient(playwright_expect(target))

START = {"latitude": 43.2389, "longitude": 76.8897, "accuracy": 12}


@pytest.fixture
def world(live):
    with live.app.app_context():
        post = make_post(name="City Hospital No. 7")
        station = make_station(default_post=post)
        crew = make_person("crew", station=station, position="feldsher", language="en")
        officer = make_person("police", post=post, language="en", name="Lt. Serikbayev")
        manager = make_person("manager", station=station, language="en")
        return {"crew": crew.id, "officer": officer.id, "manager": manager.id}


# Counts the page's Screen Wake Lock requests (headless Chromium may refuse them).
WAKE_LOCK_SPY = """
window.__wakeLocks = 0;
if (navigator.wakeLock) {
  const request = navigator.wakeLock.request.bind(navigator.wakeLock);
  navigator.wakeLock.request = (type) => { window.__wakeLocks += 1; return request(type); };
}
"""


def crew_page(browser, live, world, geolocation=START):
    ctx = browser.new_context(base_url=live.url, locale="en-GB", permissions=["geolocation"],
                              geolocation=geolocation)
    ctx.set_default_timeout(TIMEOUT)
    ctx.add_init_script(WAKE_LOCK_SPY)
    sign_in(ctx, live, world["crew"])
    page = open_app(ctx)
    # Now and then the context's emulated position never reaches a page opened
    # before it (getCurrentPosition times out): set it again for the open page.
    ctx.set_geolocation(geolocation)
    expect(page.locator("#sos-hold")).to_be_visible()
    # Fixes every 0.3 s instead of 10 s, so the test does not wait through them.
    page.evaluate("async () => { (await import('/js/sos.js')).timing.fixEveryMs = 300; }")
    return ctx, page


def hold(page, ms=1700):
    # hover() waits until the control itself would receive the pointer there.
    page.locator("#sos-hold").hover()
    page.mouse.down()
    page.wait_for_timeout(ms)
    page.mouse.up()


def sos_records(page):
    return [r for r in incidents_in_idb(page) if r.get("sos")]


def open_sos(page) -> str:
    hold(page)
    expect(page).to_have_url(re.compile(r"#/sos/[0-9a-f-]{36}$"))
    ident = page.url.rsplit("/", 1)[1]
    expect(page.locator("[data-step='received']")).to_have_attribute("data-done", "1")
    return ident


def set_pins(page, pin="2468", duress="1357"):
    page.locator(".crew-nav a.crew-tab[href='#/account']").click()
    page.fill("#sos-pin-new", pin)
    page.fill("#sos-duress-new", duress)
    page.click("#sos-pins-save")
    expect(page.locator("#sos-pins-message")).to_have_text("PINs saved.")
    page.locator(".crew-nav a.crew-tab[href='#/']").click()


def test_a_short_tap_sends_nothing_and_a_hold_sends_an_sos(browser, live, world):
    ctx, page = crew_page(browser, live, world)
    try:
        page.click("#sos-hold")            # a brush or a tap
        hold(page, ms=600)                 # let go too early
        page.wait_for_timeout(1200)
        assert sos_records(page) == []
        assert page.url.endswith("/") or page.url.endswith("#/")
        ident = open_sos(page)
        [record] = sos_records(page)
        assert record["id"] == ident and record["police_needed"] is True
        expect(page.locator("#sos-title")).to_have_text("SOS sent: calling for help")
        with live.app.app_context():
            incident = db.session.get(Incident, uuid.UUID(ident))
            assert incident.sos and incident.police_needed
            assert db.session.get(SosAlarm, incident.id).state == "open"
        expect(page.locator("[data-step='delivered']")).to_contain_text("City Hospital No. 7")
        expect(page.locator("#sos-location")).to_contain_text("Location sent")
        assert page.evaluate("window.__wakeLocks") >= 1  # the screen is kept on
        serious = [v["id"] for v in Axe().run(page).response["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == []
        assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate(
            "window.innerWidth")
        # Gone home, the open SOS is one tap away.
        page.locator(".crew-nav a.crew-tab[href='#/']").click()
        expect(page.locator("#sos-open-link")).to_have_text("Your SOS is open: back to it →")
        page.click("#sos-open-link")
        expect(page).to_have_url(re.compile(rf"#/sos/{ident}$"))
        expect(page.locator("[data-step='received']")).to_have_attribute("data-done", "1")
    finally:
        ctx.close()


def test_moving_location_reaches_the_police_in_order_and_on_the_way_reaches_the_crew(
        browser, live, world):
    # Streams of 2 s: the crew's screen goes through several reconnections meanwhile.
    live.app.config["SOS_STREAM_SECONDS"] = 2
    ctx, crew = crew_page(browser, live, world)
    police_ctx = browser.new_context(base_url=live.url, locale="en-GB")
    police_ctx.set_default_timeout(TIMEOUT)
    try:
        ident = open_sos(crew)
        sign_in(police_ctx, live, world["officer"])
        officer = police_ctx.new_page()
        officer.goto(f"/#/police/incidents/{ident}")
        expect(officer.locator("#sos-live")).to_contain_text("Alarm open")
        path = [(43.2389, 76.8897, 12), (43.2401, 76.8912, 20), (43.2420, 76.8935, 8)]
        for lat, lon, accuracy in path:
            ctx.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": accuracy})
            expect(officer.locator("#sos-fix-coords")).to_have_text(f"{lat:.6f}, {lon:.6f}")
            expect(officer.locator("#sos-fix-accuracy")).to_have_text(f"±{accuracy} m")
        expect(officer.locator("#sos-fix-age")).to_have_text(re.compile(r"^\d+ s ago$"))
        expect(officer.locator("#sos-live")).not_to_contain_text("null")
        lat, lon, _ = path[-1]
        expect(officer.locator("#sos-map-2gis")).to_have_attribute(
            "href", f"https://2gis.kz/geo/{lon:.6f},{lat:.6f}")
        expect(officer.locator("#sos-map-yandex")).to_have_attribute(
            "href", re.compile(rf"pt={lon:.6f},{lat:.6f}"))
        expect(officer.locator("#sos-map-google")).to_have_attribute(
            "href", re.compile(rf"query={lat:.6f},{lon:.6f}"))
        # Every point arrived, in the order the phone moved (repeats of a point allowed):
        # the incident's chain holds each fix as an event.
        with live.app.app_context():
            points = [tuple(e.changes["location"][1][k] for k in ("lat", "lon"))
                      for e in db.session.scalars(select(IncidentEvent).where(
                          IncidentEvent.incident_id == uuid.UUID(ident),
                          IncidentEvent.kind == "sos_location").order_by(IncidentEvent.id))]
        firsts = [points.index((lat, lon)) for lat, lon, _ in path]
        assert firsts == sorted(firsts), points
        # The officer's screen lists the latest of them, oldest first, ending at the newest.
        expect(officer.locator("#sos-trail li").last).to_contain_text(f"{lat:.5f}, {lon:.5f}")

        officer.fill("#sos-eta", "7")
        officer.click("#sos-on-the-way")
        expect(officer.locator("#sos-on-the-way-done")).to_contain_text("about 7 min")
        # The crew's screen shows it (server-sent events), with who and which post.
        expect(crew.locator("[data-step='taken']")).to_have_text(
            re.compile("Taken by Lt. Serikbayev \\(City Hospital No. 7\\)"))
        expect(crew.locator("[data-step='on_the_way']")).to_contain_text("about 7 min")
    finally:
        police_ctx.close()
        ctx.close()


def test_the_duress_pin_looks_like_a_cancel_and_keeps_the_alarm_open(browser, live, world):
    ctx, page = crew_page(browser, live, world)
    try:
        set_pins(page)
        shown = {}
        for pin in ("0000", "1357", "2468"):
            ident = open_sos(page)
            if pin == "0000":
                page.fill("#sos-pin", pin)
                page.click("#sos-cancel")
                expect(page.locator("#sos-pin-error")).to_have_text(
                    "Wrong PIN. The SOS stays on.")
                pin = "1357"
                shown["wrong"] = True
            page.fill("#sos-pin", pin)
            page.click("#sos-cancel")
            expect(page.locator("#sos-title")).to_have_text("SOS cancelled")
            shown[pin] = (page.locator("#view-sos").inner_text(), ident)
            page.locator("#view-sos .nav-link[href='#/']").click()
            expect(page.locator("#sos-open-link")).to_have_count(0)  # cancelled: none open
        assert shown["1357"][0] == shown["2468"][0]  # nothing on the phone tells them apart
        with live.app.app_context():
            def alarm_of(ident):
                return db.session.scalar(select(SosAlarm).where(
                    SosAlarm.incident_id == uuid.UUID(ident)))
            for _ in range(100):
                duress = alarm_of(shown["1357"][1])
                own = alarm_of(shown["2468"][1])
                if duress.duress_at is not None and own.state == "stood_down":
                    break
                page.wait_for_timeout(100)
                db.session.rollback()
            assert duress.state == "open" and duress.duress_at is not None
            assert own.state == "stood_down" and own.duress_at is None
        # The station manager's console shows the duress, the officer's screen too.
        manager_ctx = browser.new_context(base_url=live.url, locale="en-GB")
        manager_ctx.set_default_timeout(TIMEOUT)
        sign_in(manager_ctx, live, world["manager"])
        manager = manager_ctx.new_page()
        manager.goto(f"/#/review/incidents/{shown['1357'][1]}")
        expect(manager.locator("#sos-duress")).to_contain_text("DURESS")
        expect(manager.locator("#sos-state")).to_contain_text("Alarm open")
        expect(manager.locator("#sos-on-the-way")).to_have_count(0)  # the police's action
        manager_ctx.close()
        police_ctx = browser.new_context(base_url=live.url, locale="en-GB")
        police_ctx.set_default_timeout(TIMEOUT)
        sign_in(police_ctx, live, world["officer"])
        officer = police_ctx.new_page()
        officer.goto(f"/#/police/incidents/{shown['2468'][1]}")
        expect(officer.locator("#sos-state")).to_contain_text("Stood down by the crew member")
        expect(officer.locator("#sos-duress")).to_have_count(0)
        police_ctx.close()
    finally:
        ctx.close()


def test_an_sos_whose_answer_was_lost_is_still_one_incident(browser, live, world):
    ctx, page = crew_page(browser, live, world)
    lost = {"n": 0}

    def lose_first_answer(route):
        if route.request.method == "POST" and lost["n"] == 0:
            lost["n"] += 1
            route.fetch()          # the server stores it ...
            route.abort("failed")  # ... and the phone never hears back
            return
        route.continue_()

    try:
        page.route("**/api/v1/incidents/sync", lose_first_answer)
        ident = open_sos(page)
        assert lost["n"] == 1
        with live.app.app_context():
            assert db.session.query(Incident).filter(Incident.sos.is_(True)).count() == 1
            assert db.session.query(SosAlarm).count() == 1
            assert db.session.get(Incident, uuid.UUID(ident)) is not None
        expect(page.locator("#unsynced")).to_have_attribute("data-count", "0")
    finally:
        ctx.close()


def test_an_sos_made_offline_is_offered_by_sms_on_its_own_screen(
        context, live, crew, gateway):  # noqa: F811
    """Issue 17's "Send by SMS" comes to the SOS as to any urgent record."""
    live.app.config.update(SMS_NUMBERS={"75": "+77010000075"}, SMS_WEBHOOK_SECRET=SECRET,
                           SMS_GATEWAY_URL=gateway.url)
    sign_in(context, live, crew)
    page = open_app(context, "/#/account")
    for _ in range(150):
        if page.evaluate("async () => (await import('/js/store.js')).getMeta('sms')"):
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError("the phone never kept its SMS key")
    page.locator(".crew-nav a.crew-tab[href='#/']").click()
    page.clock.install()  # from here 30 s pass in no time
    context.set_offline(True)
    page.locator("#sos-hold").hover()
    page.mouse.down()
    page.clock.fast_forward(1600)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"#/sos/[0-9a-f-]{36}$"))
    offer = page.locator("#view-sos [data-sms-offer] a.sms-send")
    # The 30 s count from the record's tap: it must be on the phone before time jumps.
    wait_until(page, """async () => {
        const { listIncidents } = await import('/js/store.js');
        return (await listIncidents()).some((r) => r.sos);
    }""")
    page.clock.fast_forward(32_000)
    expect(offer).to_be_visible()
    assert offer.get_attribute("href").startswith("sms:")
    expect(page.locator("#sos-offline")).to_contain_text("NO CONNECTION")
