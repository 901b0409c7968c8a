"""The check-in timer in real Chromium: started with the call's address and the
phone's location, closed with "I'm safe"; started offline, it says nobody else
knows and registers itself when the network is back; in ru/kk/en. And the
console's BS 8484 alarm figures in all three languages."""

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from api.checkin.models import CheckinTimer
from api.extensions import db
from tests.browser import TIMEOUT, open_app, sign_in
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record

pytestmark = pytest.mark.browser

LAT, LON = 43.2389, 76.8897
PHONE = {"locale": "en-GB", "viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


@pytest.fixture
def world(live):
    with live.app.app_context():
        post = make_post(region="75", name="City Hospital No. 7")
        station = make_station(region="75", default_post=post)
        crew = make_person("crew", station=station, language="en")
        manager = make_person("manager", station=station, language="en")
        officer = make_person("police", post=post, language="en")
        return {"crew": crew.id, "manager": manager.id, "police": officer.id}


def timers(live):
    with live.app.app_context():
        rows = db.session.scalars(select(CheckinTimer)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def assert_fits_the_phone(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert "null" not in page.locator("#view-checkin").inner_text()
    box = page.locator("#checkin-title").bounding_box()
    assert box is not None and 0 <= box["y"] < 740


def assert_no_serious_axe_violations(page):
    import json

    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [v for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:4000]


def test_start_a_timer_then_im_safe(browser, live, world, tmp_path):
    phone = browser.new_context(
        base_url=live.url, permissions=["geolocation"],
        geolocation={"latitude": LAT, "longitude": LON, "accuracy": 15}, **PHONE)
    phone.set_default_timeout(TIMEOUT)
    sign_in(phone, live, world["crew"])
    page = open_app(phone)
    page.get_by_role("link", name="Check-in timer", exact=True).click()
    expect(page.locator("#checkin-title")).to_have_text("Check-in timer")
    page.fill("#ci-address", "ул. Абая, д. 10, кв. 5")
    expect(page.locator("#ci-address-hint")).to_contain_text("абай 10")
    assert_fits_the_phone(page)
    page.screenshot(path=str(tmp_path / "checkin-start.png"))
    page.get_by_role("button", name="20 min").click()
    page.get_by_role("button", name="Start timer").click()
    status = page.locator("#ci-status")
    expect(status).to_contain_text("The server has this timer")
    expect(page.locator("#ci-countdown")).to_have_text(
        __import__("re").compile(r"^(20:00|19:5\d)$"))
    [timer] = timers(live)
    assert timer.minutes == 20 and timer.address == "ул. Абая, д. 10, кв. 5"
    assert (timer.lat, timer.lon) == pytest.approx((LAT, LON))
    assert timer.closed_at is None
    assert_fits_the_phone(page)
    assert_no_serious_axe_violations(page)
    page.screenshot(path=str(tmp_path / "checkin-running.png"))

    # The language follows the person's choice.
    page.get_by_role("button", name="Қазақша").click()
    expect(page.locator("#ci-safe")).to_have_text("Мен аман-есенмін")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#ci-safe")).to_have_text("Я в безопасности")
    page.get_by_role("link", name="Главная").click()  # home says a timer is running
    link = page.locator("#checkin-link")
    expect(link).to_have_attribute("aria-label", re.compile(r"^Таймер: отметьтесь до \d\d:\d\d$"))
    expect(link).to_have_text(re.compile(r"\d\d:\d\d$"))  # the deadline, beside "Send now"
    expect(link).to_have_class(re.compile("ci-link-running"))
    page.locator("#checkin-link").click()
    page.locator("#ci-safe").click()
    expect(page.locator("#ci-address")).to_be_visible()  # back to a new timer
    [timer] = timers(live)
    assert timer.closed_at is not None
    phone.close()


def test_offline_start_says_nobody_knows_then_registers(browser, live, world, tmp_path):
    phone = browser.new_context(base_url=live.url, **PHONE)
    phone.set_default_timeout(TIMEOUT)
    sign_in(phone, live, world["crew"])
    page = open_app(phone, "/#/checkin")  # the shell is kept
    expect(page.locator("#ci-address")).to_be_visible()
    phone.set_offline(True)
    page.fill("#ci-address", "мкр. Самал-2, 58")
    page.get_by_role("button", name="10 min").click()
    page.get_by_role("button", name="Start timer").click()
    warning = page.locator("#ci-status")
    expect(warning).to_contain_text("Nobody but this phone knows about this timer.")
    expect(warning).to_have_attribute("role", "alert")
    expect(page.locator("#ci-countdown")).to_be_visible()  # the local timer runs
    assert timers(live) == []
    assert_fits_the_phone(page)
    page.screenshot(path=str(tmp_path / "checkin-offline.png"))

    # Kept on the phone: reopened offline, it still shows it and the warning.
    page.reload()
    expect(page.locator("#ci-status")).to_contain_text("Nobody but this phone knows")

    phone.set_offline(False)  # it keeps trying: the server gets it
    expect(page.locator("#ci-status")).to_contain_text("The server has this timer",
                                                       timeout=20_000)
    [timer] = timers(live)
    assert timer.minutes == 10 and timer.address == "мкр. Самал-2, 58"
    assert timer.lat is None  # no location allowed: none sent
    phone.close()


def test_console_shows_each_posts_share_of_alarms_in_three_languages(browser, live,
                                                                     world, tmp_path):
    from api.incidents import sync
    from api.orgs.models import Person
    from api.police import service as police

    with live.app.app_context():
        crew = db.session.get(Person, world["crew"])
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        ids = []
        for _ in range(2):
            rec = record(police_needed=True, tapped_at=now.isoformat())
            sync.sync(crew, device_id="phone-1", outbox_size=0, app_version=None, sent_at=now,
                      received_at=now, records=[rec])
            ids.append(uuid.UUID(rec["id"]))
        police.acknowledge(db.session.get(Person, world["police"]), ids[0])

    desk = browser.new_context(base_url=live.url, service_workers="block", **PHONE)
    desk.set_default_timeout(TIMEOUT)
    sign_in(desk, live, world["manager"])
    page = desk.new_page()
    page.goto("/#/review/figures")
    figure = page.locator("#al-figures")
    expect(figure).to_contain_text("Alarms taken in time (BS 8484)")
    row = figure.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("City Hospital No. 7")
    expect(row.locator("td").nth(1)).to_contain_text("50 %")
    expect(row.locator("td").nth(1)).to_contain_text("below the target")
    for button, title in (("Русский", "Тревоги, принятые вовремя"),
                          ("Қазақша", "Уақытында қабылданған дабылдар")):
        page.get_by_role("button", name=button).click()
        expect(page.locator("#al-figures")).to_contain_text(title)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("#al-figures").screenshot(path=str(tmp_path / "alarm-figures.png"))
    desk.close()


def test_the_manager_sees_a_timer_nobody_answered_above_the_list(browser, live, world):
    from datetime import UTC, datetime, timedelta

    from api.checkin import service
    from api.orgs.models import Person

    with live.app.app_context():
        crew = db.session.get(Person, world["crew"])
        now = datetime.now(UTC)
        service.start(crew, {"id": uuid.uuid4(), "address": "ул. Абая, д. 10",
                             "minutes": 10, "started_at": now - timedelta(minutes=9)})
        service.on_tick(now + timedelta(minutes=2))  # the end passed: the managers are told
        name = crew.display_name
    desk = browser.new_context(base_url=live.url, service_workers="block", **PHONE)
    desk.set_default_timeout(TIMEOUT)
    sign_in(desk, live, world["manager"])
    page = desk.new_page()
    page.goto("/#/review")
    box = page.locator("#ci-timers")
    expect(box).to_contain_text("Check-in timers")
    expect(box.locator("li")).to_have_count(1)
    expect(box.locator("li")).to_contain_text(name)
    expect(box.locator("li")).to_contain_text("ул. Абая, д. 10")
    expect(box.locator("li")).to_contain_text("NO CHECK-IN since")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#ci-timers li")).to_contain_text("НЕТ ОТМЕТКИ")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    desk.close()
