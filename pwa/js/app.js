// The crew member's app: one tap logs an incident on the phone at once; the
// outbox then syncs by itself. Plain ES modules, no framework.
//
//   #/                  home: the big "Log incident" button
//   #/incidents         My incidents
//   #/incidents/<uuid>  one incident: details, classification, history
//   #/account, #/enrol/<token>   sign-in, enrolment and devices (js/auth.js),
//                       and "Turn on notifications" (js/push.js)
//   #/review...         station managers (js/console.js); #/police... officers (js/police.js)

import { retryDelay } from "./backoff.js";
import { announceLanguage, chooseLanguage, setLanguage, t } from "./i18n.js";
import * as store from "./store.js";
import {
  fetchIncident, fetchMe, flush, onAnnouncement, refreshFromServer, rememberToken, SYNC_TAG,
} from "./sync.js";
import { urgentWaiting } from "./outbox.js";
import { formatTime, renderIncident, renderList } from "./ui.js";
import { APP_VERSION } from "./version.js";

const $ = (id) => document.getElementById(id);

const state = {
  lang: chooseLanguage(),
  rules: null,          // the Article 380-3 rules document (cached in IndexedDB)
  me: null,             // the signed-in person (cached in IndexedDB)
  posts: null,          // police posts at hospitals, when the server offers them
  health: "",
  route: { name: "home" },
  lastSaved: null,      // the record the last tap saved (for the confirmation)
  saveError: null,
  syncMessage: null,    // {key, values}
  signinNeeded: false,
  unsynced: null,
  location: new Map(),  // incident id → "waiting" | "failed"
  waitingWorker: null,  // a new service worker ready to take over
  incidentView: null,   // {id, refresh} of the incident on screen
  serverEvents: new Map(),
};

// ---------------------------------------------------------------- rendering

function renderStatic() {
  const { lang } = state;
  document.documentElement.lang = lang;
  announceLanguage(lang);
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(lang, node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(lang, node.dataset.i18nLabel));
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  $("health").textContent = state.health ? t(lang, state.health) : "…";
  $("app-version").textContent = APP_VERSION;
  renderChrome();
}

function renderChrome() {
  const { lang } = state;
  const count = $("unsynced");
  if (state.unsynced !== null) {
    count.textContent = t(lang, "unsynced", { n: state.unsynced });
    count.dataset.count = String(state.unsynced);
    count.classList.toggle("has-unsynced", state.unsynced > 0);
  }
  // Only a server's answer (401) asks for a sign-in; the prompt takes the place
  // of "Sync now" in the same bar, so nothing below it moves.
  const msg = state.signinNeeded ? { key: "signin_needed" } : state.syncMessage;
  $("sync-message").textContent = msg ? t(lang, msg.key, msg.values) : "";
  $("sign-in").hidden = !state.signinNeeded;
  $("sync-now").hidden = state.signinNeeded;
  $("health").textContent = state.health ? t(lang, state.health) : "…";
  $("update-banner").hidden = !state.waitingWorker;

  const saved = $("saved");
  if (state.saveError) {
    saved.hidden = false;
    saved.className = "saved failed";
    saved.textContent = t(lang, "save_failed", { error: state.saveError });
  } else if (state.lastSaved) {
    saved.hidden = false;
    saved.className = "saved";
    saved.textContent = t(lang, "saved_on_phone_at",
      { time: formatTime(state.lastSaved.saved_at, lang) });
  } else {
    saved.hidden = true;
  }
}

async function refreshCount() {
  state.unsynced = await store.countUnsynced();
  renderChrome();
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const m = hash.match(/^\/incidents\/([0-9a-f-]{36})$/i);
  if (m) return { name: "incident", id: m[1].toLowerCase() };
  if (/^\/sos\/[0-9a-f-]{36}$/i.test(hash)) return { name: "sos" }; // js/sos.js draws it
  if (hash === "/incidents") return { name: "incidents" };
  if (hash === "/checkin") return { name: "checkin" };
  if (hash === "/account" || hash.startsWith("/enrol/")) return { name: "account" };
  return { name: "home" };
}

