// When to try the outbox again. Pure, so it is tested on its own.
//
// Safari never replays a queue in the background, and when only the server
// (not the phone's connection) comes back, no `online` or `visibilitychange`
// event fires: the page's own timer is what sends the outbox then. So the
// timer's delay decides how soon a record arrives after an outage.

export const BASE_DELAY = 2000;
export const MAX_DELAY = 5 * 60 * 1000;
export const IDLE_DELAY = 30 * 1000;

// Records that ask for the police now (outbox.js: isUrgent) must reach the
// server within 10 s of it becoming reachable. While one waits, the next try
// comes after a random 2.5–5 s, however many tries failed before: one phone
// makes at most one attempt per 2.5 s, and phones that lost the server
// together spread their attempts evenly over each 2.5 s window instead of
// arriving in step. A Retry-After from the server is honoured up to 30 s.
export const URGENT_MIN_DELAY = 2500;
export const URGENT_MAX_DELAY = 5000;
export const URGENT_MAX_ASKED = 30 * 1000;

// A server that answers "busy" with a Retry-After is up and taking records as
// fast as it can: while it says so, the bound stops at 30 s, not 5 min, so the
// phones of a reconnection storm come back while it still works through the
// storm, not minutes after it has drained (bench/sync_storm.py).
export const BUSY_MAX_DELAY = 30 * 1000;

// Full jitter: a random wait up to the exponential bound, so phones that lost
// signal together do not all come back at the same second; never sooner than
// the server asked with Retry-After (askedMs).
export function retryDelay(failures, askedMs = 0, random = Math.random, urgent = false) {
  if (urgent) {
    const jittered = URGENT_MIN_DELAY + random() * (URGENT_MAX_DELAY - URGENT_MIN_DELAY);
    return Math.max(jittered, Math.min(askedMs, URGENT_MAX_ASKED));
  }
  if (!failures) return Math.max(IDLE_DELAY, askedMs);
  const bound = askedMs > 0 ? BUSY_MAX_DELAY : MAX_DELAY;
  const backoff = random() * Math.min(bound, BASE_DELAY * 2 ** failures);
  return Math.max(1000, askedMs, backoff);
}
