// The outbox's rules, on top of store.js: what is sent, and what the server's
// answer does to each record. No DOM, no fetch: the page and the service
// worker both use it.
//
// A record with revision R leaves the outbox only when the server answered
// created/updated/unchanged for a revision >= R. A rejected record stays,
// with the server's reason, and is not sent again until it is edited (a new
// revision), so one bad record never blocks or loops the others.

import { DOMAIN_FIELDS, keepReceipt, pendingIncidents, updateIncident } from "./store.js";

export const BATCH_LIMIT = 100; // the sync endpoint takes at most this many records

const ACCEPTED = new Set(["created", "updated", "unchanged"]);

/** The record as the sync endpoint takes it. */
export function toWire(record) {
  const wire = { id: record.id, revision: record.revision, tapped_at: record.tapped_at };
  for (const f of DOMAIN_FIELDS) {
    if (f === "victim_role" && !record.victim_role) continue; // optional: omit when unknown
    wire[f] = record[f];
  }
  wire.note = (wire.note || "").slice(0, 2000);
  wire.aggravating = wire.aggravating || [];
  return wire;
}

/** Whether the record should go in the next request. */
export function isSendable(record) {
  return record.pending === 1 && !(record.rejected && record.rejected.revision >= record.revision);
}

/** The next batch, oldest tap first (the first incident matters most). */
export async function nextBatch(limit = BATCH_LIMIT) {
  const pending = await pendingIncidents();
  return pending.filter(isSendable)
    .sort((a, b) => Date.parse(a.tapped_at) - Date.parse(b.tapped_at))
    .slice(0, limit);
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
 * Returns counts {acked, rejected, unknown}.
 */
export async function applyResults(sent, results) {
  const counts = { acked: 0, rejected: 0, unknown: 0 };
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
      });
      counts.acked += 1;
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
