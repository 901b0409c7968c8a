"""Every role's main screens on a phone (issue 13), in real Chromium against one
real app served for the whole module (one server, one browser).

At 360×740 and 390×844, in the device's language (Russian) while every
profile says Kazakh: no sideways scroll, the screen's heading inside the first
viewport, no `null`/`undefined`/`NaN`/`[object Object]` on screen, every
history entry worded in Russian (no field names, no JSON), and axe clean
(serious/critical) in the light and the dark colour scheme. Screenshots of
each screen at 390×844 go to /tmp/ux/ for a person to look at.

Then the journeys the issue names: offline, a signed-in crew member is never
asked to sign in (screen changes, an offline reload) while a 401 does sign
them out; the big button never moves (Layout Instability API); "My incidents"
and the footer show what the server said; an officer lands on the alerts; a
manager adds and invites a person from the console.
"""

import json
import logging
import re
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from api import create_app
from api.auth.access import SESSION_COOKIE
from api.auth.models import AuthSession
from api.auth.sessions import start_session
from api.extensions import db
from api.orgs.models import Person
from tests.browser import CHROMIUM, CHROMIUM_ARGS, api_client
from tests.conftest import base_config, migrate_to_head
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import batch, record
from tests.test_pwa import ROOT, build_pwa

pytestmark = pytest.mark.browser

TIMEOUT = 15_000
SHOTS = Path("/tmp/ux")
PHONES = {"360": {"width": 360, "height": 740}, "390": {"width": 390, "height": 844}}
BAD_TEXT = re.compile(r"\b(null|undefined|NaN)\b|\[object Object\]")
RAW = re.compile(r"\b[a-z]+_[a-z_]+\b|[{}\[\]\"]")
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


# ---------------------------------------------------------------- one server, one browser

class World:
    pass


def session_for(app, person_id):
    with app.app_context():
        token, session = start_session(db.session.get(Person, person_id), user_agent="pytest")
        return token, session.csrf_token


