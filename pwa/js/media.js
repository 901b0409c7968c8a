// Evidence capture on the incident's screen (crew): take or pick photos, record
// audio with one tap (the elapsed time on screen, one tap to stop). The
// incident is already saved when this screen opens, so nothing here can delay
// it; the camera and the microphone are asked for only when the person taps.
// Files are kept on the phone (media_store.js) and uploaded after the incident
// has synced; this screen shows what waits, and warns before storage runs out.

import { h } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";
import {
  addMedia, checkFile, isPending, listItems, mb, pendingSummary, removeItem, reportDevice,
  uploadPending,
} from "./media_store.js";
import { uuid } from "./store.js";
import { onAnnouncement, SYNC_TAG } from "./sync.js";

const tr = (key, values) => t(currentLanguage(), key, values);
// Warn when less than this is left for the app, or 90% of its quota is used.
const LOW_SPACE_BYTES = 100 * 1024 * 1024;
const RETRY_MS = [5_000, 15_000, 30_000, 60_000];

let panel = null;          // {container, incidentId}
let recording = null;      // {incidentId, recorder, stream, parts, started, timer, type}
let message = null;        // {key, values, alert}
let persistAsked = false;
let failures = 0;
let retryTimer = null;
let started = false;

// ---------------------------------------------------------------- storage

async function storageState() {
  if (!navigator.storage?.estimate) return null;
  const { quota = 0, usage = 0 } = await navigator.storage.estimate();
  if (!quota) return null;
  const free = Math.max(quota - usage, 0);
  return { quota, usage, free, low: free < LOW_SPACE_BYTES || usage / quota > 0.9 };
}

// Ask once, when the first file is kept: a browser may keep persistent storage
// through "clear space" (Chromium grants it silently to installed apps).
async function askPersist() {
  if (persistAsked || !navigator.storage?.persist) return;
  persistAsked = true;
  try {
    if (!(await navigator.storage.persisted())) await navigator.storage.persist();
  } catch { /* not offered here */ }
}

// ---------------------------------------------------------------- keeping a file

async function keep(incidentId, kind, blob, filename) {
  const problem = await checkFile(blob, kind, filename);
  if (problem) { say({ ...problem, alert: true }); return; }
  const space = await storageState();
  if (space && blob.size > space.free) {
    say({ key: "md_no_space", values: { size: mb(blob.size) }, alert: true });
    return;
  }
  await addMedia({ id: uuid(), incidentId, kind, blob, filename });
  askPersist();
  // Where the browser has Background Sync, the service worker uploads it even
  // after the app is closed (sw.js); elsewhere the open app does.
  navigator.serviceWorker?.ready.then((reg) => reg.sync?.register(SYNC_TAG)).catch(() => {});
  say({ key: kind === "photo" ? "md_saved_photo" : "md_saved_audio" });
  changed();
}

async function onFiles(incidentId, input) {
  const files = [...(input.files || [])];
  input.value = "";
  for (const file of files) await keep(incidentId, "photo", file, file.name || "photo.jpg");
}

// ---------------------------------------------------------------- recording

function elapsed() {
  const s = Math.floor((Date.now() - recording.started) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function recorderType() {
  if (typeof MediaRecorder === "undefined") return null;
  for (const type of ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg"]) {
    if (MediaRecorder.isTypeSupported?.(type)) return type;
  }
  return "";
}

async function startRecording(incidentId) {
  const type = recorderType();
  if (type === null || !navigator.mediaDevices?.getUserMedia) {
    say({ key: "md_no_recorder", alert: true });
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true }); // asked now, on the tap
  } catch {
    say({ key: "md_mic_denied", alert: true });
    return;
  }
  const recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
  recording = { incidentId, recorder, stream, parts: [], started: Date.now(), timer: null,
    type: recorder.mimeType || type || "audio/webm" };
  recorder.addEventListener("dataavailable", (e) => { if (e.data?.size) recording?.parts.push(e.data); });
  recorder.addEventListener("stop", async () => {
    const done = recording;
    recording = null;
    clearInterval(done.timer);
    for (const track of done.stream.getTracks()) track.stop();
    const base = done.type.split(";")[0];
    const ext = { "audio/webm": "webm", "audio/mp4": "m4a", "audio/ogg": "ogg" }[base] || "webm";
    const blob = new Blob(done.parts, { type: base });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    await keep(done.incidentId, "audio", blob, `audio-${stamp}.${ext}`);
  });
  recorder.start(1000); // a part every second: a phone that dies keeps nothing less
  message = null;
  recording.timer = setInterval(renderRecording, 1000);
  render();
}

