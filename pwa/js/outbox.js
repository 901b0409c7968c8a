// The outbox's rules, on top of store.js: what is sent, and what the server's
// answer does to each record. No DOM, no fetch: the page and the service
// worker both use it.
//
// A record with revision R leaves the outbox only when the server answered
// created/updated/pending/unchanged for a revision >= R (pending: stored, its
// stated time waiting for a station manager's confirmation). A rejected record stays,
// with the server's reason, and is not sent again until it is edited (a new
// revision), so one bad record never blocks or loops the others.
//
// A conflict (the server holds this revision with other content) keeps the
// phone's version: it goes again as the next revision, and the server keeps both.
//
// The queue is never hostage to one record, whatever the server's fault: a
// record the server fails on when sent alone (sync.js narrows a failing batch
// down to it) is a suspect, sent alone after the others; after SET_ASIDE_AFTER
// such failures it is set aside: kept on the phone, shown as "not sent,
// reported to the administrator", counted in every sync request (set_aside),
// and tried again only after an app update, a day later or an edit.

import { DOMAIN_FIELDS, keepReceipt, pendingIncidents, updateIncident } from "./store.js";

export const BATCH_LIMIT = 100; // the sync endpoint takes at most this many records
export const MAX_NOTE = 2000; // code points, as the server counts (api/incidents/schemas.py)
export const SET_ASIDE_AFTER = 3; // failures alone (the server taking other requests)
export const SET_ASIDE_RETRY_MS = 24 * 3600 * 1000; // a set-aside record is tried again daily

const ACCEPTED = new Set(["created", "updated", "pending", "unchanged"]);

/** The text with every unpaired surrogate as U+FFFD and no NUL: what the server can store. */
export function wellFormed(text) {
  const s = String(text ?? "");
  const whole = typeof s.toWellFormed === "function" ? s.toWellFormed()
    : s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
      "\uFFFD");
  return whole.replaceAll("\u0000", "");
}

/**
 * At most `max` code points of `text`, never cutting inside a surrogate pair or
 * a grapheme (an emoji with its skin tone, a letter with its accent): whole
 * graphemes (Intl.Segmenter) where the browser has it, whole code points otherwise.
 */
export function cutText(text, max = MAX_NOTE) {
  const s = wellFormed(text);
  const points = Array.from(s);
  if (points.length <= max) return s;
  if (typeof Intl === "object" && typeof Intl.Segmenter === "function") {
    let out = "";
    let used = 0;
    for (const { segment } of new Intl.Segmenter(undefined, { granularity: "grapheme" })
      .segment(s)) {
      const n = Array.from(segment).length;
      if (used + n > max) break;
      out += segment;
      used += n;
    }
    return out;
  }
  return points.slice(0, max).join("");
}

/** The record as the sync endpoint takes it. */
export function toWire(record) {
  const wire = { id: record.id, revision: record.revision, tapped_at: record.tapped_at };
  for (const f of DOMAIN_FIELDS) {
    if (f === "victim_role" && !record.victim_role) continue; // optional: omit when unknown
    if (f === "occurred_at" && !record.occurred_at) continue; // not stated: the tap's time
    if (f === "sos" && !record.sos) continue; // only an SOS says so
    wire[f] = record[f];
  }
  wire.note = cutText(wire.note || "");
  wire.aggravating = wire.aggravating || [];
  return wire;
}

/** Set aside for its current revision (and not yet due for another try). */
export function isSetAside(record, now = Date.now(), appVersion = null) {
  const aside = record.set_aside;
  if (!aside || aside.revision < record.revision) return false;
  if (appVersion && aside.app_version && aside.app_version !== appVersion) return false;
  return now - Date.parse(aside.at) < SET_ASIDE_RETRY_MS;
}

/** Failed alone (while the server took other requests) at its current revision. */
export function isSuspect(record) {
  return Boolean(record.failures && record.failures.revision >= record.revision &&
    record.failures.count > 0);
}

/** Whether the record should be sent at all. */
export function isSendable(record, now = Date.now(), appVersion = null) {
  return record.pending === 1 && !(record.rejected && record.rejected.revision >= record.revision)
    && !isSetAside(record, now, appVersion);
}

function oldestFirst(records) {
  return records.sort((a, b) => Date.parse(a.tapped_at) - Date.parse(b.tapped_at));
}

/** The next batch, oldest tap first (the first incident matters most); suspects go alone. */
export async function nextBatch(limit = BATCH_LIMIT, appVersion = null) {
  const pending = await pendingIncidents();
  return oldestFirst(pending.filter((r) => isSendable(r, Date.now(), appVersion) &&
    !isSuspect(r))).slice(0, limit);
}

