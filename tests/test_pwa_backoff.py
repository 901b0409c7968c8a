"""The outbox's retry timing, in real Chromium: backoff with jitter, never
sooner than the server's Retry-After (a 503 while its database restarts), and
a short, jittered wait while an urgent record ("police needed now") waits."""

import json

import pytest

pytestmark = pytest.mark.browser


def delays(browser_page, cases, urgent=False):
    return browser_page.evaluate("""async ([cases, urgent]) => {
      const { retryDelay } = await import('/js/backoff.js');
      return cases.map(([failures, asked, r]) => retryDelay(failures, asked, () => r, urgent));
    }""", [cases, urgent])


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


def test_a_busy_server_is_tried_again_within_30_s_however_many_refusals(page):
    # A storm's refusals come with Retry-After: the server is up and will take the
    # records soon. Without one (no answer at all) the bound stays five minutes.
    busy, down, asked = delays(page, [[8, 2_000, 1.0], [8, 0, 1.0], [8, 45_000, 0.5]])
    assert busy == 30_000
    assert down == 5 * 60 * 1000
    assert asked == 45_000  # what the server asked stays the floor


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


def test_urgent_records_are_tried_every_few_seconds_however_long_the_outage(page):
    # After a 150 s outage the failure count is about 7: a normal record's next
    # try may be minutes away, an urgent one's 2.5 to 5 s (then within 10 s of
    # the server's return, counting the request itself).
    normal = delays(page, [[7, 0, 1.0], [8, 0, 1.0]])
    assert normal == [256_000, 5 * 60 * 1000]
    for failures in (0, 1, 7, 8, 30):
        low, high, middle = delays(page, [[failures, 0, 0.0], [failures, 0, 1.0],
                                          [failures, 0, 0.5]], urgent=True)
        assert (low, high, middle) == (2_500, 5_000, 3_750)


def test_urgent_retries_honour_retry_after_up_to_30_s(page):
    asked, capped = delays(page, [[3, 7_000, 0.0], [3, 120_000, 1.0]], urgent=True)
    assert asked == 7_000     # the server asked for 7 s while its database restarts
    assert capped == 30_000   # never more than 30 s while police are needed now


def test_only_a_waiting_recent_police_needed_record_is_urgent(page):
    answers = page.evaluate("""async () => {
      const store = await import('/js/store.js');
      const { isUrgent, urgentWaiting, URGENT_WINDOW_MS } = await import('/js/outbox.js');
      const later = Date.now() + URGENT_WINDOW_MS + 60_000;
      const seen = {};
      const normal = await store.createIncident({});
      seen.normal_only = await urgentWaiting();
      const urgent = await store.createIncident({ police_needed: true });
      seen.is_urgent = [isUrgent(normal), isUrgent(urgent)];
      seen.with_urgent = await urgentWaiting();
      seen.half_an_hour_later = await urgentWaiting(later);
      // The server refused this revision: it is not sent again until edited.
      await store.updateIncident(urgent.id, (r) => {
        r.rejected = { revision: r.revision, errors: [] };
      });
      seen.rejected = await urgentWaiting();
      await store.updateIncident(urgent.id, (r) => {
        r.rejected = null;
        r.synced_revision = r.revision;
      });
      seen.sent = await urgentWaiting();
      return seen;
    }""")
    assert answers == {"normal_only": False, "is_urgent": [False, True], "with_urgent": True,
                       "half_an_hour_later": False, "rejected": False, "sent": False}
