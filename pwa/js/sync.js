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
// plus counts {acked, rejected, remaining}.

import { api, ApiError, setCsrfToken } from "./api.js";
import { applyResults, applyServerIncident, BATCH_LIMIT, nextBatch, toWire } from "./outbox.js";
import { countUnsynced, deviceId, getMeta, localIso, setMeta } from "./store.js";
import { APP_VERSION } from "./version.js";

export const SYNC_URL = "/api/v1/incidents/sync";
export const ME_URL = "/api/v1/auth/me";
export const SYNC_TAG = "qorgau-outbox"; // the Background Sync tag
const LOCK_NAME = "qorgau-outbox-flush";
const MAX_BATCHES = 20; // per flush; the rest waits for the next trigger

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
      app_version: APP_VERSION,
      sent_at: localIso(),
      records: records.map(toWire),
    },
  });
}

async function flushUnlocked() {
  const totals = { acked: 0, rejected: 0 };
  let state = "idle";
  for (let i = 0; i < MAX_BATCHES; i += 1) {
    const records = await nextBatch(BATCH_LIMIT);
    if (!records.length) break;
    let answer;
    try {
      if (!(await loadToken()) && !(await fetchMe())) return { state: "signin", ...totals };
      try {
        answer = await postBatch(records);
      } catch (err) {
        // 403: most likely a CSRF token from an older session; fetch the current one, once.
        if (!(err instanceof ApiError) || err.status !== 403) throw err;
        if (!(await fetchMe())) return { state: "signin", ...totals };
        answer = await postBatch(records);
      }
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 401) { await rememberToken(null); return { state: "signin", ...totals }; }
        return { state: "error", status: err.status, retryAfter: err.retryAfter, ...totals };
      }
      // fetch rejects only without a response; a body that is not JSON lands here too.
      return { state: err instanceof SyntaxError ? "error" : "offline", ...totals };
    }
    const sent = new Map(records.map((r) => [r.id, r.revision]));
    const counts = await applyResults(sent, answer && answer.results);
    totals.acked += counts.acked;
    totals.rejected += counts.rejected;
    state = "synced";
    announce({ type: "outbox-changed" });
    if (counts.acked + counts.rejected === 0) break; // no progress: do not spin
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
    const total = { state: "idle", acked: 0, rejected: 0 };
    let result;
    do {
      again = false;
      result = navigator.locks
        ? await navigator.locks.request(LOCK_NAME, flushUnlocked)
        : await flushUnlocked();
      total.acked += result.acked || 0;
      total.rejected += result.rejected || 0;
      // The last pass says how it ended, unless it merely found nothing left.
      if (result.state !== "idle" || total.state === "idle") {
        Object.assign(total, { ...result, acked: total.acked, rejected: total.rejected });
      }
      // A call that arrived meanwhile may bring a record this pass did not see.
    } while (again && (result.state === "synced" || result.state === "idle"));
    total.remaining = await countUnsynced();
    return total;
  })().finally(() => { running = null; });
  return running;
}

/**
 * Refresh the server's view (case number, routing, police acknowledgement) of
 * our incidents, for the screen that lists them. Conditional: the page's ETag
 * is kept, and a 304 (nothing changed) costs no body and no writes.
 */
export async function refreshFromServer(limit = 100) {
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
