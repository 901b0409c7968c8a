"""Passkeys end to end in real Chromium with the DevTools virtual authenticator.

The real app runs on http://localhost:<port> (the live_server fixture); the
page is the PWA's own sign-in module (pwa/js/auth.js). Enrol from an
invitation link, sign out, sign in with the passkey; a reused invitation, an
expired one, a replayed challenge and a wrong origin are refused.
"""

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from api.auth import service as auth
from api.auth.models import Invitation, Passkey
from api.auth.sessions import start_session
from api.db import utcnow
from api.extensions import db
from tests.factories import make_person

pytestmark = pytest.mark.browser

I18N = {}


class Phone:
    """A browser context with its own virtual platform authenticator."""

    def __init__(self, browser, locale="en-US"):
        # Service workers are the crew app's business; they stay out of these tests.
        self.context = browser.new_context(locale=locale, service_workers="block")
        self.page = self.context.new_page()
        self.page.on("dialog", lambda dialog: dialog.accept())
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable")
        self.authenticator = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})["authenticatorId"]

    def credentials(self):
        return self.cdp.send("WebAuthn.getCredentials",
                             {"authenticatorId": self.authenticator})["credentials"]

    def close(self):
        self.context.close()


@pytest.fixture
def phone(browser):
    phones = []

    def make(**kwargs):
        phones.append(Phone(browser, **kwargs))
        return phones[-1]

    yield make
    for p in phones:
        p.close()


def text(page, lang, key):
    """A UI string as the page's own i18n.js has it."""
    if (lang, key) not in I18N:
        I18N[(lang, key)] = page.evaluate(
            "async ([lang, key]) => (await import('/js/i18n.js')).STRINGS[lang][key]",
            [lang, key])
    return I18N[(lang, key)]


def new_invitation(live, role="crew", **kwargs):
    with live.app.app_context():
        person = make_person(role, **kwargs)
        token, _ = auth.create_invitation(person)
        return person.id, person.display_name, token


def test_enrol_sign_out_and_sign_in_with_the_passkey(live_server, phone):
    person_id, name, token = new_invitation(live_server, name="Айгерим Сапарова")
    p = phone()
    page = p.page
    page.goto(f"{live_server.url}/#/enrol/{token}")
    page.fill("#auth-label", "Pixel 7")
    page.click("#auth-enrol")
    expect(page.locator("#auth-whoami")).to_contain_text(name)
    expect(page.locator("#auth-notice")).to_have_text(text(page, "en", "auth_enrolled"))
    assert "#/enrol" not in page.url  # the token leaves the address bar

    # The phone holds a discoverable credential whose user handle is not the id.
    [credential] = p.credentials()
    assert credential["isResidentCredential"] is True
    with live_server.app.app_context():
        passkey = db.session.scalar(select(Passkey).where(Passkey.person_id == person_id))
        assert passkey.device_label == "Pixel 7"
        assert passkey.transports == ["internal"]
        assert passkey.aaguid is not None
        handle = passkey.person.webauthn_user_handle
    import base64
    assert base64.b64decode(credential["userHandle"]) == handle
    assert handle != str(person_id).encode()

    page.click("#auth-signout")
    expect(page.locator("#auth-signin")).to_be_visible()
    assert page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)") == 401

    page.click("#auth-signin")
    expect(page.locator("#auth-whoami")).to_contain_text(name)
    me = page.evaluate("fetch('/api/v1/auth/me').then(r => r.json())")
    assert me["person"]["id"] == person_id and me["demo"] is False
    with live_server.app.app_context():
        passkey = db.session.scalar(select(Passkey).where(Passkey.person_id == person_id))
        assert passkey.sign_count >= 1 and passkey.last_used_at is not None
    # My devices lists this phone's passkey and session, marked current.
    page.click("#auth-devices summary")
    expect(page.locator("#auth-passkeys li")).to_have_count(1)
    expect(page.locator("#auth-passkeys li")).to_contain_text("Pixel 7")
    expect(page.locator("#demo-banner")).to_be_hidden()


def test_a_reused_invitation_is_refused_in_the_browser(live_server, phone):
    _, _, token = new_invitation(live_server)
    first = phone()
    first.page.goto(f"{live_server.url}/#/enrol/{token}")
    first.page.click("#auth-enrol")
    expect(first.page.locator("#auth-whoami")).to_be_visible()

    second = phone(locale="ru-RU")
    second.page.goto(f"{live_server.url}/#/enrol/{token}")
    second.page.click("#auth-enrol")
    expect(second.page.locator("#auth-error")).to_have_text(
        text(second.page, "ru", "auth_err_invitation_used"))
    assert second.credentials() == []


def test_an_expired_invitation_is_refused_in_the_browser(live_server, phone):
    person_id, _, token = new_invitation(live_server)
    with live_server.app.app_context():
        invitation = db.session.scalar(select(Invitation).where(
            Invitation.person_id == person_id))
        invitation.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    p = phone(locale="kk-KZ")
    p.page.goto(f"{live_server.url}/#/enrol/{token}")
    p.page.click("#auth-enrol")
    expect(p.page.locator("#auth-error")).to_have_text(
        text(p.page, "kk", "auth_err_invitation_expired"))
    assert p.credentials() == []


