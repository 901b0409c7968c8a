// The check-in timer (#/checkin): before a risky call the crew member starts a
// timer with the call's address; "I'm safe" closes it. The server's copy is the
// one that counts (the phone may die): it reminds, then alerts the station's
// managers, then the police post (api/checkin). If the phone cannot reach the
// server when the timer starts, this screen says plainly that nobody else
// knows about the timer, keeps the local one, and keeps trying to register it.
//
// The timer on the phone is meta "checkin" in IndexedDB:
//   {id, address, minutes, started_at, ends_at, location, registered, safe_pending,
//    server_state, error}
// js/app.js calls startCheckin(person) for crew and shows #view-checkin.

import { api, ApiError, setCsrfToken } from "./api.js";
import { addressKey } from "./address.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";
import * as store from "./store.js";

const URL = "/api/v1/checkin/timers";
const META_KEY = "checkin";
const RETRY_MS = 5000;
const TICK_MS = 1000;
const REMIND_MS = 2 * 60 * 1000;
const CHOICES = [10, 20, 30];
const LOCATION_WAIT_MS = 3000;

let person = null;
let timer = null;       // the kept timer, or null
let chosen = 10;
let retryTimer = null;
let tickTimer = null;
let started = false;
let busy = false;

const tr = (key, values) => t(currentLanguage(), key, values);
const hhmm = (iso) => localTime(iso).slice(11);
const body = () => document.getElementById("checkin-body");

async function keep(value) {
  timer = value;
  await store.setMeta(META_KEY, value ? { ...value, person_id: person?.id } : null);
}

async function load() {
  const kept = await store.getMeta(META_KEY);
  timer = kept && person && kept.person_id === person.id ? kept : null;
}

// ---------------------------------------------------------------- the server

function position() {
  // Only where the person already allowed location (the tap asks for it):
  // the timer never waits on a permission prompt.
  if (!navigator.geolocation || !navigator.permissions) return Promise.resolve(null);
  return navigator.permissions.query({ name: "geolocation" }).then((status) => {
    if (status.state !== "granted") return null;
    return new Promise((resolve) => {
      navigator.geolocation.getCurrentPosition(
        (pos) => resolve({ lat: pos.coords.latitude, lon: pos.coords.longitude,
          accuracy_m: Math.round(pos.coords.accuracy) }),
        () => resolve(null), { enableHighAccuracy: true, timeout: LOCATION_WAIT_MS,
          maximumAge: 60000 });
    });
  }).catch(() => null);
}

// The session's CSRF token as js/sync.js keeps it on the phone ("csrf"): an app
// reopened offline has not asked /auth/me yet when the network comes back.
async function loadToken() {
  const token = await store.getMeta("csrf");
  if (token) setCsrfToken(token);
}

function refusedBy(err) {
  // A 4xx other than a sign-out, a missing token or a busy server: the server
  // refused this timer; say why and stop retrying it.
  return err instanceof ApiError && err.status >= 400 && err.status < 500
    && ![401, 403, 408, 429].includes(err.status);
}

async function register() {
  if (!timer || timer.registered) return;
  await loadToken();
  try {
    const answer = await api(URL, { method: "POST", body: {
      id: timer.id, address: timer.address, minutes: timer.minutes,
      started_at: timer.started_at, location: timer.location } });
    await keep({ ...timer, registered: true, ends_at: answer.ends_at,
      server_state: answer.state, error: null });
  } catch (err) {
    const refused = refusedBy(err);
    await keep({ ...timer, error: refused ? err.message : null, refused });
  }
  render();
}

async function sendSafe() {
  if (!timer) return;
  if (!timer.registered) { await keep(null); render(); return; }
  await loadToken();
  try {
    await api(`${URL}/${timer.id}/safe`, { method: "POST" });
    await keep(null);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) { await keep(null); render(); return; }
    await keep({ ...timer, safe_pending: true });
  }
  render();
}

async function refreshState() {
  if (!timer || !timer.registered || timer.safe_pending) return;
  try {
    const answer = await api(`${URL}/${timer.id}`);
    if (answer.state === "safe") { await keep(null); render(); return; }
    if (answer.state !== timer.server_state) {
      await keep({ ...timer, server_state: answer.state });
      render();
    }
  } catch { /* offline: what the phone knows stays on screen */ }
}

