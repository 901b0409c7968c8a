"""The crew member's PWA in real Chromium, against the real app served from a thread.

Each test gets the shared `live_server` (tests/conftest.py: a fresh migrated
database), a freshly built copy of pwa/ (so a test can change it and watch
the service worker update) and a new browser
context (empty IndexedDB, no service worker). Sign-in is a server-side
session whose cookie is added to the context; the passkey ceremony itself is
tested in test_auth*.py.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from api.law import service as law
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    TIMEOUT,
    build_pwa,
    incidents_in_idb,
    open_app,
    sign_in,
    tap,
    unsynced,
    wait_until,
)

pytestmark = pytest.mark.browser

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
LOCAL_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


# ---------------------------------------------------------------- fixtures


# ---------------------------------------------------------------- build and install

def test_build_output_in_the_repository_is_current():
    """sw.js, version.js and the icons match the sources (./qorgau runs the build)."""
    _, stale = build_pwa.build(ROOT / "pwa", check=True)
    assert stale == [], f"run scripts/build_pwa.py; stale: {stale}"


def test_build_is_deterministic_and_hashes_every_shell_file(pwa_dir):
    first = (pwa_dir / "sw.js").read_bytes()
    build_pwa.build(pwa_dir)
    assert (pwa_dir / "sw.js").read_bytes() == first
    listing = json.loads(re.search(r"const PRECACHE = (\{.*?\});", first.decode(), re.S).group(1))
    for path in ("/index.html", "/css/app.css", "/js/app.js", "/js/store.js", "/js/law.js",
                 "/manifest.webmanifest", "/icons/icon-192.png", "/js/version.js"):
        assert path in listing
    assert "/sw.js" not in listing
    (pwa_dir / "css" / "app.css").write_text("/* changed */\n", encoding="utf-8")
    build_pwa.build(pwa_dir)
    assert (pwa_dir / "sw.js").read_bytes() != first


def test_headers_of_the_shell(live):
    client = live.app.test_client()
    sw = client.get("/sw.js")
    assert sw.status_code == 200
    assert sw.headers["Cache-Control"] == "no-cache"
    assert "javascript" in sw.mimetype
    manifest = client.get("/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.headers["Cache-Control"] == "no-cache"
    body = manifest.get_json(force=True)
    assert body["display"] == "standalone" and body["start_url"] and body["scope"] == "/"
    sizes = {(i["sizes"], i.get("purpose", "any")) for i in body["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    assert client.get("/").headers["Cache-Control"] == "no-cache"
    icon = client.get("/icons/icon-512.png")
    assert icon.mimetype == "image/png" and icon.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_installable_with_no_errors(pw, live, tmp_path):
    # A persistent profile: Chromium never offers to install from an incognito one.
    ctx = pw.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS,
        base_url=live.url, locale="en-GB")
    ctx.set_default_timeout(TIMEOUT)
    try:
        page = open_app(ctx)
        cdp = ctx.new_cdp_session(page)
        result = cdp.send("Page.getInstallabilityErrors")
        assert result["installabilityErrors"] == [], result
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [], manifest["errors"]
    finally:
        ctx.close()


def test_the_shell_loads_offline(context):
    page = open_app(context)
    context.set_offline(True)
    page.reload()
    expect(page.get_by_role("button", name="Log incident", exact=True)).to_be_visible()
    # Every shell file came from the precache (the network is off).
    assert page.evaluate("""async () => {
        const names = await caches.keys();
        const cache = await caches.open(names.find((n) => n.startsWith('qorgau-shell-')));
        return Boolean(await cache.match('/js/app.js'))
            && Boolean(await cache.match('/index.html'));
    }""")


# ---------------------------------------------------------------- the tap

def test_one_tap_saves_on_the_phone_with_no_network(context, live):
    page = open_app(context)
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    context.set_offline(True)
    tap(page)
    expect(page.locator("#saved")).to_contain_text("Saved on this phone")
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    expect(unsynced(page)).to_have_text("Not yet sent: 1")
    [record] = incidents_in_idb(page)
    assert UUID.match(record["id"])
    assert LOCAL_ISO.match(record["tapped_at"])
    assert record["revision"] == 1 and record["pending"] == 1
    assert record["kind"] == "unspecified"
    # The details screen opened on the new incident.
    expect(page).to_have_url(re.compile(rf"#/incidents/{record['id']}$"))


def test_location_is_attached_when_it_arrives(browser, live):
    ctx = browser.new_context(base_url=live.url, locale="en-GB", permissions=["geolocation"],
                              geolocation={"latitude": 43.2389, "longitude": 76.8897,
                                           "accuracy": 12})
    ctx.set_default_timeout(TIMEOUT)
    try:
        page = open_app(ctx)
        ctx.set_offline(True)
        tap(page)
        expect(page.locator("#saved")).to_contain_text("Saved on this phone")
        wait_until(page, """async () => {
            const { listIncidents } = await import('/js/store.js');
            const [r] = await listIncidents();
            return r && r.location !== null;
        }""")
        [record] = incidents_in_idb(page)
        assert record["location"]["lat"] == pytest.approx(43.2389)
        assert record["location"]["source"] == "gps"
        assert LOCAL_ISO.match(record["location"]["fixed_at"])
        assert record["revision"] == 2  # the location is a revision of its own
        expect(page.locator("#location-state")).to_contain_text("Location attached")
    finally:
        ctx.close()


def test_details_are_saved_as_revisions_and_classified_offline(context):
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    expect(page.locator("#saved")).to_be_visible()
    page.get_by_label("Violence", exact=True).check()
    page.get_by_label("by a group of persons", exact=False).check()
    page.get_by_label("Police needed now").check()
    page.get_by_label("Short note").fill("Drunk relative, kicked the feldsher")
    page.get_by_label("Short note").blur()
    wait_until(page, """async () => {
        const { listIncidents } = await import('/js/store.js');
        const [r] = await listIncidents();
        return r.note.startsWith('Drunk');
    }""")
    [record] = incidents_in_idb(page)
    assert record["kind"] == "violence"
    assert record["police_needed"] is True
    assert record["aggravating"] == ["group"]
    assert record["revision"] == 5  # tap + four changes, each its own revision
    expected = law.classify({"kind": "violence", "aggravating": ["group"],
                             "victim_role": "other_medical", "on_duty": True,
                             "occurred_at": record["tapped_at"]}, "en")
    expect(page.locator("#classification-summary")).to_have_text(expected["summary"])
    expect(page.locator(".history li")).to_have_count(5)
    expect(unsynced(page)).to_have_attribute("data-count", "1")


def test_a_year_without_an_mci_shows_the_part_and_the_warning(context):
    # From 1 January until that year's MCI is in the rules: amounts in MCI only.
    assert "2027" not in law.rules()["mci"]  # else this test no longer tests that
    page = open_app(context)
    context.set_offline(True)
    page.clock.set_fixed_time("2027-01-01T09:00:00+05:00")
    tap(page)
    expect(page.locator("#saved")).to_be_visible()
    page.get_by_label("Threat", exact=True).check()
    expected = law.classify({"kind": "threat", "aggravating": [],
                             "victim_role": "other_medical", "on_duty": True,
                             "occurred_at": "2027-01-01T09:00:00+05:00"}, "en")
    assert expected["part"] == 1 and expected["warnings"]
    expect(page.locator("#classification-summary")).to_have_text(expected["summary"])
    expect(page.locator(".classification li").first).to_have_text("a fine of 200–500 MCI")
    expect(page.locator(".classification .law-warning")).to_have_text(
        [w["text"] for w in expected["warnings"]])


def test_my_incidents_lists_every_incident_with_its_state(context):
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    page.goto("/#/")  # back home (served by the service worker)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "2")
    page.get_by_role("link", name="My incidents").first.click()
    items = page.locator(".incident-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Saved on this phone")


# ---------------------------------------------------------------- sync

def needs(live, rule, method="GET"):
    if not live.has_route(rule, method):
        pytest.skip(f"waits on {method} {rule} (not in this build of the API yet)")


def test_back_online_the_record_syncs_by_itself(context, live, crew):
    needs(live, "/api/v1/incidents/sync", "POST")
    sign_in(context, live, crew)
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    context.set_offline(False)  # fires "online": the page flushes without being asked
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    [record] = incidents_in_idb(page)
    assert record["synced_revision"] == record["revision"]
    assert record["server"]["case_number"]
    expect(page.locator(".state-case")).to_contain_text(record["server"]["case_number"])
    # The server's signed receipt is kept with the incident (api.ledger).
    receipt = record["receipts"][str(record["revision"])]
    assert receipt["signature"] and receipt["revision"] == record["revision"]


def test_a_401_keeps_the_record_and_asks_to_sign_in(context, live, crew):
    needs(live, "/api/v1/auth/me")
    page = open_app(context)  # no session cookie
    tap(page)
    expect(page.locator("#sign-in")).to_be_visible()
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    assert len(incidents_in_idb(page)) == 1
    if live.has_route("/api/v1/incidents/sync", "POST"):
        # Signing in lets it carry on.
        sign_in(context, live, crew)
        page.get_by_role("button", name="Sync now").click()
        expect(unsynced(page)).to_have_attribute("data-count", "0")
        expect(page.locator("#sign-in")).to_be_hidden()


def test_background_sync_flushes_from_the_service_worker(context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)
    context.set_offline(True)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    # Close the app: only the service worker is left to send it.
    page.goto("about:blank")
    before = live.recorder.count("POST", "/api/v1/incidents/sync")
    context.set_offline(False)
    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):  # events arrive while Playwright waits
        if any(r["scopeURL"].startswith(live.url) for r in registrations):
            break
        page.wait_for_timeout(50)
    reg = next(r for r in registrations if r["scopeURL"].startswith(live.url))
    cdp.send("ServiceWorker.dispatchSyncEvent", {
        "origin": live.url, "registrationId": reg["registrationId"],
        "tag": "qorgau-outbox", "lastChance": False})
    for _ in range(200):
        if live.recorder.count("POST", "/api/v1/incidents/sync") > before:
            break
        page.wait_for_timeout(50)
    assert live.recorder.count("POST", "/api/v1/incidents/sync") > before
    if live.has_route("/api/v1/incidents/sync", "POST"):
        page.goto(live.url + "/")
        expect(unsynced(page)).to_have_attribute("data-count", "0")


def test_a_rejected_record_stays_with_the_reason(context, live, crew):
    needs(live, "/api/v1/incidents/sync", "POST")
    sign_in(context, live, crew)
    page = open_app(context)
    # A record the server will refuse (as from an older app with a kind it
    # no longer takes), saved next to a good one.
    page.evaluate("""async () => {
        const { createIncident } = await import('/js/store.js');
        await createIncident({ kind: 'bogus_kind' });
    }""")
    tap(page)
    page.get_by_role("link", name="My incidents").first.click()
    rejected = page.locator(".incident-item", has=page.locator(".state-rejected"))
    expect(rejected).to_have_count(1)
    expect(rejected.locator(".reasons")).to_contain_text("kind")
    expect(unsynced(page)).to_have_attribute("data-count", "1")  # the good one went
    expect(page.locator(".incident-item .state-case")).to_have_count(1)
    # It is not sent again until it changes.
    sent = live.recorder.count("POST", "/api/v1/incidents/sync")
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#sync-message")).to_have_text("")
    assert live.recorder.count("POST", "/api/v1/incidents/sync") == sent


def test_the_history_shows_the_servers_events(context, live, crew):
    needs(live, "/api/v1/incidents/<uuid:incident_id>")
    sign_in(context, live, crew)
    page = open_app(context)
    tap(page)
    expect(page.locator("#incident-body .state-case")).to_be_visible()
    expect(page.locator(".history h4")).to_have_text("On the server")
    expect(page.locator(".history")).to_contain_text(
        "Received by the server; case number assigned")


def test_an_update_never_loses_the_outbox(context, live):
    page = open_app(context)  # not signed in: the record has to wait in the outbox
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    [before] = incidents_in_idb(page)
    old_version = page.locator("#app-version").inner_text()

    (live.pwa_dir / "css" / "app.css").open("a", encoding="utf-8").write("\n/* v2 */\n")
    new_build = live.rebuild()
    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    banner = page.locator("#update-banner")
    expect(banner).to_be_visible()
    # Nothing was swapped under the person: same code until they agree.
    assert page.locator("#app-version").inner_text() == old_version
    with page.expect_navigation():
        page.get_by_role("button", name="Update now").click()
    expect(page.locator("#app-version")).to_contain_text(new_build)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    [after] = incidents_in_idb(page)
    assert after["id"] == before["id"] and after["revision"] == before["revision"]
    names = page.evaluate("caches.keys()")
    assert [n for n in names if n.startswith("qorgau-shell-")] == [f"qorgau-shell-{new_build}"]


# ---------------------------------------------------------------- the button, languages, a11y

@pytest.mark.parametrize(("lang", "name"), [
    ("en", "Log incident"), ("ru", "Записать инцидент"), ("kk", "Оқиғаны тіркеу")])
def test_the_button_in_each_language(browser, live, lang, name):
    # The device's language chooses; no setting needed.
    ctx = browser.new_context(base_url=live.url, locale={"en": "en-GB", "ru": "ru-RU",
                                                         "kk": "kk-KZ"}[lang],
                              viewport={"width": 360, "height": 740}, has_touch=True)
    try:
        page = ctx.new_page()
        page.goto("/")
        button = page.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["height"] >= 72
        # In reach of a thumb: the lower part of the screen, full width.
        assert box["y"] + box["height"] / 2 > 740 / 2
        assert box["width"] >= 300
        assert page.evaluate("document.documentElement.lang") == lang
    finally:
        ctx.close()


def test_language_can_be_switched(context):
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("button", name="Log incident", exact=True)).to_be_visible()
    page.get_by_role("button", name="Қазақша").click()
    expect(page.get_by_role("button", name="Оқиғаны тіркеу", exact=True)).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Оқиғаны тіркеу", exact=True)).to_be_visible()


@pytest.mark.parametrize("route", ["/", "/#/incidents", "details"])
def test_no_serious_accessibility_violations(context, route):
    from axe_playwright_python.sync_playwright import Axe

    page = open_app(context)
    if route == "details":
        tap(page)
        expect(page.locator("#classification-summary")).to_be_visible()
    else:
        page.goto(route)
        expect(page.locator("#unsynced")).to_have_attribute("data-count", re.compile(r"\d"))
    results = Axe().run(page)
    serious = [v for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:4000]
