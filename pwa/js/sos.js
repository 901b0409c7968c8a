// SOS (issue 16): the crew's hold-to-send control on the home screen, the SOS
// screen that shows each step as it happens, live location while it is open,
// and the stand-down with a PIN (js/sos_pin.js). The SOS itself is an incident
// marked police-needed-now with sos: true, saved in the same outbox as a
// logged one (store.js) and sent by the same sync, so a replay after a lost
// answer is still one incident.
//
//   #/sos/<uuid>   the SOS screen
//
// Why a server-sent event stream for the steps: the officer's acknowledgement
// must reach this screen within a second, while the screen is open; a push
// depends on the person having turned notifications on and on a third-party
// push service's delay, and polling every 0.5 s costs a request each time.
// EventSource reconnects by itself; when it cannot, the screen asks
// /status every few seconds instead.
//
// js/app.js calls startSos(person, hooks) for crew members. Everything is
// drawn with DOM APIs (no innerHTML, no inline style: the fill is CSSOM).

import { api, ApiError } from "./api.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";
import { checkPin, deriveKey, newSalt, PIN_PATTERN, verifierOf } from "./sos_pin.js";
import * as store from "./store.js";

export const HOLD_MS = 1500;
// How often a fix is sent while the SOS is open (a test may shorten it before the hold).
export const timing = { fixEveryMs: 10000 };
const BASE = "/api/v1/sos";
const PINS_KEY = "sos_pins";
const STAND_DOWN_KEY = "sos_stand_down";
const RECEIVE_WAIT_MS = 4000; // not received by then (and no answer): say "not sent" loudly

let person = null;
let hooks = {};
let started = false;
let view = null;          // the SOS screen's section
let pinBox = null;        // "SOS PINs" on the account screen
const tr = (key, values) => t(currentLanguage(), key, values);

// The SOS on screen: {id, record, status, fix, fixState, streamOk, cancelled, ...}
let current = null;

// ---------------------------------------------------------------- the hold control

// The control is in index.html (drawn with the first paint); this binds it.
function bindHold(button) {
  const fill = button.querySelector(".sos-fill");
  let started = 0;
  let timer = null;
  let frame = null;
  const paint = () => {
    const p = started ? Math.min(1, (performance.now() - started) / HOLD_MS) : 0;
    fill.style.transform = `scaleX(${p})`;
    if (started) frame = requestAnimationFrame(paint);
  };
  const begin = () => {
    if (started) return;
    started = performance.now();
    button.classList.add("holding");
    timer = setTimeout(() => { reset(); fire(); }, HOLD_MS);
    paint();
  };
  const reset = () => {
    started = 0;
    clearTimeout(timer);
    cancelAnimationFrame(frame);
    button.classList.remove("holding");
    fill.style.transform = "scaleX(0)";
  };
  button.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    try { button.setPointerCapture(event.pointerId); } catch { /* synthetic pointer */ }
    begin();
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    button.addEventListener(name, reset);
  }
  // A long press on a phone would open the context menu or select text.
  button.addEventListener("contextmenu", (event) => event.preventDefault());
  button.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) {
      event.preventDefault();
      begin();
    }
  });
  button.addEventListener("keyup", reset);
  button.addEventListener("blur", reset);
}

let firing = false;

async function fire() {
  if (firing) return;
  firing = true;
  try {
    const id = store.uuid();
    const position = person?.role === "crew" ? person.position : null;
    await store.createIncident({ sos: true, police_needed: true,
      victim_role: position || null }, id);
    if (navigator.vibrate) navigator.vibrate([300, 100, 300]);
    location.hash = `#/sos/${id}`;
    hooks.requestFlush?.();
  } catch (err) {
    console.warn("SOS not saved:", err);
    const sub = document.querySelector("#sos-hold .sos-sub");
    if (sub) sub.textContent = tr("sos_save_failed");
  } finally {
    firing = false;
  }
}

// ---------------------------------------------------------------- the SOS screen

