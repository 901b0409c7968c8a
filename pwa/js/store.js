// IndexedDB: the only place an incident lives on the phone until the server
// has acknowledged it. Works in a page and in the service worker (no DOM).
//
// Stores (database "qorgau"):
//   incidents  one row per incident: the domain fields the server takes, plus
//              local bookkeeping (revision, synced_revision, pending, rejected,
//              server). pending = 1 while revision > synced_revision: that is
//              the outbox. Records, not stored HTTP requests, so a code update,
//              a new session or a changed API never strands them.
//   revisions  every saved revision of every incident ([id, revision]): the
//              history "My incidents" shows.
//   meta       small values by key: device_id, rules, me, posts.
//
// The schema only ever grows: an upgrade adds stores or indexes and never
// drops one, so no service-worker update can lose the outbox.

const DB_NAME = "qorgau";
const DB_VERSION = 1;

let dbPromise = null;
let writesInFlight = 0;
let idleWaiters = [];

function upgrade(db, oldVersion) {
  if (oldVersion < 1) {
    const incidents = db.createObjectStore("incidents", { keyPath: "id" });
    incidents.createIndex("pending", "pending");
    incidents.createIndex("tapped_at", "tapped_at");
    const revisions = db.createObjectStore("revisions", { keyPath: ["id", "revision"] });
    revisions.createIndex("by_incident", "id");
    db.createObjectStore("meta");
  }
}

export function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = (event) => upgrade(req.result, event.oldVersion);
      req.onsuccess = () => {
        const db = req.result;
        // A newer version of the app (another tab, a new service worker) wants
        // to upgrade: step aside so it can; the next call reopens.
        db.onversionchange = () => { db.close(); dbPromise = null; };
        db.onclose = () => { dbPromise = null; };
        resolve(db);
      };
      req.onerror = () => { dbPromise = null; reject(req.error); };
      req.onblocked = () => { /* an old tab holds it; its onversionchange closes it */ };
    });
  }
  return dbPromise;
}

function requestResult(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException("transaction aborted", "AbortError"));
  });
}

// Run `work(tx)` in one transaction; resolves with its value once the
// transaction has committed (durability "strict": on disk, not just in memory,
// because "saved on this phone" must be true when we say it).
async function transact(storeNames, mode, work) {
  const writing = mode === "readwrite";
  if (writing) writesInFlight += 1; // counted before any await, so idle() sees it
  try {
    const db = await openDb();
    const tx = writing
      ? db.transaction(storeNames, mode, { durability: "strict" })
      : db.transaction(storeNames, mode);
    const finished = done(tx);
    let value;
    try {
      value = await work(tx);
    } catch (err) {
      finished.catch(() => {});
      try { tx.abort(); } catch { /* already finished */ }
      throw err;
    }
    await finished;
    return value;
  } finally {
    if (writing) {
      writesInFlight -= 1;
      if (writesInFlight === 0) { idleWaiters.forEach((r) => r()); idleWaiters = []; }
    }
  }
}

// Resolves when no write is in flight (the app waits for this before it lets
// a new service worker take over).
export function idle() {
  return writesInFlight === 0 ? Promise.resolve() : new Promise((r) => idleWaiters.push(r));
}

// ---------------------------------------------------------------- meta

export function getMeta(key) {
  return transact(["meta"], "readonly", (tx) => requestResult(tx.objectStore("meta").get(key)));
}

export function setMeta(key, value) {
  return transact(["meta"], "readwrite", (tx) => { tx.objectStore("meta").put(value, key); });
}

export function uuid() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// One id per install, made once inside a transaction so two tabs starting
// together cannot make two.
export function deviceId() {
  return transact(["meta"], "readwrite", async (tx) => {
    const meta = tx.objectStore("meta");
    let id = await requestResult(meta.get("device_id"));
    if (!id) { id = uuid(); meta.put(id, "device_id"); }
    return id;
  });
}

// ---------------------------------------------------------------- time

