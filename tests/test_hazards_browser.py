"""Hazard flags in real Chromium: raised in the manager's console, kept on the crew's
phone, warning offline when the call's address is typed or the phone is inside
the circle; gone when expired; in ru/kk/en with no serious axe violations; and
in the police post's list."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from api.extensions import db
from api.hazards.models import HazardFlag
from tests.browser import TIMEOUT, open_app, sign_in, wait_until
from tests.factories import make_incident, make_person, make_post, make_station

pytestmark = pytest.mark.browser

LAT, LON = 43.2389, 76.8897


@pytest.fixture
def world(live):
    with live.app.app_context():
        post = make_post(region="75", name="City Hospital No. 7")
        station = make_station(region="75", default_post=post)
        crew = make_person("crew", station=station, language="en")
        manager = make_person("manager", station=station, language="en")
        officer = make_person("police", post=post, language="en")
        incident = make_incident(crew, datetime.now(UTC) - timedelta(days=3), lat=LAT, lon=LON)
        return {"crew": crew.id, "manager": manager.id, "police": officer.id,
                "incident": str(incident.id), "station": station.id}


def assert_no_serious_axe_violations(page):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [v for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:4000]


def kept_flags(page):
    return page.evaluate("""async () => {
        const { getMeta } = await import('/js/store.js');
        const kept = await getMeta('hazards');
        return kept ? kept.items : null;
    }""")


def crew_phone(context, live, world, expect_flags):
    """The crew member's app, signed in, with its service worker in control and the
    region's flags kept."""
    sign_in(context, live, world["crew"])
    page = open_app(context)
    expect(page.locator("#hz-address")).to_be_visible()
    wait_until(page, """async (n) => {
        const { getMeta } = await import('/js/store.js');
        const kept = await getMeta('hazards');
        return kept !== null && kept !== undefined && kept.items.length === n;
    }""", arg=expect_flags)
    return page


def check(page, address):
    page.fill("#hz-address", address)
    page.get_by_role("button", name=page.locator(".hz-check").inner_text()).click()


def raise_flag(live, world, address="ул. Абая, д. 10", reason="weapon", **fields):
    from api.hazards import service
    from api.orgs.models import Person

    with live.app.app_context():
        manager = db.session.get(Person, world["manager"])
        flag = service.raise_flag(manager, {
            "incident_id": uuid.UUID(world["incident"]), "address": address, "lat": LAT,
            "lon": LON, "radius_m": 50, "reason": reason, "months": 12, **fields})
        return flag.id


def test_raised_in_the_console_reaches_the_phone_which_warns_offline(browser, context, live,
                                                                      world):
    desk = browser.new_context(base_url=live.url, locale="en-GB", service_workers="block")
    desk.set_default_timeout(TIMEOUT)
    sign_in(desk, live, world["manager"])
    page = desk.new_page()
    page.goto(f"/#/review/incidents/{world['incident']}")
    section = page.locator("#hz-console")
    expect(section).to_be_visible()
    expect(page.locator("#hz-lat")).to_have_value(str(LAT))  # the incident's own point
    page.fill("#hz-address", "ул. Абая, д. 10, кв. 5")
    page.select_option("#hz-reason", "weapon")
    page.get_by_role("button", name="Flag the address").click()
    expect(page.locator("#hz-status")).to_have_text("Address flagged.")
    expect(page.locator("#hz-flags li")).to_have_count(1)
    expect(page.locator("#hz-flags li")).to_contain_text("weapon")
    expect(page.locator("#hz-flags li")).to_contain_text("in force")
    assert_no_serious_axe_violations(page)
    desk.close()

    page = crew_phone(context, live, world, expect_flags=1)
    [kept] = kept_flags(page)
    assert set(kept) == {"id", "address_key", "lat", "lon", "radius_m", "reason", "raised_at",
                         "expires_at"}  # nothing about the incident or who reported it

    context.set_offline(True)
    page.reload()
    expect(page.locator("#hz-address")).to_be_visible()
    check(page, "Абая көшесі, 10 үй")
    warning = page.locator("#hz-warning")
    expect(warning).to_be_visible()
    expect(warning).to_have_attribute("role", "alert")
    expect(warning).to_contain_text("Dangerous address")
    expect(warning).to_contain_text("Reason: weapon")
    expect(warning).to_contain_text("Ask for police before entering.")
    today = datetime.now(UTC).astimezone().strftime("%Y-%m-%d")[:7]
    expect(warning).to_contain_text(f"Flagged on {today}")

    check(page, "Абая 12")  # the building next door
    expect(page.locator("#hz-warning")).to_have_count(0)
    expect(page.locator(".hz-status")).to_contain_text("No flag for “абай 12”")
    check(page, "Абая")
    expect(page.locator(".hz-status")).to_have_text(
        "Type the street (or microdistrict) and the house number.")
    # Typing alone (no button) warns too.
    page.fill("#hz-address", "пр. Абая 10")
    expect(page.locator("#hz-warning")).to_be_visible()

    # The police post of the region sees it in its list, with the address.
    post = browser.new_context(base_url=live.url, locale="en-GB", service_workers="block")
    post.set_default_timeout(TIMEOUT)
    sign_in(post, live, world["police"])
    page = post.new_page()
    page.goto("/#/police")
    expect(page.locator("#hz-police")).to_contain_text("ул. Абая, д. 10, кв. 5")
    expect(page.locator("#hz-police")).to_contain_text("weapon")
    post.close()