const VIEWS = { home: "view-home", incidents: "view-incidents", incident: "view-incident",
  account: "view-account", checkin: "view-checkin" };

async function renderRoute({ full = true } = {}) {
  const route = state.route;
  for (const [name, id] of Object.entries(VIEWS)) $(id).hidden = route.name !== name;
  for (const tab of document.querySelectorAll(".crew-tab")) {
    const target = tab.getAttribute("href").replace(/^#/, "") || "/";
    const here = { "/": "home", "/incidents": "incidents", "/account": "account" }[target];
    if (here === route.name || (here === "incidents" && route.name === "incident")) {
      tab.setAttribute("aria-current", "page");
    } else {
      tab.removeAttribute("aria-current");
    }
  }
  if (route.name === "incidents") {
    renderList($("incident-list"), $("no-incidents"), await store.listIncidents(), state);
  }
  renderMedia(route);
  if (route.name === "incident") {
    const record = await store.getIncident(route.id);
    if (full || !state.incidentView || state.incidentView.id !== route.id) {
      const view = renderIncident($("incident-body"), record, { ...state, save: saveDetails });
      state.incidentView = { id: route.id, refresh: view.refresh };
    }
    if (record) {
      state.incidentView.refresh(record, {
        revisions: await store.getRevisions(route.id),
        serverEvents: state.serverEvents.get(route.id),
        locationState: state.location.get(route.id),
      });
    }
  } else {
    state.incidentView = null;
  }
}

// ---------------------------------------------------------------- the tap

let tapping = false;

async function logIncident() {
  if (tapping) return; // a second tap while the first is saving is the same tap (gloves)
  tapping = true;
  state.saveError = null;
  const id = store.uuid();
  const position = state.me?.role === "crew" ? state.me.position : null;
  const saved = store.createIncident({ victim_role: position || null }, id);
  // Location is asked for at the same moment; the save never waits for it.
  askLocation(id, saved);
  try {
    const record = await saved;
    state.lastSaved = record;
    renderChrome();
    if (navigator.vibrate) navigator.vibrate(200);
    await refreshCount();
    location.hash = `#/incidents/${id}`;
    requestFlush();
  } catch (err) {
    state.saveError = err && err.name ? err.name : String(err);
    renderChrome();
  } finally {
    tapping = false;
  }
}

function askLocation(id, saved) {
  if (!("geolocation" in navigator)) {
    state.location.set(id, "failed");
    return;
  }
  state.location.set(id, "waiting");
  navigator.geolocation.getCurrentPosition(async (pos) => {
    const { latitude, longitude, accuracy } = pos.coords;
    const location = {
      lat: latitude, lon: longitude,
      accuracy_m: Math.round(accuracy * 10) / 10,
      fixed_at: store.localIso(new Date(pos.timestamp)),
      // The API does not say which sensor answered; a tight fix is satellite.
      source: accuracy <= 100 ? "gps" : "network",
    };
    try {
      await saved;
      await store.reviseIncident(id, { location }, "location");
      state.location.delete(id);
      await afterLocalChange();
    } catch { /* the record stays without a location */ }
  }, () => {
    state.location.set(id, "failed");
    if (state.route.name === "incident" && state.route.id === id) renderRoute({ full: false });
  }, { enableHighAccuracy: true, timeout: 60000, maximumAge: 30000 });
}

let detailFlushTimer = null;

async function saveDetails(changes) {
  const id = state.route.id;
  try {
    await store.reviseIncident(id, changes, "edit");
  } catch (err) {
    state.saveError = err && err.name ? err.name : String(err);
    renderChrome();
    return;
  }
  await afterLocalChange();
  // Several quick edits go out in one request.
  clearTimeout(detailFlushTimer);
  detailFlushTimer = setTimeout(requestFlush, 1500);
}

async function afterLocalChange() {
  await refreshCount();
  await renderRoute({ full: false });
  registerBackgroundSync();
}

// ---------------------------------------------------------------- sync

// The retry timer's state. Exported so that a test can stand in for a long
// outage (a high failure count, the worst jitter) without waiting through it.
export const retry = {
  failures: 0,
  serverWait: 0,       // ms the server asked for with Retry-After, honoured once
  urgent: false,       // an urgent record is waiting (outbox.js: urgentWaiting)
  random: Math.random,
  delay: null,         // the delay last scheduled (ms)
};
let timer = null;

function nextDelay() {
  const asked = retry.serverWait;
  retry.serverWait = 0;
  retry.delay = retryDelay(retry.failures, asked, retry.random, retry.urgent);
  return retry.delay;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (document.visibilityState === "visible") requestFlush();
    else schedule();
  }, nextDelay());
}