@pytest.fixture(scope="module")
def world(tmp_path_factory, database_url):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("phone")
    pwa = base / "pwa"
    shutil.copytree(ROOT / "pwa", pwa)
    build_pwa.build(pwa)
    path = base / "live.db"
    if database_url.startswith("sqlite:"):
        shutil.copyfile(make_url(database_url).database, path)
    else:
        migrate_to_head(f"sqlite:///{path}")
    app = create_app({**base_config(f"sqlite:///{path}"), "RP_ID": "localhost",
                      "PWA_DIR": str(pwa)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://localhost:{server.server_port}"
    app.config.update(ALLOWED_ORIGINS=[url], BASE_URL=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    w = World()
    w.app, w.url = app, url
    with app.app_context():
        post = make_post(name="Городская больница № 7")
        station = make_station(default_post=post)
        # Every profile says Kazakh; the phones say Russian: the phone wins.
        w.crew = make_person("crew", station=station, position="feldsher", language="kk",
                             name="Айгерим Сейткали").id
        w.officer = make_person("police", post=post, language="kk",
                                name="Серик Абенов").id
        w.manager = make_person("manager", stations=[station], language="kk",
                                name="Гульнара Оспанова").id
        w.newcomer = make_person("crew", station=station, position="nurse",
                                 name="Ерлан Жумабеков").id
        from api.auth import service as auth
        token, _ = auth.create_invitation(db.session.get(Person, w.newcomer))
        w.invitation = token
    # An incident synced from the crew's phone, acknowledged by the police,
    # with an ЕРДР number and a status: a history with every kind of change.
    crew = api_client(app, w.crew)
    body = batch(record(tapped_at="2026-06-01T08:00:00+05:00", kind="violence",
                        police_needed=True, aggravating=[], note="Ударил по лицу",
                        location={"lat": 43.2389, "lon": 76.8897, "accuracy_m": 12,
                                  "source": "gps", "fixed_at": "2026-06-01T08:00:05+05:00"}),
                 sent_at="2026-06-01T08:01:00+05:00")
    answer = crew.post("/api/v1/incidents/sync", json=body)
    assert answer.status_code == 200, answer.get_json()
    w.incident = answer.get_json()["results"][0]["incident"]["id"]
    police = api_client(app, w.officer)
    for method, path, payload in [
            ("post", "acknowledge", None),
            ("put", "erdr", {"erdr_number": "261500031000123"}),
            ("post", "status", {"status": "investigating", "note": "Опрошены свидетели"})]:
        response = getattr(police, method)(f"/api/v1/police/incidents/{w.incident}/{path}",
                                           json=payload)
        assert response.status_code in (200, 201), (path, response.get_json())
    try:
        yield w
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def phone(browser, world, person_id=None, size="390", **kwargs):
    ctx = browser.new_context(base_url=world.url, locale="ru-RU", viewport=PHONES[size],
                              is_mobile=True, has_touch=True, device_scale_factor=1, **kwargs)
    ctx.set_default_timeout(TIMEOUT)
    if person_id:
        token, _ = session_for(world.app, person_id)
        ctx.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": world.url}])
    return ctx


# ---------------------------------------------------------------- what a person would notice

HEADING = """() => {
  const seen = (n) => n.getClientRects().length > 0 && getComputedStyle(n).visibility !== 'hidden';
  const h = [...document.querySelectorAll('main h2')].find(seen);
  if (!h) return null;
  const r = h.getBoundingClientRect();
  return { text: h.innerText, top: r.top, bottom: r.bottom, vh: innerHeight };
}"""


def check_screen(page, name, size, lang="ru"):
    problems = []
    widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if widths[0] > widths[1]:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(n => n.getBoundingClientRect().right > innerWidth + 0.5)
            .slice(0, 5).map(n => n.tagName + '.' + n.className + '#' + n.id)""")
        problems.append(f"{name}@{size}: {widths[0]} px wide > {widths[1]}: {wide}")
    heading = page.evaluate(HEADING)
    if not heading or heading["top"] < 0 or heading["bottom"] > heading["vh"]:
        problems.append(f"{name}@{size}: heading not in the first viewport: {heading}")
    text = page.evaluate("document.body.innerText")
    for m in BAD_TEXT.finditer(text):
        problems.append(f"{name}@{size}: {m.group(0)!r} on screen: "
                        f"…{text[max(0, m.start() - 60):m.end() + 20]!r}")
    entries = page.locator(".history-entry, .history li").all_inner_texts()
    for entry in entries:
        if RAW.search(entry) or (lang in ("ru", "kk") and not CYRILLIC.search(entry)):
            problems.append(f"{name}@{size}: history entry not in words: {entry!r}")
    if page.evaluate("document.documentElement.lang") != lang:
        problems.append(f"{name}@{size}: page language is not {lang}")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for v in axe_serious(page):
            problems.append(f"{name}@{size} {scheme}: axe {v['id']}: "
                            f"{[n['target'] for n in v['nodes']][:4]}")
        if size == "390":
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{name}-{scheme}-top.png"))
            page.screenshot(path=str(SHOTS / f"{name}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    return problems


def axe_serious(page):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def settle(page):
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


# ---------------------------------------------------------------- every role's screens

@pytest.mark.parametrize("size", list(PHONES))
def test_crew_screens_fit_a_phone(browser, world, size):
    ctx = phone(browser, world, world.crew, size)
    problems = []
    try:
        page = ctx.new_page()
        page.goto("/")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        expect(page.locator("#unsynced")).to_have_attribute("data-count", re.compile(r"\d"))
        settle(page)
        problems += check_screen(page, "crew-home", size)
        page.get_by_role("button", name="Записать инцидент", exact=True).click()
        expect(page.locator("#classification-summary")).to_be_visible()
        page.get_by_label("Угроза", exact=True).check()
        expect(page.locator(".history > ol").first.locator("> li")).to_have_count(2)
        settle(page)
        problems += check_screen(page, "crew-incident", size)
        page.get_by_role("link", name="Мои инциденты").first.click()
        expect(page.locator("#incident-list li").first).to_be_visible()
        settle(page)
        problems += check_screen(page, "crew-incidents", size)
    finally:
        ctx.close()
    invited = phone(browser, world, None, size)
    try:
        page = invited.new_page()
        page.goto(f"/#/enrol/{world.invitation}")
        expect(page.locator("#auth-enrol")).to_be_visible()
        settle(page)
        problems += check_screen(page, "crew-invitation", size)
        box = page.locator("#auth-enrol").bounding_box()
        if box["y"] + box["height"] > PHONES[size]["height"]:
            problems.append(f"invitation@{size}: the passkey button is below the fold: {box}")
    finally:
        invited.close()
    assert problems == [], "\n".join(problems)


def test_the_crew_tabs_fit_a_small_phone_in_every_language(browser, world):
    """The tab bar's labels are longest in Kazakh; none may reach past the screen."""
    ctx = phone(browser, world, world.crew, "360")
    try:
        page = ctx.new_page()
        page.goto("/#/incidents")
        for language, tab in (("Қазақша", "Менің оқиғаларым"), ("Русский", "Мои инциденты"),
                              ("English", "My incidents")):
            page.get_by_role("button", name=language, exact=True).click()
            expect(page.locator(".crew-nav a.crew-tab[href='#/incidents']")).to_have_text(tab)
            right, width, scroll = page.evaluate("""() => [
                Math.max(...[...document.querySelectorAll('.crew-tab')]
                    .map((n) => n.getBoundingClientRect().right)),
                innerWidth, document.documentElement.scrollWidth]""")
            assert right <= width and scroll <= width, (language, right, width, scroll)
    finally:
        ctx.close()


@pytest.mark.parametrize("size", list(PHONES))
def test_police_screens_fit_a_phone(browser, world, size):
    ctx = phone(browser, world, world.officer, size)
    problems = []
    try:
        page = ctx.new_page()
        page.goto("/")
        expect(page).to_have_url(re.compile(r"#/police$"))
        expect(page.locator("#pl-list .pl-item").first).to_be_visible()
        settle(page)
        problems += check_screen(page, "police-alerts", size)
        page.locator(f"#pl-list [data-id='{world.incident}'] a").click()
        expect(page.locator("#pl-history li").first).to_be_visible()
        settle(page)
        problems += check_screen(page, "police-incident", size)
        # The values column is readable: each value as wide as the screen allows.
        widths = page.locator(".pl-facts dd").evaluate_all(
            "ns => ns.map(n => n.getBoundingClientRect().width)")
        assert min(widths) >= PHONES[size]["width"] * 0.6, widths
    finally:
        ctx.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("size", list(PHONES))
def test_console_screens_fit_a_phone(browser, world, size):
    ctx = phone(browser, world, world.manager, size)
    problems = []
    try:
        page = ctx.new_page()
        page.goto("/")
        expect(page).to_have_url(re.compile(r"#/review$"))
        expect(page.locator("#rv-list tbody tr").first).to_be_visible()
        settle(page)
        problems += check_screen(page, "console-list", size)
        # The filters wait behind one control; the first incident is on the first screen.
        expect(page.locator("#rv-filter-box")).not_to_have_attribute("open", "")
        first = page.locator("#rv-list tbody tr").first.bounding_box()
        assert first["y"] < PHONES[size]["height"], first
        # Links big enough for a thumb.
        for link in (page.locator(".rv-open").first, page.locator(".rv-export").first):
            box = link.bounding_box()
            assert box["height"] >= 44 and box["width"] >= 44, box
        page.locator(f"#rv-list tr[data-id='{world.incident}'] .rv-open").click()
        expect(page.locator("#rv-history tbody tr").first).to_be_visible()
        settle(page)
        problems += check_screen(page, "console-detail", size)
        page.goto("/#/review/figures")
        expect(page.locator("#rv-figures-total")).to_be_visible()
        settle(page)
        problems += check_screen(page, "console-figures", size)
        page.goto("/#/review/people")
        expect(page.locator("#pp-list")).to_be_visible()
        settle(page)
        problems += check_screen(page, "console-people", size)
    finally:
        ctx.close()
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- journeys

def signin_prompt(page):
    return page.locator("#sign-in")


def wait_ready(page):
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(page.locator("#unsynced")).to_have_attribute("data-count", re.compile(r"\d"))


def test_offline_a_signed_in_crew_member_is_never_asked_to_sign_in(browser, world):
    with world.app.app_context():
        person = make_person("crew", station=make_station(default_post=make_post()),
                             position="driver", name="Данияр Ахметов")
        person_id = person.id
    ctx = phone(browser, world, person_id)
    try:
        page = ctx.new_page()
        page.goto("/#/account")
        wait_ready(page)
        expect(page.locator("#auth-whoami")).to_contain_text("Данияр Ахметов")
        page.goto("/#/")
        ctx.set_offline(True)
        page.get_by_role("button", name="Записать инцидент", exact=True).click()
        expect(page.locator("#incident-title")).to_be_focused()
        for link in ("Мои инциденты", "Вход и устройства", "Главная"):
            page.locator(".crew-nav").get_by_role("link", name=link).click()
            page.wait_for_timeout(300)
            expect(signin_prompt(page)).to_be_hidden()
        page.locator(".crew-nav").get_by_role("link", name="Вход и устройства").click()
        expect(page.locator("#auth-whoami")).to_contain_text("Данияр Ахметов")
        expect(page.locator("#auth-offline")).to_contain_text("Нет связи")
        expect(page.locator("#auth-signin")).to_have_count(0)

        page.reload()  # offline: the service worker serves the shell
        expect(page.locator("#unsynced")).to_have_attribute("data-count", "1")
        expect(page.locator("#auth-whoami")).to_contain_text("Данияр Ахметов")
        expect(page.locator("#health")).to_have_text("недоступен")
        expect(page.locator("#sync-message")).to_contain_text("Нет связи")
        for link in ("Главная", "Мои инциденты"):
            page.locator(".crew-nav").get_by_role("link", name=link).click()
            page.wait_for_timeout(300)
            expect(signin_prompt(page)).to_be_hidden()
            assert "Войдите" not in page.locator("body").inner_text()

        # Back online: it syncs, and the footer says the server answered.
        ctx.set_offline(False)
        expect(page.locator("#unsynced")).to_have_attribute("data-count", "0")
        expect(page.locator("#health")).to_have_text("работает")
        expect(signin_prompt(page)).to_be_hidden()

        # The server ends the session: that answer (401), and only it, signs out.
        with world.app.app_context():
            db.session.execute(delete(AuthSession).where(AuthSession.person_id == person_id))
            db.session.commit()
        page.locator(".crew-nav").get_by_role("link", name="Вход и устройства").click()
        expect(page.locator("#auth-signin")).to_be_visible()
        expect(signin_prompt(page)).to_be_visible()
        page.reload()
        expect(signin_prompt(page)).to_be_visible()
        assert page.evaluate("""async () => (await import('/js/store.js')).getMeta('me')""") \
            is None
    finally:
        ctx.close()


CLS = """async (ms) => {
  let total = 0;
  const shifts = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      total += e.value;
      shifts.push({ value: e.value, sources: (e.sources || []).map((s) =>
        (s.node && s.node.nodeType === 1 ? s.node.tagName + '#' + s.node.id + '.' + s.node.className
          : String(s.node && s.node.nodeName))) });
    }
  }).observe({ type: 'layout-shift', buffered: true });
  await new Promise((r) => setTimeout(r, ms));
  const b = document.getElementById('log-incident').getBoundingClientRect();
  return { total, shifts, button: [b.x, b.y, b.width, b.height] };
}"""


@pytest.mark.parametrize("who", ["signed-out", "signed-in"])
def test_the_big_button_never_moves(browser, world, who):
    """Cumulative layout shift of the crew's home screen, first visit and return
    visit, measured by Chromium's Layout Instability API: below 0.02."""
    ctx = phone(browser, world, world.crew if who == "signed-in" else None, "360")
    try:
        page = ctx.new_page()
        # A phone's network: the server's answers arrive after the first paint
        # (as Lighthouse's throttled mobile run sees them).
        def slow(route):
            page.wait_for_timeout(700)
            route.continue_()
        page.route("**/api/**", slow)
        first_box = None
        for visit in ("first", "return"):
            page.goto("/") if visit == "first" else page.reload()
            page.locator("#log-incident").wait_for()
            if first_box is None:
                first_box = page.locator("#log-incident").bounding_box()
            result = page.evaluate(CLS, 4000)
            print(f"CLS {who} {visit} visit: {result['total']:.4f}", result["shifts"])
            assert result["total"] < 0.02, (visit, result)
            assert result["button"][1] == pytest.approx(first_box["y"], abs=0.5), result
        if who == "signed-out":
            expect(signin_prompt(page)).to_be_visible()  # the prompt appeared, nothing moved
    finally:
        ctx.close()


def test_my_incidents_shows_the_police_acknowledgement_while_open(browser, world):
    ctx = phone(browser, world, world.crew)
    try:
        page = ctx.new_page()
        page.goto("/")
        wait_ready(page)
        page.get_by_role("button", name="Записать инцидент", exact=True).click()
        expect(page.locator(".state-case")).to_be_visible()
        incident_id = page.url.rsplit("/", 1)[1]
        page.locator(".crew-nav").get_by_role("link", name="Мои инциденты").click()
        item = page.locator(f"#incident-list a[href='#/incidents/{incident_id}']")
        expect(item).to_contain_text("Передано на пост полиции")
        police = api_client(world.app, world.officer)
        response = police.post(f"/api/v1/police/incidents/{incident_id}/acknowledge")
        assert response.status_code in (200, 201), response.get_json()
        # Nothing touched on the phone: the open screen shows it by itself.
        expect(item.locator(".state-acknowledged")).to_be_visible(timeout=TIMEOUT)
    finally:
        ctx.close()


def test_an_officer_lands_on_the_alerts_after_signing_in(browser, world):
    world.app.config["DEMO"] = True
    ctx = phone(browser, world)
    try:
        page = ctx.new_page()
        page.goto("/#/account")
        page.locator("#auth-demo-people button", has_text="Серик Абенов").click()
        expect(page).to_have_url(re.compile(r"#/police$"))
        expect(page.locator("#pl-list .pl-item").first).to_be_visible()
        # The phone speaks Russian; the officer's profile says Kazakh: the phone wins.
        assert page.evaluate("document.documentElement.lang") == "ru"
        expect(page.locator("#police h2")).to_have_text("Инциденты вашего поста")
    finally:
        world.app.config["DEMO"] = False
        ctx.close()


def test_a_manager_adds_and_invites_a_person_from_the_phone(browser, world):
    ctx = phone(browser, world, world.manager, "360",
                permissions=["clipboard-read", "clipboard-write"])
    try:
        page = ctx.new_page()
        page.goto("/#/review/people")
        expect(page.locator("#pp-form")).to_be_visible()
        page.click("#pp-add")  # no name: said next to the field, nothing sent
        expect(page.locator("#pp-name-error")).to_have_text("Укажите имя сотрудника.")
        page.fill("#pp-name", "Маржан Исаева")
        page.select_option("#pp-position", "nurse")
        page.click("#pp-add")
        row = page.locator("#pp-list li.added")
        expect(row).to_contain_text("Маржан Исаева")
        row.locator(".pp-invite").click()
        expect(page.locator("#pp-invitation svg")).to_be_visible()
        url = page.locator("#pp-invitation-url").inner_text()
        assert url.startswith(f"{world.url}/#/enrol/")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        page.locator("#pp-invitation .copy-link").click()
        expect(page.locator("#pp-invitation .copy-status")).to_have_text("Ссылка скопирована.")
        assert page.evaluate("navigator.clipboard.readText()") == url
        with world.app.app_context():
            added = db.session.scalars(
                db.select(Person).where(Person.display_name == "Маржан Исаева")).one()
            assert added.role.value == "crew" and added.position.value == "nurse"
        assert json.dumps(url)  # a plain string
    finally:
        ctx.close()
