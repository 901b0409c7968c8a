// Sending the outbox: one flush at a time across every tab and the service
// worker (Web Locks), in batches, each record leaving only on the server's
// acknowledgement (see outbox.js). No DOM here: the service worker imports
// this file for Background Sync.
//
// flush() answers with what happened, so the caller can schedule the next try:
//   {state: "idle"}      nothing to send
//   {state: "synced"}    sent; the server answered for each record
//   {state: "offline"}   no network (or no answer): try again later
//   {state: "signin"}    401: everything kept; the person must sign in
//   {state: "error", status}   the server failed or refused the request
// plus counts {acked, rejected, conflicts, setAside, remaining}.
//
// Never hostage to one record: a batch that fails NARROW_AFTER times in a row
// (5xx, a body that is not JSON, 413, or a network error while the phone is
// online) is narrowed down at once: halves, then quarters, down to one record
// at a time, and everything the server takes is stored. A record that fails
// alone, while the server answers an empty request from this phone (so it is
// not simply down or out of reach), gets a strike (outbox.js): it is sent
// alone after the others from then on, and after SET_ASIDE_AFTER strikes it is
// set aside and reported (set_aside in every request; the managers' device health).

import { api, ApiError, setCsrfToken } from "./api.js";
import {
  applyResults, applyServerIncident, BATCH_LIMIT, countSetAside, isSetAside, nextBatch, strike,
  suspects, toWire,
} from "./outbox.js";
import { countUnsynced, deviceId, getMeta, localIso, setMeta } from "./store.js";
import { APP_VERSION } from "./version.js";

export const SYNC_URL = "/api/v1/incidents/sync";
export const ME_URL = "/api/v1/auth/me";
export const SYNC_TAG = "qorgau-outbox"; // the Background Sync tag
const LOCK_NAME = "qorgau-outbox-flush";
const MAX_BATCHES = 20; // per flush; the rest waits for the next trigger
export const NARROW_AFTER = 2; // failed attempts of the same batch before it is narrowed down

// Whether api.js holds this session's CSRF token in this context (the page's
// auth module may have set it too). The token is also kept in IndexedDB
// ("csrf"), so a restarted app or the service worker sends the outbox without
// asking /auth/me first: the session is known, or a 401/403 says it is not.
let haveToken = false;

/** Keep (or, with null, forget) the session's CSRF token here and on the phone. */
export async function rememberToken(token) {
  setCsrfToken(token || "");
  haveToken = Boolean(token);
  await setMeta("csrf", token || null);
}

async function loadToken() {
  if (haveToken) return true;
  const token = await getMeta("csrf");
  if (!token) return false;
  setCsrfToken(token);
  haveToken = true;
  return true;
}

// Tabs and the service worker tell each other when the outbox changed.
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("qorgau") : null;

export function announce(message) {
  if (channel) channel.postMessage(message);
}

export function onAnnouncement(handler) {
  if (channel) channel.addEventListener("message", (event) => handler(event.data));
}

/**
 * Who is signed in: the /me body ({person, csrf_token, ...}) or null on 401.
 * The person is kept in IndexedDB so the app knows the crew member's
 * position offline. Throws TypeError with no network, ApiError otherwise.
 */
export async function fetchMe() {
  try {
    const body = await api(ME_URL);
    await rememberToken(body.csrf_token);
    if (body.person) await setMeta("me", body.person);
    return body;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      await rememberToken(null);
      return null;
    }
    throw err;
  }
}

async function postBatch(records) {
  return api(SYNC_URL, {
    method: "POST",
    body: {
      device_id: await deviceId(),
      outbox_size: await countUnsynced(),
      set_aside: await countSetAside(APP_VERSION),
      app_version: APP_VERSION,
      sent_at: localIso(),
      records: records.map(toWire),
    },
  });
}

/**
 * One sync request: {answer}, or {stop: result} (sign in, or a refusal no
 * narrowing changes), or {failed: result} (the server failed, or no answer).
 */