async function requestFlush({ manual = false } = {}) {
  if (manual) { state.syncMessage = { key: "syncing" }; renderChrome(); }
  let result;
  try {
    result = await flush();
  } catch (err) {
    console.warn("outbox flush failed:", err);
    result = { state: "error", status: err && err.name ? err.name : "?" };
  }
  // Asked before the state changes, so that the failure count, the urgency and
  // the delay they make change together: nothing sees a count without its delay.
  const urgent = worthHurrying(result) && await urgentWaiting().catch(() => false);
  handleResult(result, manual);
  retry.urgent = urgent;
  schedule();
  return result;
}

// Whether trying again within seconds can help an urgent record: with no
// answer, or the server failing or busy. A sign-in that ran out, or a request
// the server refuses as such, waits like any other.
function worthHurrying(result) {
  if (result.state === "error") {
    return typeof result.status !== "number" || result.status >= 500 || result.status === 429;
  }
  return result.state !== "signin";
}

function handleResult(result, manual) {
  switch (result.state) {
    case "synced":
      retry.failures = 0;
      state.signinNeeded = false;
      state.syncMessage = result.setAsideNow
        ? { key: "sync_set_aside", values: { n: result.setAsideNow } }
        : result.rejected
          ? { key: "sync_rejected", values: { n: result.rejected } }
          : { key: "sync_done" };
      state.health = "ok"; // the server has just answered
      // The list is fetched only for the screen that shows it (the sync's own
      // answer already carries each record's case number and routing).
      refreshScreen();
      break;
    case "idle":
      retry.failures = 0;
      if (manual) state.syncMessage = null;
      break;
    case "signin":
      retry.failures += 1;
      state.signinNeeded = true;
      state.syncMessage = null;
      break;
    case "offline":
      retry.failures += 1;
      state.health = "down";
      state.syncMessage = { key: "sync_offline" };
      registerBackgroundSync();
      break;
    default:
      retry.failures += 1;
      retry.serverWait = (result.retryAfter || 0) * 1000;
      state.syncMessage = { key: "sync_error", values: { status: result.status } };
      registerBackgroundSync();
  }
  refreshCount();
  renderRoute({ full: false });
}

// Background Sync (Chromium): the browser wakes the service worker to flush
// when the connection returns, even after the app is closed.
async function registerBackgroundSync() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    if (reg && reg.sync) await reg.sync.register(SYNC_TAG);
  } catch { /* not offered, or refused: the page's own triggers remain */ }
}

// ---------------------------------------------------------------- data the app keeps offline

async function loadCached() {
  const [rules, me, posts] = await Promise.all(
    [store.getMeta("rules"), store.getMeta("me"), store.getMeta("posts")]);
  state.rules = rules ? rules.body : null;
  state.me = me || null;
  state.posts = posts || null;
}

async function refreshRules() {
  const cached = await store.getMeta("rules");
  const headers = cached?.etag ? { "If-None-Match": cached.etag } : {};
  const res = await fetch("/api/v1/law/rules", { headers, cache: "no-store" });
  if (res.status === 304 || !res.ok) return;
  const body = await res.json();
  await store.setMeta("rules", { etag: res.headers.get("ETag"), body });
  state.rules = body;
}