// Until the server has it (or has heard "I'm safe"), try again every few seconds.
function retryLoop() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(async () => {
    if (timer && !timer.registered && !timer.refused) await register();
    else if (timer && timer.safe_pending) await sendSafe();
    else if (timer) await refreshState();
    if (timer) retryLoop();
  }, RETRY_MS);
}

// ---------------------------------------------------------------- the screen

function remaining(now = Date.now()) {
  return Date.parse(timer.ends_at) - now;
}

function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function statusLine() {
  if (timer.safe_pending) {
    return h("div", { class: "ci-warning", role: "alert", id: "ci-status" },
      h("p", {}, h("strong", {}, tr("ci_safe_not_sent"))),
      h("p", {}, tr("ci_safe_not_sent_hint", { time: hhmm(timer.ends_at) })));
  }
  if (!timer.registered) {
    return h("div", { class: "ci-warning", role: "alert", id: "ci-status" },
      h("p", {}, h("strong", {}, tr("ci_nobody_knows"))),
      h("p", {}, timer.refused ? tr("ci_refused", { error: timer.error || "" })
        : tr("ci_nobody_knows_hint")));
  }
  const key = { overdue: "ci_server_overdue", police: "ci_server_police" }[timer.server_state]
    || "ci_server_has_it";
  return h("p", { class: `ci-status ci-${timer.server_state || "running"}`, role: "status",
    id: "ci-status" }, tr(key, { time: hhmm(timer.ends_at) }));
}

function runningView() {
  const left = remaining();
  return [
    h("p", { class: "ci-address" }, h("span", { class: "muted" }, tr("ci_address"), ": "),
      h("strong", {}, timer.address)),
    h("p", { class: "ci-ends" }, tr("ci_ends_at", { time: hhmm(timer.ends_at) })),
    h("p", { class: `ci-countdown${left <= 0 ? " ci-late" : ""}`, id: "ci-countdown",
      "aria-live": "off" }, left > 0 ? clock(left) : tr("ci_time_up")),
    statusLine(),
    h("button", { type: "button", id: "ci-safe", class: "ci-safe", onclick: () => sendSafe() },
      tr("ci_safe")),
  ];
}

function startView() {
  // What was typed here survives a redraw (a language change); else the address
  // typed in the hazard check on the home screen (js/hazards.js), if any.
  const typed = document.getElementById("ci-address")?.value;
  const hazardAddress = typed ?? (document.getElementById("hz-address")?.value.trim() || "");
  const input = h("input", { id: "ci-address", type: "text", autocomplete: "off",
    maxlength: 200, required: true, "aria-describedby": "ci-address-hint",
    value: hazardAddress });
  const hint = h("p", { id: "ci-address-hint", class: "hint" });
  const showKey = () => {
    const key = addressKey(input.value);
    hint.textContent = input.value.trim() === "" ? tr("ci_address_hint")
      : key ? tr("ci_read_as", { key }) : tr("hz_need_house");
  };
  input.addEventListener("input", showKey);
  showKey();
  const custom = h("input", { id: "ci-custom", type: "number", min: 1, max: 240,
    inputmode: "numeric", value: CHOICES.includes(chosen) ? "" : String(chosen) });
  const choices = h("div", { class: "ci-choices", role: "group",
    "aria-labelledby": "ci-minutes-label" },
  CHOICES.map((m) => h("button", { type: "button", class: "ci-choice",
    "aria-pressed": String(m === chosen),
    onclick: (e) => {
      chosen = m;
      custom.value = "";
      for (const b of choices.querySelectorAll(".ci-choice")) b.setAttribute("aria-pressed", "false");
      e.currentTarget.setAttribute("aria-pressed", "true");
    } }, tr("ci_minutes", { n: m }))));
  custom.addEventListener("input", () => {
    const n = Number.parseInt(custom.value, 10);
    if (n >= 1 && n <= 240) {
      chosen = n;
      for (const b of choices.querySelectorAll(".ci-choice")) b.setAttribute("aria-pressed", "false");
    }
  });
  const error = h("p", { id: "ci-error", class: "ci-error", role: "alert" });
  const form = h("form", { class: "ci-form", novalidate: true },
    h("label", { for: "ci-address" }, tr("ci_address_label")), input, hint,
    h("p", { id: "ci-minutes-label", class: "ci-label" }, tr("ci_how_long")), choices,
    h("label", { for: "ci-custom", class: "ci-custom-label" }, tr("ci_custom")), custom,
    error,
    h("button", { type: "submit", id: "ci-start", class: "ci-start" }, tr("ci_start")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const address = input.value.trim();
    if (address.length < 3) { error.textContent = tr("ci_need_address"); input.focus(); return; }
    startTimer(address, chosen);
  });
  return [h("p", { class: "hint" }, tr("ci_intro")), form];
}