async function attempt(records) {
  try {
    if (!(await loadToken()) && !(await fetchMe())) return { stop: { state: "signin" } };
    try {
      return { answer: await postBatch(records) };
    } catch (err) {
      // 403: most likely a CSRF token from an older session; fetch the current one, once.
      if (!(err instanceof ApiError) || err.status !== 403) throw err;
      if (!(await fetchMe())) return { stop: { state: "signin" } };
      return { answer: await postBatch(records) };
    }
  } catch (err) {
    if (err instanceof ApiError) {
      if (err.status === 401) { await rememberToken(null); return { stop: { state: "signin" } }; }
      const result = { state: "error", status: err.status, retryAfter: err.retryAfter };
      return err.status >= 500 || err.status === 413 ? { failed: result } : { stop: result };
    }
    // fetch rejects only without a response; a body that is not JSON lands here too.
    return { failed: { state: err instanceof SyntaxError ? "error" : "offline" } };
  }
}

/** The same batch (by its first record) failed again: how many times in a row. */
async function countFailure(records) {
  const last = (await getMeta("batch_failures")) || {};
  const count = last.head === records[0].id ? last.count + 1 : 1;
  await setMeta("batch_failures", { head: records[0].id, count });
  return count;
}

function canNarrow(failed) {
  // Without a network every request fails alike: nothing to learn by splitting.
  return failed.state !== "offline" || typeof navigator === "undefined" ||
    navigator.onLine !== false;
}

function flushState() {
  const totals = { acked: 0, rejected: 0, conflicts: 0, setAside: 0 };
  const struck = new Set(); // records given a strike in this flush (one each per flush)
  let lastFailure = null;

  async function apply(records, answer) {
    const sent = new Map(records.map((r) => [r.id, r.revision]));
    const counts = await applyResults(sent, answer && answer.results);
    totals.acked += counts.acked;
    totals.rejected += counts.rejected;
    totals.conflicts += counts.conflicts;
    announce({ type: "outbox-changed" });
    return counts;
  }

  /**
   * `record` failed alone. Ask the server something that involves no record
   * (an empty batch from this phone): if that fails too, the server or the
   * network is down, and the record is not to blame (returns the result to
   * stop with). Otherwise the record gets a strike, and is set aside at the last.
   */
  async function blame(record, failed) {
    lastFailure = failed;
    const probe = await attempt([]);
    if (probe.stop) return probe.stop;
    if (probe.failed) return failed;
    struck.add(record.id);
    const after = await strike(record.id, record.revision, failed.status, APP_VERSION);
    if (after && isSetAside(after, Date.now(), APP_VERSION)) {
      totals.setAside += 1;
      announce({ type: "outbox-changed" });
      await attempt([]); // the set_aside count, reported now (device health)
    }
    return null;
  }

  /** Send `records` in ever smaller parts; null when done, or the result to stop with. */
  async function narrowDown(records, failed) {
    const parts = [[...records]];
    let first = true;
    while (parts.length) {
      const part = parts.shift();
      // The whole batch has just failed: start with its halves.
      const sent = first ? { failed } : await attempt(part);
      first = false;
      if (sent.stop) return sent.stop;
      if (sent.answer) { await apply(part, sent.answer); continue; }
      if (!canNarrow(sent.failed)) return sent.failed;
      if (part.length > 1) {
        const half = Math.ceil(part.length / 2);
        parts.unshift(part.slice(0, half), part.slice(half));
        continue;
      }
      const stop = await blame(part[0], sent.failed);
      if (stop) return stop;
    }
    return null;
  }

  return { totals, struck, apply, blame, narrowDown, failure: () => lastFailure };
}

