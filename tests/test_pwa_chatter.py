"""Less chatter from the PWA (issue 15), in real Chromium against the real app:
the outbox is sent with the session's token kept on the phone (no /auth/me
before each try), and the incident list is fetched only for the screen that
shows it, conditionally (304 when nothing changed)."""

import pytest
from playwright.sync_api import expect

from tests.browser import open_app, sign_in, tap, unsynced

pytestmark = pytest.mark.browser

ME, SYNC, LIST = "/api/v1/auth/me", "/api/v1/incidents/sync", "/api/v1/incidents"


def calls(live, method, path, status=None, since=0):
    return [c for c in live.recorder.calls[since:]
            if c[0] == method and c[1] == path and (status is None or c[2] == status)]


def eventually(page, check, what):
    """Wait (a ceiling, not a speed assertion) until check() holds."""
    for _ in range(150):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(what)


def test_a_restarted_app_retries_its_outbox_without_asking_who_is_signed_in(
        context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)  # the first start asks /auth/me and keeps the token
    context.set_offline(True)
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    page.close()
    # The app starts again with no network (a fresh page: nothing in memory).
    page = context.new_page()
    page.goto("/")
    expect(unsynced(page)).to_have_attribute("data-count", "1")
    page.wait_for_timeout(1000)  # the app's start (one /me of its own) is over
    tried = []
    context.on("request", lambda r: tried.append(r.url.split("?")[0].split(live.url)[-1]))
    for _ in range(3):  # three tries, as the retry timer or the button makes them
        page.locator("#sync-now").click()
        page.wait_for_timeout(300)
    # Each try is the sync itself, with the kept token; none asks /me first.
    assert tried.count(SYNC) >= 3, tried
    assert ME not in tried, tried
    context.set_offline(False)
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    assert calls(live, "POST", SYNC, 200)


def test_the_list_is_fetched_only_when_shown_and_then_conditionally(
        context, live, crew):
    sign_in(context, live, crew)
    page = open_app(context)
    tap(page)  # online: saved, then synced at once; the app shows the incident
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    tap_time = len(live.recorder.calls)
    page.evaluate("location.hash = '#/'")
    tap(page)
    expect(unsynced(page)).to_have_attribute("data-count", "0")
    eventually(page, lambda: calls(live, "POST", SYNC, 200, since=tap_time), "second sync")
    page.wait_for_timeout(500)  # whatever a sync sets off has been sent by now
    # Syncing on the home and incident screens does not fetch the list.
    assert calls(live, "GET", LIST) == []
    page.evaluate("location.hash = '#/incidents'")
    expect(page.locator("#view-incidents")).to_be_visible()
    eventually(page, lambda: calls(live, "GET", LIST, 200), "the list, once shown")
    # Shown again with nothing changed: 304, no body.
    page.evaluate("location.hash = '#/'")
    page.evaluate("location.hash = '#/incidents'")
    eventually(page, lambda: calls(live, "GET", LIST, 304), "a 304 for the unchanged list")
    assert len(calls(live, "GET", LIST, 200)) == 1
    expect(page.locator("#view-incidents")).to_be_visible()