function routeId() {
  const m = location.hash.match(/^#\/sos\/([0-9a-f-]{36})$/i);
  return m ? m[1].toLowerCase() : null;
}

function stepItem(name, done, text) {
  return h("li", { class: `sos-step${done ? " done" : ""}`, "data-step": name,
    "data-done": done ? "1" : "0" }, h("span", { class: "sos-mark", "aria-hidden": "true" },
    done ? "✓" : "…"), " ", text);
}

function steps() {
  const { record, status } = current;
  const server = record?.server || {};
  const received = Boolean(server.case_number || status);
  const post = status?.post || null;
  const taken = status?.taken || null;
  const way = status?.on_the_way || null;
  return h("ol", { class: "sos-steps", id: "sos-steps" },
    stepItem("saved", Boolean(record),
      tr("sos_step_saved", { time: localTime(record?.saved_at, true) })),
    stepItem("received", received, received
      ? tr("sos_step_received", { case: server.case_number || status?.case_number || "" })
      : tr("sos_step_received_wait")),
    stepItem("delivered", Boolean(status?.delivered_at), status?.delivered_at
      ? tr("sos_step_delivered", { post: post || "—", time: localTime(status.delivered_at, true) })
      : post ? tr("sos_step_delivered_wait", { post }) : tr("sos_step_post_wait")),
    stepItem("taken", Boolean(taken), taken
      ? tr("sos_step_taken", { officer: taken.officer || "—", post: taken.post || "—" })
      : tr("sos_step_taken_wait")),
    stepItem("on_the_way", Boolean(way), way
      ? (way.eta_minutes ? tr("sos_step_way_eta", { officer: way.officer || "—",
        eta: way.eta_minutes }) : tr("sos_step_way", { officer: way.officer || "—" }))
      : tr("sos_step_way_wait")));
}

function locationLine() {
  const c = current;
  if (c.fixState === "denied") return tr("sos_loc_denied");
  if (c.fixState === "unavailable") return tr("sos_loc_unavailable");
  if (!c.sentFix) return tr("sos_loc_wait");
  return tr("sos_loc_sent", { time: localTime(c.sentFix.at, true),
    m: Math.round(c.sentFix.accuracy_m) });
}

function offlineText() {
  const c = current;
  const received = Boolean(c.record?.server?.case_number || c.status);
  if (!received && !navigator.onLine) return tr("sos_offline_not_sent");
  // Online, yet no answer: the server unreachable, failing, or the sign-in ran out.
  if (!received && Date.now() - c.openedAt > RECEIVE_WAIT_MS) return tr("sos_not_received");
  if (received && (!navigator.onLine || c.streamDown)) return tr("sos_offline_lost");
  return "";
}

function render() {
  if (!view) return;
  const id = routeId();
  view.hidden = !id;
  document.body.classList.toggle("sos-active", Boolean(id));
  if (!id || !current || current.id !== id) return;
  const c = current;
  if (!c.record) {
    view.dataset.id = "";
    view.replaceChildren(h("h2", { class: "view-title", tabindex: "-1" }, tr("sos_not_found")),
      h("p", {}, h("a", { class: "nav-link", href: "#/" }, tr("back_to_button"))));
    return;
  }
  if (c.cancelled) {
    view.dataset.id = "";
    view.replaceChildren(
      h("h2", { class: "view-title sos-title-done", id: "sos-title", tabindex: "-1" },
        tr("sos_cancelled")),
      h("p", { id: "sos-cancelled-note" }, tr("sos_cancelled_note")),
      h("p", {}, h("a", { class: "nav-link", href: "#/" }, tr("back_to_button"))));
    return;
  }
  const offline = offlineText();
  // Built once per SOS; later renders change the parts in place, so the PIN
  // being typed is never thrown away.
  if (view.dataset.id !== id || !view.querySelector("#sos-steps")) {
    view.dataset.id = id;
    view.replaceChildren(
      h("h2", { class: "view-title sos-title", id: "sos-title", tabindex: "-1" }),
      h("p", { id: "sos-offline", class: "sos-offline", role: "alert", hidden: true }),
      // "Send by SMS" (js/sms.js) when the server has not had it for a while.
      h("section", { class: "sms-offer", "data-sms-offer": "", "aria-live": "polite",
        hidden: true }),
      steps(),
      h("p", { id: "sos-location", class: "sos-location" }),
      h("p", { class: "muted sos-keep", id: "sos-keep" }),
      pinForm());
  }
  view.querySelector("#sos-title").textContent = tr("sos_title");
  const banner = view.querySelector("#sos-offline");
  banner.hidden = !offline;
  banner.textContent = offline;
  view.querySelector("#sos-steps").replaceWith(steps());
  view.querySelector("#sos-location").textContent = locationLine();
  view.querySelector("#sos-keep").textContent = tr("sos_keep_open");
  const error = view.querySelector("#sos-pin-error");
  if (error) {
    error.hidden = !c.pinError;
    error.textContent = c.pinError ? tr(c.pinError) : "";
  }
  if (!c.kept !== Boolean(view.querySelector("#sos-no-pin"))) {
    view.querySelector("#sos-no-pin, #sos-stand-down").replaceWith(pinForm());
  }
  for (const node of view.querySelectorAll("[data-i18n-sos]")) {
    node.textContent = tr(node.dataset.i18nSos);
  }
}

function pinForm() {
  const c = current;
  if (!c.kept) {
    return h("p", { id: "sos-no-pin", class: "sos-no-pin", "data-i18n-sos": "sos_no_pin" },
      tr("sos_no_pin"));
  }
  const input = h("input", { id: "sos-pin", name: "pin", type: "password", inputmode: "numeric",
    autocomplete: "off", maxlength: 8, "aria-describedby": "sos-pin-error" });
  const error = h("p", { id: "sos-pin-error", class: "sos-pin-error", role: "alert",
    hidden: !c.pinError }, c.pinError ? tr(c.pinError) : "");
  const form = h("form", { id: "sos-stand-down", class: "sos-stand-down", novalidate: true },
    h("label", { for: "sos-pin", "data-i18n-sos": "sos_pin_label" }, tr("sos_pin_label")),
    input, error,
    h("button", { type: "submit", class: "sos-cancel", id: "sos-cancel",
      "data-i18n-sos": "sos_cancel" }, tr("sos_cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = await checkPin(input.value, c.kept);
    if (!key) {
      c.pinError = "sos_pin_wrong";
      render();
      document.getElementById("sos-pin")?.focus();
      return;
    }
    await store.setMeta(STAND_DOWN_KEY, { id: c.id, key });
    c.cancelled = true; // either PIN looks the same here
    // Kept with the record (local bookkeeping, never sent): a reload shows it cancelled.
    await store.updateIncident(c.id, (record) => { record.sos_cancelled = true; });
    c.pinError = null;
    stopStream();
    releaseWakeLock();
    render();
    sendStandDown();
  });
  return form;
}

// ---------------------------------------------------------------- live status (SSE)

function openStream() {
  const c = current;
  if (!c || c.stream || c.cancelled || typeof EventSource !== "function") return;
  const source = new EventSource(`${BASE}/${c.id}/stream`);
  c.stream = source;
  source.addEventListener("sos", (event) => {
    if (current !== c) return;
    try { c.status = JSON.parse(event.data); } catch { return; }
    c.streamDown = false;
    if (c.status.status === "cancelled" && !c.cancelled) c.cancelled = true;
    render();
  });
  source.addEventListener("open", () => { c.streamDown = false; });
  // The server ends each stream after a while and says so: the next one at once.
  source.addEventListener("end", () => {
    source.close();
    if (c.stream === source) c.stream = null;
    if (current === c) openStream();
  });
  // The server serves a few streams at once; over that it sends the status and
  // "busy": look again after retry_after seconds (the screen stays up to date).
  source.addEventListener("busy", (event) => {
    source.close();
    if (c.stream === source) c.stream = null;
    let wait = 2;
    try { wait = Number(JSON.parse(event.data).retry_after) || 2; } catch { /* 2 s */ }
    setTimeout(() => { if (current === c && !c.stream) openStream(); }, wait * 1000);
  });
  source.addEventListener("error", () => {
    c.streamDown = true;
    render();
    if (source.readyState === EventSource.CLOSED) { c.stream = null; pollStatus(); }
  });
}

function stopStream() {
  if (current?.stream) { current.stream.close(); current.stream = null; }
}

async function pollStatus() {
  const c = current;
  if (!c || c.cancelled) return;
  try {
    c.status = await api(`${BASE}/${c.id}/status`);
    c.streamDown = false;
    openStream();
  } catch {
    c.streamDown = true;
    setTimeout(() => { if (current === c && !c.stream) pollStatus(); }, 3000);
  }
  render();
}

// ---------------------------------------------------------------- location and wake lock

function watchLocation() {
  const c = current;
  if (c.watch !== undefined || !("geolocation" in navigator)) {
    if (!("geolocation" in navigator)) c.fixState = "unavailable";
    return;
  }
  c.watch = navigator.geolocation.watchPosition((pos) => {
    c.position = pos;
    c.fixState = "ok";
    if (!c.sentFix) sendFix(c);
  }, (err) => {
    c.fixState = err && err.code === 1 ? "denied" : "unavailable";
    render();
  }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  c.fixTimer = setInterval(() => sendFix(c), timing.fixEveryMs);
}

function stopLocation(c) {
  if (c.watch !== undefined && c.watch !== null) navigator.geolocation.clearWatch(c.watch);
  c.watch = null;
  clearInterval(c.fixTimer);
}

async function sendFix(c) {
  // Only while the page is on screen, and once the server has the SOS.
  if (document.visibilityState !== "visible" || !c.position || c.sending) return;
  if (!(c.record?.server?.case_number || c.status)) return;
  const { latitude, longitude, accuracy } = c.position.coords;
  const fix = { lat: latitude, lon: longitude, accuracy_m: Math.round(accuracy * 10) / 10,
    fixed_at: store.localIso(new Date(c.position.timestamp)) };
  c.sending = true;
  try {
    const answer = await api(`${BASE}/${c.id}/fixes`, { method: "POST", body: fix });
    c.sentFix = { at: new Date().toISOString(), accuracy_m: fix.accuracy_m };
    if (answer && answer.track === false) stopLocation(c);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) stopLocation(c);
  } finally {
    c.sending = false;
  }
  if (current === c && !c.cancelled) render();
}

let wakeLock = null;

async function keepScreenOn() {
  if (!current || current.cancelled || !("wakeLock" in navigator)) return;
  if (wakeLock || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch { /* refused (battery saver): the screen may sleep */ }
}

function releaseWakeLock() {
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
}

// ---------------------------------------------------------------- stand-down

async function sendStandDown() {
  const pending = await store.getMeta(STAND_DOWN_KEY);
  if (!pending) return;
  try {
    await api(`${BASE}/${pending.id}/stand-down`, { method: "POST", body: { key: pending.key } });
    await store.setMeta(STAND_DOWN_KEY, null);
  } catch (err) {
    if (err instanceof ApiError && err.status !== 429 && err.status < 500) {
      // Refused for good (a PIN changed elsewhere, or the SOS is not known yet: kept).
      if (err.status !== 404) await store.setMeta(STAND_DOWN_KEY, null);
      if (err.status === 404) setTimeout(sendStandDown, 3000);
      return;
    }
    setTimeout(sendStandDown, 5000); // offline or the server failing: keep trying
  }
}

// ---------------------------------------------------------------- entering the screen

async function enter(id) {
  if (current && current.id !== id) leave();
  if (!current) {
    current = { id, record: null, status: null, openedAt: Date.now(), kept: null,
      cancelled: false, streamDown: false };
  }
  const c = current;
  c.record = await store.getIncident(id);
  c.kept = await store.getMeta(PINS_KEY);
  if (c.record?.sos_cancelled) c.cancelled = true;
  render();
  window.scrollTo(0, 0);
  document.getElementById("sos-title")?.focus({ preventScroll: true });
  if (!c.record || c.cancelled) return;
  keepScreenOn();
  watchLocation();
  tick();
}

// Until the server has it: read the record the outbox updates; then the stream.
async function tick() {
  const c = current;
  if (!c || c.cancelled) return;
  c.record = await store.getIncident(c.id);
  if (c.record?.server?.case_number || c.status) {
    openStream();
    if (c.position && !c.sentFix) sendFix(c);
  } else {
    setTimeout(() => { if (current === c) tick(); }, 500);
  }
  render();
}

function leave() {
  if (!current) return;
  stopStream();
  // A cancelled SOS keeps sending fixes while the server asks for them (duress).
  if (!current.cancelled) stopLocation(current);
  releaseWakeLock();
  current = null;
}

function onHash() {
  const id = routeId();
  if (id) enter(id);
  else { leave(); render(); }
  showOpenSos();
}

// Back on the home screen with an SOS still open (not cancelled, within the
// urgent half hour): a link back to it under the control.
async function showOpenSos() {
  const zone = document.getElementById("sos-zone");
  if (!zone || routeId()) return;
  const open = (await store.listIncidents()).find((r) => r.sos && !r.sos_cancelled
    && Date.now() - Date.parse(r.tapped_at) < 30 * 60 * 1000);
  let link = document.getElementById("sos-open-link");
  if (!open) { link?.remove(); return; }
  if (!link) {
    link = h("a", { id: "sos-open-link", class: "nav-link sos-open-link" });
    zone.appendChild(link);
  }
  link.href = `#/sos/${open.id}`;
  link.textContent = tr("sos_open_link");
}

// ---------------------------------------------------------------- PINs on the account screen

function pinSettings() {
  const pin = h("input", { id: "sos-pin-new", type: "password", inputmode: "numeric",
    autocomplete: "off", maxlength: 8 });
  const duress = h("input", { id: "sos-duress-new", type: "password", inputmode: "numeric",
    autocomplete: "off", maxlength: 8 });
  const message = h("p", { id: "sos-pins-message", role: "status" });
  const save = h("button", { type: "submit", id: "sos-pins-save" });
  const form = h("form", { id: "sos-pins-form", class: "sos-pins-form", novalidate: true },
    h("label", { for: "sos-pin-new", id: "sos-pin-new-label" }), pin,
    h("label", { for: "sos-duress-new", id: "sos-duress-new-label" }), duress,
    message, save);
  const box = h("section", { id: "sos-pins", class: "sos-pins", "aria-labelledby": "sos-pins-title" },
    h("h3", { id: "sos-pins-title" }), h("p", { id: "sos-pins-hint", class: "hint" }),
    h("p", { id: "sos-pins-state", class: "muted" }), form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.className = "sos-pins-error";
    if (!PIN_PATTERN.test(pin.value) || !PIN_PATTERN.test(duress.value)) {
      message.textContent = tr("sos_pins_format");
      return;
    }
    if (pin.value === duress.value) {
      message.textContent = tr("sos_pins_differ");
      return;
    }
    save.disabled = true;
    try {
      const salt = newSalt();
      const [pinKey, duressKey] = await Promise.all([deriveKey(pin.value, salt),
        deriveKey(duress.value, salt)]);
      const body = await api(`${BASE}/pins`, { method: "PUT",
        body: { salt, pin_key: pinKey, duress_key: duressKey } });
      const verifiers = [await verifierOf(pinKey), await verifierOf(duressKey)].sort();
      await store.setMeta(PINS_KEY, { salt: body.salt || salt, verifiers });
      pin.value = "";
      duress.value = "";
      message.className = "sos-pins-ok";
      message.textContent = tr("sos_pins_saved");
      renderPins();
    } catch (err) {
      message.textContent = err instanceof TypeError ? tr("sos_pins_offline")
        : String(err && err.message ? err.message : err);
    } finally {
      save.disabled = false;
    }
  });
  return box;
}

async function renderPins() {
  if (!pinBox) return;
  const kept = await store.getMeta(PINS_KEY);
  pinBox.querySelector("#sos-pins-title").textContent = tr("sos_pins_title");
  pinBox.querySelector("#sos-pins-hint").textContent = tr("sos_pins_hint");
  pinBox.querySelector("#sos-pins-state").textContent =
    tr(kept ? "sos_pins_set" : "sos_pins_unset");
  pinBox.querySelector("#sos-pin-new-label").textContent = tr("sos_pin_new");
  pinBox.querySelector("#sos-duress-new-label").textContent = tr("sos_duress_new");
  pinBox.querySelector("#sos-pins-save").textContent = tr("sos_pins_save");
}

async function refreshPins() {
  try {
    const body = await api(`${BASE}/pins`);
    await store.setMeta(PINS_KEY, body.set ? { salt: body.salt, verifiers: body.verifiers }
      : null);
    renderPins();
  } catch { /* offline: what the phone kept stays */ }
}

// ---------------------------------------------------------------- start

function renderStatic() {
  renderPins();
  showOpenSos();
  render();
}

export function startSos(me, appHooks = {}) {
  person = me;
  hooks = appHooks;
  if (me && me.role !== "crew") return; // the SOS is the crew's (signed out: kept like a tap)
  if (me && !pinBox) {
    const account = document.getElementById("view-account");
    if (account) {
      pinBox = pinSettings();
      account.insertBefore(pinBox, account.lastElementChild);
    }
  }
  if (started) { if (me) refreshPins(); renderPins(); return; }
  started = true;
  const button = document.getElementById("sos-hold");
  if (button) bindHold(button);
  view = h("section", { id: "view-sos", class: "view view-sos", hidden: true,
    "aria-live": "polite" });
  document.getElementById("main")?.appendChild(view);
  window.addEventListener("hashchange", onHash);
  window.addEventListener("qorgau:lang", renderStatic);
  window.addEventListener("online", () => { render(); sendStandDown(); });
  window.addEventListener("offline", render);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !current) return;
    keepScreenOn();
    sendFix(current);
  });
  setInterval(() => { if (current && !current.cancelled) render(); }, 2000);
  renderStatic();
  if (me) refreshPins();
  sendStandDown();
  onHash();
}