async function flushUnlocked() {
  const run = flushState();
  const { totals } = run;
  let state = "idle";
  for (let i = 0; i < MAX_BATCHES; i += 1) {
    const records = await nextBatch(BATCH_LIMIT, APP_VERSION);
    if (!records.length) break;
    const sent = await attempt(records);
    if (sent.stop) return { ...sent.stop, ...totals };
    if (sent.failed) {
      if (!canNarrow(sent.failed) || (await countFailure(records)) < NARROW_AFTER) {
        return { ...sent.failed, ...totals };
      }
      const stop = await run.narrowDown(records, sent.failed);
      if (stop) return { ...stop, ...totals };
      await setMeta("batch_failures", null);
      state = "synced";
      continue;
    }
    await setMeta("batch_failures", null);
    const counts = await run.apply(records, sent.answer);
    state = "synced";
    if (counts.acked + counts.rejected + counts.conflicts === 0) break; // no progress: do not spin
  }
  // Records the server failed on alone: each on its own, after everything else.
  for (const record of await suspects(APP_VERSION)) {
    if (run.struck.has(record.id)) continue;
    const sent = await attempt([record]);
    if (sent.stop) return { ...sent.stop, ...totals };
    if (sent.answer) {
      await run.apply([record], sent.answer);
      state = "synced";
      continue;
    }
    const stop = await run.blame(record, sent.failed);
    if (stop) return { ...stop, ...totals };
  }
  // A record still failing alone: try again after the usual backoff.
  if (run.failure() && (await suspects(APP_VERSION)).length) {
    return { ...run.failure(), ...totals };
  }
  return { state, ...totals };
}

let running = null;
let again = false;

/**
 * Send what the outbox holds. Calls made while this context is already
 * flushing are folded into one more pass; other tabs and the service worker
 * wait for the lock, then find only what is still unsent.
 */
export function flush() {
  if (running) { again = true; return running; }
  running = (async () => {
    const total = { state: "idle", acked: 0, rejected: 0, conflicts: 0, setAside: 0 };
    let result;
    do {
      again = false;
      result = navigator.locks
        ? await navigator.locks.request(LOCK_NAME, flushUnlocked)
        : await flushUnlocked();
      total.acked += result.acked || 0;
      total.rejected += result.rejected || 0;
      total.conflicts += result.conflicts || 0;
      total.setAside += result.setAside || 0;
      // The last pass says how it ended, unless it merely found nothing left.
      if (result.state !== "idle" || total.state === "idle") {
        Object.assign(total, { ...result, acked: total.acked, rejected: total.rejected,
          conflicts: total.conflicts, setAside: total.setAside });
      }
      // A call that arrived meanwhile may bring a record this pass did not see.
    } while (again && (result.state === "synced" || result.state === "idle"));
    total.remaining = await countUnsynced();
    total.setAsideNow = await countSetAside(APP_VERSION);
    return total;
  })().finally(() => { running = null; });
  return running;
}

let listing = Promise.resolve();

/**
 * Refresh the server's view (case number, routing, police acknowledgement) of
 * our incidents, for the screen that lists them. Conditional: the page's ETag
 * is kept, and a 304 (nothing changed) costs no body and no writes.
 */
export function refreshFromServer(limit = 100) {
  // One at a time: a second showing of the list waits for the first answer's
  // ETag, so that it can be asked conditionally rather than fetched whole again.
  const next = listing.catch(() => {}).then(() => fetchList(limit));
  listing = next;
  return next;
}

async function fetchList(limit) {
  const url = `/api/v1/incidents?limit=${limit}`;
  const cached = await getMeta("incidents-etag");
  const headers = cached && cached.url === url ? { "If-None-Match": cached.etag } : {};
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers });
  if (response.status === 304) return null;
  if (!response.ok) {
    throw new ApiError(response.status, await response.json().catch(() => null));
  }
  const body = await response.json();
  for (const item of (body && body.items) || []) await applyServerIncident(item);
  const etag = response.headers.get("ETag");
  await setMeta("incidents-etag", etag ? { url, etag } : null);
  announce({ type: "outbox-changed" });
  return (body && body.items) || [];
}

/** One incident with its server history (events); null when unavailable. */
export async function fetchIncident(id) {
  try {
    const incident = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
    await applyServerIncident(incident);
    return incident;
  } catch (err) {
    console.warn("incident from the server:", err);
    return null;
  }
}

/** The signed-in person as last seen (works offline). */
export function cachedMe() {
  return getMeta("me");
}
