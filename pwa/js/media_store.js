// Evidence on the phone: photos and recordings kept in IndexedDB (their own
// database, "qorgau-media", so the outbox's schema never waits on this one)
// until the server has stored them, then uploaded in chunks that resume where
// they stopped. No DOM here.
//
// An item: {id, incident_id, kind: "photo"|"audio", filename, type, size,
//   sha256, chunk_size, captured_at, blob, status, sent, chunks, error, receipt}
// status: "waiting" (for the incident to sync, or the network), "uploading",
//   "stored" (the server has it, sealed in the incident's chain: the blob is
//   dropped, the receipt kept), "refused" (the server or this phone said why:
//   error {title, detail}; the file stays until the person removes it).
//
// Upload (api/media): POST /incidents/<id>/media announces size and SHA-256
// and answers with the chunks the server already has; each missing chunk is
// PUT with its own SHA-256; POST /media/<id>/complete has the whole file
// checked, stored and sealed. Only after the incident itself has synced.

import { deviceId, getIncident, getMeta } from "./store.js";

const DB_NAME = "qorgau-media";
const DB_VERSION = 1;
export const CHUNK_SIZE = 256 * 1024;
// The server's defaults (api/media/service.py); the server stays the authority.
export const MAX_FILE_BYTES = 25 * 1024 * 1024;
const LOCK_NAME = "qorgau-media-upload";

let dbPromise = null;

function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const items = req.result.createObjectStore("items", { keyPath: "id" });
        items.createIndex("incident_id", "incident_id");
        items.createIndex("status", "status");
      };
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => { db.close(); dbPromise = null; };
        db.onclose = () => { dbPromise = null; };
        resolve(db);
      };
      req.onerror = () => { dbPromise = null; reject(req.error); };
    });
  }
  return dbPromise;
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, work) {
  const db = await openDb();
  const t = mode === "readwrite"
    ? db.transaction("items", mode, { durability: "strict" }) : db.transaction("items", mode);
  const value = await work(t.objectStore("items"));
  await new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new DOMException("aborted", "AbortError"));
  });
  return value;
}

export function getItem(id) {
  return tx("readonly", (s) => result(s.get(id)));
}

export function listItems(incidentId = null) {
  return tx("readonly", (s) => result(incidentId
    ? s.index("incident_id").getAll(incidentId) : s.getAll()))
    .then((items) => items.sort((a, b) => (a.captured_at < b.captured_at ? -1 : 1)));
}

export function putItem(item) {
  return tx("readwrite", (s) => { s.put(item); return item; });
}

export async function updateItem(id, mutate) {
  return tx("readwrite", async (s) => {
    const item = await result(s.get(id));
    if (!item) return null;
    mutate(item);
    s.put(item);
    return item;
  });
}

export function removeItem(id) {
  return tx("readwrite", (s) => { s.delete(id); });
}

export function isPending(item) {
  return item.status === "waiting" || item.status === "uploading";
}

/** {count, bytes, refused} of what still waits on this phone. */
export async function pendingSummary() {
  const items = await listItems();
  const pending = items.filter(isPending);
  return { count: pending.length, bytes: pending.reduce((n, i) => n + i.size, 0),
    refused: items.filter((i) => i.status === "refused").length };
}

// ---------------------------------------------------------------- checks on the phone

export async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const PHOTO_EXT = ["jpg", "jpeg", "jfif", "png", "webp", "heic", "heif"];
const AUDIO_EXT = ["webm", "weba", "ogg", "oga", "opus", "m4a", "mp4", "aac"];

/** What the first bytes are ("image/jpeg", ...), or a refusal key: "zip", "exe", "unknown". */
export function sniff(bytes) {
  const b = bytes;
  const ascii = (from, to) => String.fromCharCode(...b.slice(from, to));
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b[0] === 0x89 && ascii(1, 4) === "PNG") return "image/png";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (ascii(4, 8) === "ftyp") {
    const brand = ascii(8, 12);
    if (["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1", "heif"].includes(brand)) {
      return "image/heic";
    }
    if (brand === "avif" || brand === "avis") return "unknown";
    return "audio/mp4";
  }
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return "audio/webm";
  if (ascii(0, 4) === "OggS") return "audio/ogg";
  if (ascii(0, 2) === "PK") return "zip";
  if (ascii(0, 2) === "MZ") return "exe";
  return "unknown";
}

/**
 * A file the person picked or recorded, checked the way the server will check
 * it: null when fine, else {key, values} naming the problem in words.
 */
export async function checkFile(blob, kind, filename) {
  if (blob.size > MAX_FILE_BYTES) {
    return { key: "md_err_too_big", values: { size: mb(blob.size), limit: mb(MAX_FILE_BYTES) } };
  }
  if (!blob.size) return { key: "md_err_empty" };
  const found = sniff(new Uint8Array(await blob.slice(0, 64).arrayBuffer()));
  if (found === "zip") return { key: "md_err_zip" };
  if (found === "exe") return { key: "md_err_exe" };
  if (found === "unknown" || (kind === "photo") !== found.startsWith("image/")) {
    return { key: kind === "photo" ? "md_err_not_photo" : "md_err_not_audio" };
  }
  const ext = filename.includes(".") ? filename.split(".").pop().toLowerCase() : "";
  if (ext && !(kind === "photo" ? PHOTO_EXT : AUDIO_EXT).includes(ext)) {
    return { key: "md_err_name", values: { ext } };
  }
  return null;
}