// The device's local time with its own offset, e.g. 2026-06-01T02:30:00.123+05:00,
// so the server keeps both the instant and what the phone's clock said.
export function localIso(date = new Date()) {
  const pad = (n, w = 2) => String(Math.abs(n)).padStart(w, "0");
  const off = -date.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

// ---------------------------------------------------------------- incidents

// The fields the server takes (the sync contract); everything else is local.
// occurred_at is when it happened as the crew states it (null: at the tap).
// sos: an SOS (js/sos.js), fixed when it is created.
export const DOMAIN_FIELDS = ["kind", "aggravating", "victim_role", "on_duty", "police_needed",
  "location", "destination_post_id", "note", "occurred_at", "sos"];

function snapshot(record) {
  const out = { id: record.id, revision: record.revision, tapped_at: record.tapped_at };
  for (const f of DOMAIN_FIELDS) out[f] = record[f];
  return out;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The tap: a new incident, committed to disk before this resolves. */
export function createIncident(fields = {}, id = uuid()) {
  const now = new Date();
  const record = {
    id,
    revision: 1,
    tapped_at: localIso(now),
    kind: "unspecified",
    aggravating: [],
    victim_role: null,
    on_duty: true,
    police_needed: false,
    sos: false,
    location: null,
    destination_post_id: null,
    note: "",
    occurred_at: null,
    ...Object.fromEntries(Object.entries(fields).filter(([k]) => DOMAIN_FIELDS.includes(k))),
    saved_at: localIso(now),
    synced_revision: 0,
    pending: 1,
    rejected: null,
    server: null,
  };
  return transact(["incidents", "revisions"], "readwrite", (tx) => {
    tx.objectStore("incidents").add(record);
    tx.objectStore("revisions").add({ ...snapshot(record), saved_at: record.saved_at,
      changed: Object.keys(fields), source: "tap" });
    return record;
  });
}

/**
 * Save `changes` as a new revision (read and written in one transaction, so
 * two quick edits, or an edit and the location arriving, never overwrite each
 * other). Returns the record, unchanged when nothing actually differs.
 */
export function reviseIncident(id, changes, source = "edit") {
  return transact(["incidents", "revisions"], "readwrite", async (tx) => {
    const incidents = tx.objectStore("incidents");
    const record = await requestResult(incidents.get(id));
    if (!record) throw new Error(`no incident ${id} on this phone`);
    const changed = Object.keys(changes).filter(
      (k) => DOMAIN_FIELDS.includes(k) && !same(record[k], changes[k]));
    if (!changed.length) return record;
    for (const k of changed) record[k] = changes[k];
    record.revision += 1;
    record.saved_at = localIso();
    record.pending = 1;
    incidents.put(record);
    tx.objectStore("revisions").add({ ...snapshot(record), saved_at: record.saved_at, changed,
      source });
    return record;
  });
}

export function getIncident(id) {
  return transact(["incidents"], "readonly",
    (tx) => requestResult(tx.objectStore("incidents").get(id)));
}

/** Every incident on the phone, newest first. */
export async function listIncidents() {
  const all = await transact(["incidents"], "readonly",
    (tx) => requestResult(tx.objectStore("incidents").getAll()));
  return all.sort((a, b) => (Date.parse(b.tapped_at) - Date.parse(a.tapped_at)));
}

export function getRevisions(id) {
  return transact(["revisions"], "readonly", (tx) =>
    requestResult(tx.objectStore("revisions").index("by_incident").getAll(IDBKeyRange.only(id))));
}

/** Records not yet acknowledged by the server (rejected ones included). */
export function pendingIncidents() {
  return transact(["incidents"], "readonly", (tx) =>
    requestResult(tx.objectStore("incidents").index("pending").getAll(IDBKeyRange.only(1))));
}

export function countUnsynced() {
  return transact(["incidents"], "readonly", (tx) =>
    requestResult(tx.objectStore("incidents").index("pending").count(IDBKeyRange.only(1))));
}

/**
 * Keep the server's signed receipt for a revision with the incident (api.ledger):
 * receipts[revision] = {payload, signature, key_id, event_hash, ...}.
 */
export function keepReceipt(record, receipt) {
  if (!receipt || !Number.isInteger(receipt.revision)) return;
  record.receipts = { ...(record.receipts || {}), [receipt.revision]: receipt };
}

/**
 * Apply the server's answer for one record: update its bookkeeping inside a
 * transaction that rereads the row, so an edit saved while the request was in
 * flight (a higher revision) stays in the outbox.
 */
export function updateIncident(id, mutate) {
  return transact(["incidents"], "readwrite", async (tx) => {
    const incidents = tx.objectStore("incidents");
    const record = await requestResult(incidents.get(id));
    if (!record) return null;
    mutate(record);
    record.pending = record.revision > record.synced_revision ? 1 : 0;
    incidents.put(record);
    return record;
  });
}