async function refreshPosts() {
  const res = await fetch("/api/v1/posts", { credentials: "same-origin", cache: "no-store",
    headers: { Accept: "application/json" } });
  if (res.status === 404) { await store.setMeta("posts", null); state.posts = null; return; }
  if (!res.ok) return;
  const body = await res.json();
  const posts = Array.isArray(body) ? body : body.items || body.posts || [];
  await store.setMeta("posts", posts);
  state.posts = posts;
}

// Only the server's answer changes who is signed in: a 401 signs out (and
// forgets the person kept on the phone); no network keeps the last known person.
// The language stays the device's (or the one picked on this device), not the
// profile's: a shared or personal phone speaks what its owner set it to.
async function refreshMe() {
  let body;
  try {
    body = await fetchMe();
  } catch (err) {
    if (!state.me) state.me = (await store.getMeta("me")) || null;
    throw err;
  }
  state.me = body ? body.person : null;
  state.signinNeeded = !body;
  if (!body) await store.setMeta("me", null);
}

async function refreshHealth() {
  try {
    const res = await fetch("/api/health", { cache: "no-store" });
    state.health = res.ok ? "ok" : "down";
  } catch {
    state.health = "down";
  }
}

// ---------------------------------------------------------------- updates of the app itself

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  const reg = await navigator.serviceWorker.register("/sw.js",
    { type: "module", scope: "/", updateViaCache: "none" });
  const offer = (worker) => {
    // Only an update is offered; the first install just starts caching.
    if (worker && navigator.serviceWorker.controller) {
      state.waitingWorker = worker;
      renderChrome();
    }
  };
  offer(reg.waiting);
  reg.addEventListener("updatefound", () => {
    const worker = reg.installing;
    worker?.addEventListener("statechange", () => {
      if (worker.state === "installed") offer(worker);
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // Only reload when this page asked for the new version.
    if (state.updateAccepted && !reloading) { reloading = true; location.reload(); }
  });
  return reg;
}

async function acceptUpdate() {
  const worker = state.waitingWorker;
  if (!worker) return;
  const button = $("update-now");
  button.disabled = true;
  button.textContent = t(state.lang, "update_waiting_write");
  // Commit a note being typed, then let every write finish: the new code
  // never takes over in the middle of a save.
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  clearTimeout(detailFlushTimer);
  await store.idle();
  state.updateAccepted = true;
  worker.postMessage({ type: "SKIP_WAITING" });
}

// ---------------------------------------------------------------- sign-in

function startSignIn() {
  // Sign-in and enrolment are drawn by js/auth.js in the account view.
  location.hash = "#/account";
}

// js/auth.js announces every change of session with "qorgau:auth" (the /me
// body, or null when signed out). A new session lets the outbox carry on.
async function onAuth(event) {
  const body = event.detail;
  // The outbox sends with this session's token. (A null here may only mean
  // "offline at start": the token is forgotten on the server's 401 instead.)
  if (body && body.csrf_token) await rememberToken(body.csrf_token);
  if (body && body.person) {
    state.me = body.person;
    state.signinNeeded = false;
    await store.setMeta("me", body.person);
    renderStatic();
    loadConsole();
    loadPolice();
    loadPush();
    loadHazards();
    loadSos();
    retry.failures = 0;
    requestFlush();
  } else {
    // auth.js announces null only after the server said 401 (or on sign-out).
    state.me = null;
    state.signinNeeded = true;
    await store.setMeta("me", null);
    renderChrome();
  }
  renderPushPanel(Boolean(body && body.person));
}

// Right after a sign-in an officer lands on the alerts and a manager on the
// console's list. A crew member stays to read "passkey created"; the big
// button is one tap away in the crew's navigation.
function onSignedIn(event) {
  const role = event.detail?.person?.role;
  const home = { police: "#/police", manager: "#/review" }[role];
  if (home && location.hash !== home) location.hash = home;
}

// The account module is loaded apart from the rest, so that nothing in it can
// ever keep the "Log incident" button from working.
async function loadAuth() {
  try {
    await import("./auth.js");
  } catch (err) {
    console.warn("auth module unavailable:", err);
  }
}

// Station managers get their desk screens (js/console.js, #/review...).
function loadConsole() {
  if (state.me?.role !== "manager") return;
  import("./console.js").then((m) => m.startConsole())
    .catch((err) => console.warn("console unavailable:", err));
}

// Police officers get their post's screens (js/police.js, #/police...).
function loadPolice() {
  if (state.me?.role !== "police") return;
  import("./police.js").then((m) => m.startPolice())
    .catch((err) => console.warn("police screens unavailable:", err));
}

// Hazard flags (js/hazards.js): the region's flags kept on the phone, and the
// "Address of the call" check on the home screen (crew); the post's list (police).
function loadHazards() {
  if (!["crew", "police"].includes(state.me?.role)) return;
  import("./hazards.js").then((m) => m.startHazards(state.me))
    .catch((err) => console.warn("hazard flags unavailable:", err));
}

// SOS (js/sos.js): the hold-to-send control on the crew's home screen, the SOS
// screen (#/sos/<uuid>) and the SOS PINs on the account screen. It saves the
// SOS in this outbox and asks for a flush (urgent: retried every few seconds).
function loadSos() {
  if (state.me && state.me.role !== "crew") return;
  import("./sos.js").then((m) => m.startSos(state.me, { requestFlush }))
    .catch((err) => console.warn("SOS unavailable:", err));
}

// The check-in timer (js/checkin.js, #/checkin): crew only.
function loadCheckin() {
  if (state.me?.role !== "crew") return;
  import("./checkin.js").then((m) => {
    m.startCheckin(state.me);
    if (state.route.name === "checkin") m.showCheckin();
  }).catch((err) => console.warn("check-in timer unavailable:", err));
}

// Evidence (js/media.js): photos and audio on the incident's screen, kept on the
// phone and uploaded after the incident syncs; what waits, on the incidents list.
let mediaModule = null;

function loadMedia() {
  if (!mediaModule) {
    mediaModule = import("./media.js");
    mediaModule.catch((err) => console.warn("media unavailable:", err));
  }
  return mediaModule;
}

function renderMedia(route) {
  // Only a known crew member's phone holds evidence: before /me (or the copy kept
  // on the phone) says who this is, a manager's console would report a device.
  if (!state.me || state.me.role !== "crew") return;
  loadMedia().then(async (m) => {
    m.startMedia();
    if (route.name === "incident") {
      m.mountMedia($("incident-media"), route.id, await store.getIncident(route.id));
    } else {
      m.unmountMedia();
      $("incident-media").replaceChildren();
    }
    m.renderSummary($("media-status"));
    m.kick(); // an incident that just synced lets its media go
  }).catch(() => {});
}

// Web Push (js/push.js): sign-out takes the subscription away; the account
// screen offers "Turn on notifications" (never asked on page load).
let pushModule = null;

function loadPush() {
  if (!pushModule) {
    pushModule = import("./push.js").then((m) => { m.startPush(state.me); return m; });
    pushModule.catch((err) => console.warn("push unavailable:", err));
  }
  return pushModule;
}

function renderPushPanel(signedIn) {
  const panel = $("push-panel");
  if (!panel) return;
  panel.hidden = !signedIn;
  if (!signedIn || panel.firstChild) return;
  loadPush().then((m) => {
    if (!panel.firstChild) panel.appendChild(m.pushControl(t, () => state.lang));
  }).catch(() => {});
}

// ---------------------------------------------------------------- start

function bind() {
  $("log-incident").addEventListener("click", logIncident);
  $("sync-now").addEventListener("click", () => requestFlush({ manual: true }));
  $("update-now").addEventListener("click", acceptUpdate);
  $("sign-in").addEventListener("click", startSignIn);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      state.lang = button.dataset.lang;
      setLanguage(state.lang);
      renderStatic();
      renderRoute();
    });
  }
  window.addEventListener("hashchange", () => {
    state.route = parseRoute();
    if (state.route.name === "checkin") loadCheckin();
    renderRoute().then(() => {
      startAtHeading();
      refreshScreen();
    });
  });
  window.addEventListener("online", () => { retry.failures = 0; requestFlush(); });
  window.addEventListener("offline", () => {
    state.syncMessage = { key: "sync_offline" };
    state.health = "down";
    renderChrome();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    requestFlush();
    navigator.serviceWorker?.getRegistration().then((reg) => reg?.update()).catch(() => {});
  });
  window.addEventListener("qorgau:auth", onAuth);
  window.addEventListener("qorgau:signed-out", () => {
    import("./hazards.js").then((m) => m.stopHazards()).catch(() => {});
  });
  window.addEventListener("qorgau:signed-in", onSignedIn);
  navigator.serviceWorker?.addEventListener("message", (event) => {
    // A push about one of our incidents: show what the server says now.
    if (event.data?.type === "push") refreshScreen();
  });
  onAnnouncement((message) => {
    if (message?.type === "outbox-changed") {
      // Another tab or the service worker sent something: show what the server says now.
      refreshCount();
      renderRoute({ full: false });
      if (state.route.name === "incident") loadServerEvents(state.route.id);
    }
    if (message?.type === "signin-needed") { state.signinNeeded = true; renderChrome(); }
  });
}

