"""The SMS fallback in the crew's app, in real Chromium: a record marked
police-needed-now, made offline and not acknowledged after 30 s, offers "Send by
SMS"; the sms: link's body is what the server reads and verifies with this
device's key; sent through the (loopback) gateway, and then the phone's own sync,
it is one incident with one case number, which the phone shows."""

import time
import uuid
from pathlib import Path
from urllib.parse import unquote

from playwright.sync_api import expect
from sqlalchemy import func, select

from api.auth.models import AuthSession
from api.extensions import db
from api.incidents.models import Incident
from api.sms import codec
from tests.browser import incidents_in_idb, open_app, sign_in, tap
from tests.sms_helpers import SECRET, gateway  # noqa: F401  (fixture)

NUMBER = "+77010000075"
SHOTS = Path(__file__).resolve().parent.parent / "instance" / "screens"


def until(probe, seconds=15):
    """Poll `probe` until it returns something (an async page function cannot be
    waited for with wait_for_function: its promise is truthy at once)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_an_urgent_record_made_offline_is_offered_by_sms_and_merges_with_the_sync(
        context, live, crew, gateway):  # noqa: F811
    live.app.config.update(SMS_NUMBERS={"75": NUMBER}, SMS_WEBHOOK_SECRET=SECRET,
                           SMS_GATEWAY_URL=gateway.url)
    sign_in(context, live, crew)
    page = open_app(context, "/#/account")
    page.set_viewport_size({"width": 360, "height": 740})
    # Signed in, the phone keeps its SMS key for offline use.
    kept = until(lambda: page.evaluate(
        "async () => (await import('/js/store.js')).getMeta('sms')"))
    assert kept["number"] == NUMBER
    # From here the page's clock is Playwright's: 30 s pass in no time.
    page.clock.install()
    context.set_offline(True)
    tap(page)

    page.get_by_label("Violence", exact=True).check()
    page.get_by_label("Police needed now").check()
    offer = page.locator("#view-incident [data-sms-offer] a.sms-send")
    page.clock.fast_forward(20_000)
    time.sleep(2.5)  # the offer is looked at every 2 s
    expect(offer).to_have_count(0)  # not before 30 s
    page.clock.fast_forward(12_000)
    expect(offer).to_be_visible()
    expect(offer).to_have_text("Send by SMS")
    expect(page.locator("#view-incident [data-sms-offer] h3")).to_have_text(
        "No internet: send the alarm by SMS")
    # On screen wherever the details are scrolled (it sticks to the bottom), no sideways scroll.
    SHOTS.mkdir(parents=True, exist_ok=True)
    for where in ("scrolled", "top"):
        if where == "top":
            page.evaluate("window.scrollTo(0, 0)")
        box = offer.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 740, where
        page.screenshot(path=str(SHOTS / f"sms-offer-{where}-360x740.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for button, title in (("Қазақша", "Интернет жоқ: дабылды SMS арқылы жіберіңіз"),
                          ("Русский", "Нет интернета: отправьте тревогу по SMS"),
                          ("English", "No internet: send the alarm by SMS")):
        page.get_by_role("button", name=button).click()
        expect(page.locator("#view-incident [data-sms-offer] h3")).to_have_text(title)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(SHOTS / f"sms-offer-{button}-360x740.png"))

    href = offer.get_attribute("href")
    prefix = f"sms:{NUMBER}?body="
    assert href.startswith(prefix)
    body = unquote(href[len(prefix):])
    assert codec.septets(body) is not None and len(body) <= 160
    [record] = incidents_in_idb(page)
    decoded = codec.parse(body)
    with live.app.app_context():
        session = db.session.get(AuthSession, decoded.key_id)
        assert session.person_id == crew
        assert codec.verify(decoded, session.sms_key)
    assert decoded.id == uuid.UUID(record["id"])
    assert decoded.kind == "violence"
    assert decoded.tapped_at.isoformat(timespec="milliseconds") == record["tapped_at"]

    # The person presses Send; the station's gateway posts it to the server.
    status, answer = gateway.deliver(live.url, body)
    assert status == 200 and answer["outcome"] == "created"
    case = answer["case_number"]

    # Data comes back: the phone's own sync is the same incident, same number.
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    record = until(lambda: next((r for r in incidents_in_idb(page)
                                 if r["pending"] == 0 and r["server"]), None))
    assert record["server"]["case_number"] == case
    with live.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Incident)) == 1
        assert db.session.get(Incident, decoded.id).revision == record["revision"]
    expect(offer).to_have_count(0)  # acknowledged: no more offer