REPLAY_JS = """
async () => {
  const auth = await import('/js/auth.js');
  const post = (path, body) => fetch(path, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const options = await (await post('/api/v1/auth/login/options', {})).json();
  const credential = await navigator.credentials.get(
    {publicKey: auth.requestOptionsFromJSON(options)});
  const body = {credential: auth.credentialToJSON(credential)};
  const first = await post('/api/v1/auth/login/verify', body);
  const second = await post('/api/v1/auth/login/verify', body);
  return [first.status, second.status, (await second.json()).type];
}
"""


def test_a_replayed_challenge_is_refused(live_server, phone):
    _, _, token = new_invitation(live_server)
    p = phone()
    p.page.goto(f"{live_server.url}/#/enrol/{token}")
    p.page.click("#auth-enrol")
    expect(p.page.locator("#auth-whoami")).to_be_visible()
    first, second, problem_type = p.page.evaluate(REPLAY_JS)
    assert (first, second) == (200, 400)
    assert problem_type.endswith("/challenge")


def test_a_wrong_origin_is_refused(live_server, phone):
    _, name, token = new_invitation(live_server)
    p = phone()
    # The server accepts ceremonies only from its configured origins.
    live_server.app.config["ALLOWED_ORIGINS"] = ["https://qorgau.example.kz"]
    p.page.goto(f"{live_server.url}/#/enrol/{token}")
    p.page.click("#auth-enrol")
    expect(p.page.locator("#auth-error")).to_have_text(text(p.page, "en", "auth_err_generic"))
    with live_server.app.app_context():
        assert db.session.scalar(select(Passkey)) is None
        assert db.session.scalar(select(Invitation.used_at)) is None

    # The right origin: enrolment works; then sign-in from a wrong origin is refused.
    live_server.app.config["ALLOWED_ORIGINS"] = [live_server.url]
    p.page.click("#auth-enrol")
    expect(p.page.locator("#auth-whoami")).to_contain_text(name)
    p.page.click("#auth-signout")
    live_server.app.config["ALLOWED_ORIGINS"] = ["https://qorgau.example.kz"]
    p.page.click("#auth-signin")
    expect(p.page.locator("#auth-error")).to_have_text(text(p.page, "en", "auth_err_generic"))
    assert p.page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)") == 401


def test_a_manager_invites_crew_whose_phone_then_enrols(live_server, phone):
    with live_server.app.app_context():
        manager = make_person("manager", name="Гульнара Оспанова")
        crew = make_person("crew", station=manager.managed_stations[0], name="Ерлан Жумабеков")
        crew_id = crew.id
        token, _ = start_session(manager, user_agent="test")
    desk = phone()
    desk.context.add_cookies([{"name": "qorgau_session", "value": token,
                               "url": live_server.url}])
    desk.page.goto(live_server.url + "/#/account")  # people and devices live there
    row = desk.page.locator(f"#auth-people li[data-person='{crew_id}']")
    expect(row).to_contain_text("Ерлан Жумабеков")
    row.locator(".auth-invite").click()
    expect(desk.page.locator("#auth-invitation svg")).to_be_visible()
    url = desk.page.locator("#auth-invitation-url").inner_text()
    assert url.startswith(f"{live_server.url}/#/enrol/")

    crew_phone = phone()
    crew_phone.page.goto(url)
    crew_phone.page.click("#auth-enrol")
    expect(crew_phone.page.locator("#auth-whoami")).to_contain_text("Ерлан Жумабеков")

    # Lost phone: the manager revokes every device; the crew phone is signed out.
    # (The row may still say 0 from before the crew enrolled: wait for the answer.)
    with desk.page.expect_response(lambda r: r.url.endswith("/revoke-devices")) as revoked:
        row.locator(".auth-revoke-devices").click()
    assert revoked.value.ok
    expect(row).to_contain_text(f"{text(desk.page, 'en', 'auth_passkeys')}: 0")
    assert crew_phone.page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)") == 401


def test_demo_sign_in_shows_a_permanent_banner(live_server, phone):
    with live_server.app.app_context():
        make_person("crew", name="Demo Crew")
    p = phone()
    p.page.goto(live_server.url + "/#/account")
    expect(p.page.locator("#auth-signin")).to_be_visible()
    expect(p.page.locator("#auth-demo-people")).to_have_count(0)  # demo is off

    live_server.app.config["DEMO"] = True
    p.page.reload()
    p.page.locator("#auth-demo-people button", has_text="Demo Crew").click()
    expect(p.page.locator("#auth-whoami")).to_contain_text("Demo Crew")
    banner = p.page.locator("#demo-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(text(p.page, "en", "auth_demo_banner"))
    p.page.reload()
    expect(banner).to_be_visible()


def test_auth_strings_exist_in_every_language(live_server, phone):
    p = phone()
    p.page.goto(live_server.url + "/")
    missing = p.page.evaluate("""async () => {
      const {STRINGS} = await import('/js/i18n.js');
      const src = await (await fetch('/js/auth.js')).text();
      const keys = new Set([...src.matchAll(/t\\(lang, "([a-z_]+)"\\)/g)].map(m => m[1]));
      for (const role of ['crew', 'manager', 'police', 'admin']) keys.add('role_' + role);
      for (const m of src.matchAll(/"(auth_err_[a-z_]+)"/g)) keys.add(m[1]);
      const out = [];
      for (const lang of ['ru', 'kk', 'en'])
        for (const key of keys) if (!STRINGS[lang][key]) out.push(lang + ':' + key);
      return [keys.size, out];
    }""")
    count, absent = missing
    assert count > 30 and absent == []