// A new screen replaces the old one and starts at its heading (scrolled to the
// top, the focus on the heading so a screen reader says where the person is).
function startAtHeading() {
  if (document.body.classList.contains("police-mode")
      || document.body.classList.contains("console-mode")) {
    if (state.route.name !== "account") return;
  }
  window.scrollTo(0, 0);
  const heading = document.querySelector(`#${VIEWS[state.route.name]} .view-title`);
  if (heading && state.route.name !== "home") heading.focus({ preventScroll: true });
}

// What the server says about the screen on show: fetched, then drawn at once.
// While "My incidents" or an incident is open (and visible) it is asked again
// every 1.5 s, so what the server knows (a police acknowledgement) is on screen
// within 2 s without a reload. The list is asked with If-None-Match: an
// unchanged page is a 304 with no body; a push triggers a refresh at once too.
const LIVE_MS = 1500;
let liveTimer = null;

async function refreshScreen() {
  clearTimeout(liveTimer);
  const name = state.route.name;
  if (name !== "incidents" && name !== "incident") return;
  try {
    if (name === "incidents") {
      await refreshFromServer();
      if (state.route.name === "incidents") await renderRoute({ full: false });
    } else {
      await loadServerEvents(state.route.id);
    }
  } catch { /* offline or signed out: what the phone has stays on screen */ }
  if (state.route.name === name) {
    liveTimer = setTimeout(() => {
      if (document.visibilityState === "visible") refreshScreen();
      else liveTimer = setTimeout(refreshScreen, LIVE_MS);
    }, LIVE_MS);
  }
}

async function loadServerEvents(id) {
  const incident = await fetchIncident(id);
  if (incident && Array.isArray(incident.events)) {
    state.serverEvents.set(id, incident.events);
    if (state.route.name === "incident" && state.route.id === id) renderRoute({ full: false });
  }
}

async function start() {
  state.route = parseRoute();
  bind();
  if (!navigator.onLine) state.syncMessage = { key: "sync_offline" };
  renderStatic();
  await loadCached();
  await refreshCount();
  await renderRoute();
  requestFlush(); // app start
  // Then what needs the network, none of it in the way of the button.
  registerServiceWorker().catch(() => {});
  loadPush();
  loadAuth();
  await Promise.allSettled([refreshRules(), refreshMe(), refreshPosts(), refreshHealth()]);
  renderStatic();
  loadConsole();
  loadPolice();
  loadHazards();
  loadSos();
  loadCheckin();
  // "Send by SMS" for urgent records the server has not acknowledged (js/sms.js).
  import("./sms.js").catch(() => {});
  await renderRoute();
  refreshScreen();
}

start();