// The home screen's link says when a timer is running (app.js draws its first text).
function renderLink() {
  const link = document.getElementById("checkin-link");
  const text = document.getElementById("checkin-link-text");
  if (!link || !text) return;
  // While a timer runs the link shows its deadline (short: it shares the bar with
  // "Send now"); the full sentence is its accessible name. app.js's static texts
  // leave both alone then.
  if (timer) {
    link.removeAttribute("data-i18n-label");
    text.removeAttribute("data-i18n");
  } else {
    link.setAttribute("data-i18n-label", "ci_open");
    text.setAttribute("data-i18n", "ci_chip");
  }
  const time = timer ? hhmm(timer.ends_at) : null;
  link.setAttribute("aria-label", timer ? tr("ci_running_link", { time }) : tr("ci_open"));
  text.textContent = timer ? time : tr("ci_chip");
  link.classList.toggle("ci-link-running", Boolean(timer));
}

export function render() {
  renderLink();
  const target = body();
  if (!target) return;
  clearTimeout(tickTimer);
  target.replaceChildren(...(timer ? runningView() : startView()));
  if (timer) tick();
}

// The countdown, once a second; at two minutes before the end the phone buzzes
// itself too (the server's reminder is a push; this one needs no network).
function tick() {
  const node = document.getElementById("ci-countdown");
  if (!timer || !node) return;
  const left = remaining();
  node.textContent = left > 0 ? clock(left) : tr("ci_time_up");
  node.classList.toggle("ci-late", left <= 0);
  if (left <= REMIND_MS && !timer.reminded_here) {
    timer.reminded_here = true;
    keep(timer);
    navigator.vibrate?.([300, 200, 300]);
  }
  tickTimer = setTimeout(tick, TICK_MS);
}

async function startTimer(address, minutes) {
  if (busy) return;
  busy = true;
  try {
    const now = new Date();
    await keep({ id: store.uuid(), address, minutes, started_at: now.toISOString(),
      ends_at: new Date(now.getTime() + minutes * 60000).toISOString(),
      location: null, registered: false, server_state: null, error: null });
    render();
    const location = await position();
    if (location) await keep({ ...timer, location });
    await register();
    retryLoop();
  } finally {
    busy = false;
  }
}

function stylesheet() {
  if (document.querySelector('link[href="/css/checkin.css"]')) return;
  document.head.appendChild(h("link", { rel: "stylesheet", href: "/css/checkin.css" }));
}

// ---------------------------------------------------------------- start

export async function startCheckin(me) {
  if (!me || me.role !== "crew") return;
  if (started && person?.id === me.id) return;
  person = me;
  stylesheet();
  await load();
  render();
  if (started) return;
  started = true;
  window.addEventListener("qorgau:lang", render);
  window.addEventListener("online", () => {
    if (timer && !timer.registered) register();
    else if (timer && timer.safe_pending) sendSafe();
  });
  window.addEventListener("qorgau:signed-out", () => {
    keep(null);
    person = null;
    renderLink();
  });
  if (timer) {
    if (!timer.registered && !timer.refused) register();
    retryLoop();
  }
}

export function showCheckin() {
  if (!body()?.firstChild) render();
  refreshState();
}