export function mb(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Keep a new photo or recording with its incident; resolves once it is on disk. */
export async function addMedia({ id, incidentId, kind, blob, filename }) {
  const buffer = await blob.arrayBuffer();
  const item = {
    id, incident_id: incidentId, kind, filename, type: blob.type || "", size: blob.size,
    sha256: await sha256Hex(buffer), chunk_size: CHUNK_SIZE,
    captured_at: new Date().toISOString(), blob, status: "waiting", sent: 0,
    chunks: Math.max(1, Math.ceil(blob.size / CHUNK_SIZE)), error: null, receipt: null,
  };
  await putItem(item);
  return item;
}

// ---------------------------------------------------------------- upload

class HttpError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

async function call(path, { method = "GET", json, raw, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", cache: "no-store", headers: { ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  if (raw !== undefined) {
    init.headers["Content-Type"] = "application/octet-stream";
    init.body = raw;
  }
  if (method !== "GET") {
    const token = await getMeta("csrf");
    if (token) init.headers["X-CSRF-Token"] = token;
  }
  const response = await fetch(path, init);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new HttpError(response.status, data);
  return data;
}

// Answers that mean "this file will never be taken as it is": keep it on the
// phone, refused, with the server's words.
function refusal(err) {
  return err instanceof HttpError && [409, 413, 415, 422].includes(err.status) &&
    !(err.status === 409 && err.problem.missing);
}

async function uploadOne(item, onProgress) {
  const incident = await getIncident(item.incident_id);
  if (!incident || !(incident.synced_revision >= 1)) return "waiting"; // the incident first
  let opened;
  try {
    opened = await call(`/api/v1/incidents/${item.incident_id}/media`, { method: "POST", json: {
      id: item.id, kind: item.kind, filename: item.filename, content_type: item.type,
      size: item.size, sha256: item.sha256, chunk_size: item.chunk_size,
      device_id: await deviceId(), captured_at: item.captured_at } });
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return "waiting";
    throw err;
  }
  if (opened.status !== "stored") {
    const have = new Set(opened.received || []);
    await updateItem(item.id, (i) => { i.status = "uploading"; i.sent = have.size; });
    onProgress();
    for (let index = 0; index < item.chunks; index += 1) {
      if (have.has(index)) continue; // the server has it: never sent again
      const part = await item.blob.slice(index * item.chunk_size,
        (index + 1) * item.chunk_size).arrayBuffer();
      await call(`/api/v1/media/${item.id}/chunks/${index}`, {
        method: "PUT", raw: part, headers: { "X-Chunk-SHA256": await sha256Hex(part) } });
      have.add(index);
      await updateItem(item.id, (i) => { i.sent = have.size; });
      onProgress();
    }
  }
  const done = await call(`/api/v1/media/${item.id}/complete`, { method: "POST" });
  await updateItem(item.id, (i) => {
    i.status = "stored";
    i.sent = i.chunks;
    i.receipt = done.receipt;
    i.event_seq = done.event_seq;
    i.blob = null; // the server keeps the original now; the phone's space is for the next
  });
  onProgress();
  return "stored";
}

/**
 * Upload what waits, one file at a time, under a Web Lock (one uploader across
 * tabs). Resolves {state: "idle"|"done"|"offline"|"error", stored}.
 */
export function uploadPending(onProgress = () => {}) {
  const run = async () => {
    let stored = 0;
    for (const item of await listItems()) {
      if (!isPending(item)) continue;
      try {
        if ((await uploadOne(item, onProgress)) === "stored") stored += 1;
      } catch (err) {
        if (refusal(err)) {
          await updateItem(item.id, (i) => {
            i.status = "refused";
            const first = (err.problem.errors || [])[0] || {};
            i.error = { field: first.field || null, title: err.problem.title || "",
              detail: err.message };
          });
          onProgress();
          continue;
        }
        if (err instanceof HttpError && err.status === 401) return { state: "signin", stored };
        return { state: err instanceof HttpError ? "error" : "offline", stored };
      }
    }
    return { state: stored ? "done" : "idle", stored };
  };
  return navigator.locks ? navigator.locks.request(LOCK_NAME, run) : run();
}

/** Tell the server what this phone holds (the managers' device health); never throws. */
export async function reportDevice() {
  try {
    const summary = await pendingSummary();
    const estimate = navigator.storage?.estimate ? await navigator.storage.estimate() : {};
    const persisted = navigator.storage?.persisted ? await navigator.storage.persisted() : null;
    await call("/api/v1/media/device", { method: "PUT", json: {
      device_id: await deviceId(), pending: summary.count, pending_bytes: summary.bytes,
      refused: summary.refused, storage_persisted: persisted,
      quota_bytes: estimate.quota ? Math.round(estimate.quota) : null,
      usage_bytes: estimate.usage !== undefined ? Math.round(estimate.usage) : null } });
    return true;
  } catch {
    return false;
  }
}