function stopRecording() {
  if (recording && recording.recorder.state !== "inactive") recording.recorder.stop();
}

function renderRecording() {
  const line = panel?.container.querySelector(".md-recording");
  if (!line) return;
  line.hidden = !recording;
  line.textContent = recording ? tr("md_recording", { time: elapsed() }) : "";
}

// ---------------------------------------------------------------- the panel

function say(next) {
  message = next;
  render();
}

function statusText(item, synced) {
  if (item.status === "stored") return tr("md_stored");
  if (item.status === "refused") return tr("md_refused", { reason: refusedReason(item) });
  if (item.status === "uploading" || item.sent) {
    return tr("md_uploading", { sent: item.sent || 0, chunks: item.chunks });
  }
  return synced ? tr("md_waiting") : tr("md_waiting_sync");
}

function refusedReason(item) {
  const field = item.error?.field;
  const key = { content: "md_err_content", kind: "md_err_content", filename: "md_err_name_server",
    size: "md_err_limit", id: "md_err_limit", sha256: "md_err_damaged" }[field];
  return tr(key || "md_err_other");
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// The panel is redrawn at every upload-progress step, so it is built once per
// incident and then changed in place: a button replaced under a finger (pressed
// on the old one, released on the new one) is no click at all.
let nodes = null;

function build(container, incidentId) {
  const record = h("button", { type: "button", class: "md-button md-record", id: "md-record",
    onclick: () => (recording ? stopRecording() : startRecording(incidentId)) });
  const built = {
    incidentId, record,
    title: h("h3", { id: "md-title", class: "md-title" }),
    take: h("label", { class: "md-button", for: "md-take" }),
    pick: h("label", { class: "md-button", for: "md-pick" }),
    line: h("p", { class: "md-recording", "aria-live": "polite", hidden: true }),
    message: null, shownMessage: null, lang: null,
    quota: h("p", { class: "md-message md-alert md-quota", role: "alert", hidden: true }),
    pending: h("p", { class: "md-pending", hidden: true }),
    list: h("ul", { class: "md-list", hidden: true }),
  };
  built.section = h("section", { class: "md-panel", "aria-labelledby": "md-title" },
    built.title,
    h("div", { class: "md-actions" },
      built.take, h("input", { type: "file", accept: "image/*", capture: "environment",
        class: "md-file", id: "md-take", onchange: (e) => onFiles(incidentId, e.target) }),
      built.pick, h("input", { type: "file", accept: "image/*", multiple: true,
        class: "md-file", id: "md-pick", onchange: (e) => onFiles(incidentId, e.target) }),
      record),
    built.line, built.quota, built.pending, built.list);
  container.replaceChildren(built.section);
  return built;
}

function itemRow(item) {
  const remove = h("button", { type: "button", class: "md-remove", hidden: true,
    onclick: async () => {
      await removeItem(item.id);
      changed();
    } });
  return h("li", { "data-id": item.id }, h("strong"), " ", h("span", { class: "md-size" }),
    h("br"), h("span", { class: "md-state" }), " ", remove);
}

function updateRow(row, item, synced) {
  const kind = `md-item md-${item.status}`;
  if (row.className !== kind) row.className = kind;
  if (row.dataset.status !== item.status) row.dataset.status = item.status;
  setText(row.querySelector("strong"), item.kind === "photo" ? tr("md_photo") : tr("md_audio"));
  setText(row.querySelector(".md-size"), mb(item.size));
  setText(row.querySelector(".md-state"), statusText(item, synced));
  const remove = row.querySelector(".md-remove");
  remove.hidden = item.status !== "refused";
  setText(remove, tr("md_remove"));
}

/** The list's rows in the items' order; a row of an item still listed is kept. */
function updateList(list, items, synced) {
  const rows = new Map([...list.children].map((row) => [row.dataset.id, row]));
  items.forEach((item, index) => {
    const row = rows.get(item.id) || itemRow(item);
    updateRow(row, item, synced);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
  list.hidden = !items.length;
}

/** The message: a new node for a new message (so an alert is announced), else kept. */
function updateMessage(panelNodes) {
  if (panelNodes.shownMessage === message && panelNodes.lang === currentLanguage()) return;
  const node = message ? h("p", { class: message.alert ? "md-message md-alert" : "md-message",
    role: message.alert ? "alert" : "status" }, tr(message.key, message.values)) : null;
  if (panelNodes.message) panelNodes.message.remove();
  if (node) panelNodes.line.after(node);
  panelNodes.message = node;
  panelNodes.shownMessage = message;
  panelNodes.lang = currentLanguage();
}

async function render() {
  if (!panel) return;
  const { container, incidentId, synced } = panel;
  const items = await listItems(incidentId);
  const space = await storageState();
  if (!panel || panel.incidentId !== incidentId) return;
  if (!nodes || nodes.incidentId !== incidentId || !container.contains(nodes.section)) {
    nodes = build(container, incidentId);
  }
  const recordingHere = Boolean(recording && recording.incidentId === incidentId);
  setText(nodes.title, tr("md_title"));
  setText(nodes.take, tr("md_take_photo"));
  setText(nodes.pick, tr("md_pick_photo"));
  setText(nodes.record, recordingHere ? tr("md_stop") : tr("md_record"));
  nodes.record.setAttribute("aria-pressed", String(recordingHere));
  nodes.line.hidden = !recordingHere;
  updateMessage(nodes);
  nodes.quota.hidden = !space?.low;
  setText(nodes.quota, space?.low ? tr("md_quota_low", { free: mb(space.free) }) : "");
  const pending = items.filter(isPending);
  nodes.pending.hidden = !pending.length;
  setText(nodes.pending, pending.length ? tr("md_pending_summary", { n: pending.length,
    size: mb(pending.reduce((n, i) => n + i.size, 0)) }) : "");
  updateList(nodes.list, items, synced);
  if (recordingHere) renderRecording();
  else setText(nodes.line, "");
}

/** Show the incident's evidence panel in `container` (the incident screen). */
export function mountMedia(container, incidentId, record) {
  if (!panel || panel.incidentId !== incidentId) message = null;
  panel = { container, incidentId, synced: Boolean(record && record.synced_revision >= 1) };
  render();
}

export function unmountMedia() {
  panel = null;
}

/** The line on the incidents list: what waits to upload, and low storage. */
export async function renderSummary(node) {
  if (!node) return;
  const summary = await pendingSummary();
  const space = await storageState();
  const parts = [];
  if (summary.count) {
    parts.push(tr("md_pending_summary", { n: summary.count, size: mb(summary.bytes) }));
  }
  if (space?.low) parts.push(tr("md_quota_low", { free: mb(space.free) }));
  node.textContent = parts.join(" ");
  node.hidden = !parts.length;
}

// ---------------------------------------------------------------- uploading

function changed() {
  render();
  renderSummary(document.getElementById("media-status"));
  kick();
}

let pumping = null;
let lastReported = null; // what the server last heard of this phone's media

/** Upload what waits now (after the incident synced, on `online`, on a timer). */
export function kick() {
  if (pumping) return pumping;
  clearTimeout(retryTimer);
  pumping = (async () => {
    const result = await uploadPending(() => render());
    const summary = JSON.stringify(await pendingSummary());
    if (summary !== lastReported && await reportDevice()) lastReported = summary;
    failures = result.state === "offline" || result.state === "error" ? failures + 1 : 0;
    const waiting = (await pendingSummary()).count;
    if (waiting) {
      retryTimer = setTimeout(kick, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]);
    }
    render();
    renderSummary(document.getElementById("media-status"));
    return result;
  })().finally(() => { pumping = null; });
  return pumping;
}

/** Start uploading in the background (crew); safe to call more than once. */
export function startMedia() {
  if (started) return;
  started = true;
  window.addEventListener("online", () => { failures = 0; kick(); });
  window.addEventListener("qorgau:lang", () => render());
  onAnnouncement((message) => { if (message?.type === "media-changed") changed(); });
  kick();
}