def test_an_expired_flag_stops_warning_and_the_next_sync_drops_it(context, live, world):
    soon = raise_flag(live, world, address="Абая 10", reason="dog")
    later = raise_flag(live, world, address="мкр. Самал-2, д. 5", reason="group")
    with live.app.app_context():
        db.session.get(HazardFlag, soon).expires_at = datetime.now(UTC) + timedelta(seconds=4)
        db.session.commit()
    page = crew_phone(context, live, world, expect_flags=2)
    context.set_offline(True)
    check(page, "Абая 10")
    expect(page.locator("#hz-warning")).to_contain_text("dangerous dog")
    time.sleep(4.5)  # past the flag's expiry: the phone's own copy says so
    check(page, "Абая д. 10")
    expect(page.locator(".hz-status")).to_contain_text("No flag for “абай 10”")
    expect(page.locator("#hz-warning")).to_have_count(0)
    check(page, "Самал-2, 5")
    expect(page.locator("#hz-warning")).to_contain_text("aggressive group")

    # The manager withdraws the other one; at the next download it leaves the phone.
    with live.app.app_context():
        db.session.get(HazardFlag, later).withdrawn_at = datetime.now(UTC)
        db.session.commit()
    context.set_offline(False)
    page.reload()
    wait_until(page, """async () => {
        const { getMeta } = await import('/js/store.js');
        const kept = await getMeta('hazards');
        return kept && kept.items.length === 0;
    }""")
    check(page, "Самал-2, 5")
    expect(page.locator(".hz-status")).to_contain_text("No flag for “самал 2 5”")


def test_inside_the_circle_the_phone_warns_without_an_address(context, live, world):
    raise_flag(live, world, reason="violence")
    context.grant_permissions(["geolocation"])
    context.set_geolocation({"latitude": LAT + 0.0002, "longitude": LON})  # ~22 m
    page = crew_phone(context, live, world, expect_flags=1)
    warning = page.locator("#hz-warning")
    expect(warning).to_contain_text("You are near a flagged place (about 22 m)")
    expect(warning).to_contain_text("Reason: violence")
    context.set_geolocation({"latitude": LAT + 0.002, "longitude": LON})  # ~220 m away
    expect(page.locator("#hz-warning")).to_have_count(0)


@pytest.mark.parametrize("locale,lang,title,ask", [
    ("ru-RU", "ru", "Опасный адрес", "Вызовите полицию до входа."),
    ("kk-KZ", "kk", "Қауіпті мекенжай", "Кірер алдында полиция шақырыңыз."),
    ("en-GB", "en", "Dangerous address", "Ask for police before entering."),
])
def test_the_warning_in_each_language_has_no_serious_axe_violations(browser, live,
                                                                    world, locale, lang,
                                                                    title, ask):
    from api.orgs.models import Language, Person

    with live.app.app_context():
        db.session.get(Person, world["crew"]).language = Language(lang)
        db.session.commit()
    raise_flag(live, world, reason="threats")
    phone = browser.new_context(base_url=live.url, locale=locale)
    phone.set_default_timeout(TIMEOUT)
    page = crew_phone(phone, live, world, expect_flags=1)
    page.fill("#hz-address", "улица Абая 10")
    warning = page.locator("#hz-warning")
    expect(warning).to_contain_text(title)
    expect(warning).to_contain_text(ask)
    reason = page.evaluate("async (l) => (await import('/js/i18n.js')).STRINGS[l]"
                           ".hz_reason_threats", lang)
    expect(warning).to_contain_text(reason)
    assert "undefined" not in warning.inner_text() and "null" not in warning.inner_text()
    page.set_viewport_size({"width": 360, "height": 740})
    page.fill("#hz-address", "")
    page.fill("#hz-address", "улица Абая 10")
    # On a 360 px phone the warning fits the width and is not under the fixed button.
    box = page.locator("#hz-box").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.wait_for_function("""() => {
        const shown = document.getElementById('hz-warning')?.getBoundingClientRect();
        const button = document.querySelector('.tap-zone').getBoundingClientRect();
        return shown && shown.top >= 0 && shown.bottom <= button.top;
    }""", timeout=5000)
    assert_no_serious_axe_violations(page)
    phone.close()


def test_sign_out_takes_the_flags_off_the_phone(context, live, world):
    raise_flag(live, world)
    page = crew_phone(context, live, world, expect_flags=1)
    page.goto("/#/account")
    page.get_by_role("button", name="Sign out").click()
    wait_until(page, """async () => {
        const { getMeta } = await import('/js/store.js');
        return !(await getMeta('hazards'));
    }""")
    page.goto("/#/")
    expect(page.locator("#hz-address")).to_have_count(0)
