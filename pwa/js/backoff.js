// When to try the outbox again. Pure, so it is tested on its own.

export const BASE_DELAY = 2000;
export const MAX_DELAY = 5 * 60 * 1000;
export const IDLE_DELAY = 30 * 1000;

// Full jitter: a random wait up to the exponential bound, so phones that lost
// signal together do not all come back at the same second; never sooner than
// the server asked with Retry-After (askedMs).
export function retryDelay(failures, askedMs = 0, random = Math.random) {
  if (!failures) return Math.max(IDLE_DELAY, askedMs);
  const backoff = random() * Math.min(MAX_DELAY, BASE_DELAY * 2 ** failures);
  return Math.max(1000, askedMs, backoff);
}