/** Records the server failed on alone: each is sent on its own, after the rest. */
export async function suspects(appVersion = null) {
  const pending = await pendingIncidents();
  return oldestFirst(pending.filter((r) => isSendable(r, Date.now(), appVersion) &&
    isSuspect(r)));
}

/** How many records are set aside (reported in every sync request). */
export async function countSetAside(appVersion = null) {
  return (await pendingIncidents()).filter((r) => isSetAside(r, Date.now(), appVersion)).length;
}

/**
 * The server failed on this record sent alone, while it answered another
 * request: one more strike; at SET_ASIDE_AFTER it is set aside. Returns the record.
 */
export function strike(id, revision, status, appVersion = null) {
  return updateIncident(id, (record) => {
    if (record.revision !== revision) return; // edited meanwhile: the new revision starts afresh
    const before = record.failures && record.failures.revision === revision
      ? record.failures.count : 0;
    record.failures = { revision, count: before + 1, status: status ?? null };
    if (record.failures.count >= SET_ASIDE_AFTER) {
      record.set_aside = { revision, at: new Date().toISOString(), status: status ?? null,
        app_version: appVersion };
    }
  });
}

/** Fold the server's view of an incident into the local record (never its domain fields). */
export function mergeServer(record, incident) {
  if (!incident) return;
  const prev = record.server || {};
  record.server = {
    ...prev,
    ...Object.fromEntries(Object.entries(incident).filter(([k]) => k !== "events")),
  };
}

/**
 * Apply one sync response. `sent` maps id → the revision that was sent.
 * Returns counts {acked, rejected, conflicts, unknown}.
 */
export async function applyResults(sent, results) {
  const counts = { acked: 0, rejected: 0, conflicts: 0, unknown: 0 };
  for (const result of results || []) {
    if (!result || !sent.has(result.id)) { counts.unknown += 1; continue; }
    const sentRevision = sent.get(result.id);
    if (ACCEPTED.has(result.status)) {
      const acked = Math.max(sentRevision,
        Number.isInteger(result.incident?.revision) ? result.incident.revision : 0);
      await updateIncident(result.id, (record) => {
        // Never acknowledge more than the server says it has.
        record.synced_revision = Math.max(record.synced_revision || 0,
          Math.min(acked, record.revision));
        if (record.rejected && record.rejected.revision <= record.synced_revision) {
          record.rejected = null;
        }
        mergeServer(record, result.incident);
        keepReceipt(record, result.receipt);
        record.failures = null;
        record.set_aside = null;
      });
      counts.acked += 1;
    } else if (result.status === "conflict") {
      // The server holds this revision with other content and changed nothing:
      // our version goes again as the next revision, and both stay in its history.
      const theirs = Number.isInteger(result.incident?.revision) ? result.incident.revision
        : sentRevision;
      await updateIncident(result.id, (record) => {
        record.revision = Math.max(record.revision, theirs + 1);
        record.conflicted = { revision: sentRevision, server_revision: theirs };
        mergeServer(record, result.incident);
      });
      counts.conflicts += 1;
    } else if (result.status === "rejected") {
      await updateIncident(result.id, (record) => {
        record.rejected = { revision: sentRevision, errors: result.errors || [] };
        mergeServer(record, result.incident);
      });
      counts.rejected += 1;
    } else {
      counts.unknown += 1; // an answer we do not understand keeps the record
    }
  }
  return counts;
}

/** The server's current view of incidents we hold (list, detail or a push). */
export async function applyServerIncident(incident) {
  if (!incident || !incident.id) return null;
  return updateIncident(incident.id, (record) => {
    mergeServer(record, incident);
    // The server holding a revision we have means that revision arrived,
    // even if its answer to our request was lost.
    if (Number.isInteger(incident.revision)) {
      record.synced_revision = Math.max(record.synced_revision || 0,
        Math.min(incident.revision, record.revision));
    }
  });
}

// ---------------------------------------------------------------- urgent records

// How long after its tap a record still counts as urgent for the retry timer
// (backoff.js): past it, "police needed now" is history, and the record waits
// with the others.
export const URGENT_WINDOW_MS = 30 * 60 * 1000;

/**
 * Whether the record asks for the police now. An SOS, when it exists, is an
 * incident marked police-needed-now (DESIGN.md), so it is urgent by this same rule.
 */
export function isUrgent(record) {
  return record.police_needed === true;
}

/** Whether an urgent record, tapped within URGENT_WINDOW_MS, is still waiting to be sent. */
export async function urgentWaiting(now = Date.now()) {
  const pending = await pendingIncidents();
  return pending.some((r) => isSendable(r) && isUrgent(r)
    && now - Date.parse(r.tapped_at) < URGENT_WINDOW_MS);
}
