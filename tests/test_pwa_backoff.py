"""The outbox's retry timing, in real Chromium: backoff with jitter, and never
sooner than the server's Retry-After (a 503 while its database restarts)."""

import json

import pytest

pytestmark = pytest.mark.browser


def delays(browser_page, cases):
    return browser_page.evaluate("""async (cases) => {
      const { retryDelay } = await import('/js/backoff.js');
      return cases.map(([failures, asked, r]) => retryDelay(failures, asked, () => r));
    }""", cases)


def test_idle_and_backoff_bounds(page):
    idle, first, fifth, huge, floor = delays(page, [
        [0, 0, 0.5], [1, 0, 1.0], [5, 0, 1.0], [30, 0, 1.0], [3, 0, 0.0]])
    assert idle == 30_000              # open and healthy: every 30 s
    assert first == 4_000              # 2 s doubled, at the top of its jitter
    assert fifth == 64_000
    assert huge == 5 * 60 * 1000       # capped at five minutes
    assert floor == 1_000              # never a busy loop


def test_retry_after_is_a_floor(page):
    lucky, idle = delays(page, [[1, 7_000, 0.0], [0, 45_000, 0.0]])
    assert lucky == 7_000   # the jitter drew 0 s; the server asked for 7
    assert idle == 45_000


def test_api_errors_carry_retry_after(page, base_url):
    problem = {"type": "https://qorgau.kz/problems/database-unavailable",
               "title": "Service Unavailable", "status": 503}
    page.route("**/api/v1/incidents/sync", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "7"}, content_type="application/problem+json",
        body=json.dumps(problem)))
    try:
        caught = page.evaluate("""async () => {
          const { api } = await import('/js/api.js');
          try { await api('/api/v1/incidents/sync', { method: 'POST', body: {} }); }
          catch (err) { return [err.name, err.status, err.type, err.retryAfter]; }
        }""")
    finally:
        page.unroute("**/api/v1/incidents/sync")
    assert caught == ["ApiError", 503, "database-unavailable", 7]
