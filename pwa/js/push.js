// Web Push for this device: turning notifications on (only ever on a click,
// never on page load), keeping the server's copy of the subscription, and
// taking it away again on sign-out.
//
// The first half has no DOM, so the service worker imports it for
// `pushsubscriptionchange`; the control (a status line and a button, drawn
// on the account screen and on the police screen) is only wired up in a page.
//
// States a person sees: "on", "off", "blocked" (the browser's permission was
// refused: only the browser's own site settings can undo that) and
// "unsupported" (no service worker or Push API, e.g. iOS Safari outside an
// installed app).

import { api, ApiError } from "./api.js";
import { deviceId, getMeta, setMeta } from "./store.js";

export const SUBSCRIPTIONS_URL = "/api/v1/push/subscriptions";
export const VAPID_URL = "/api/v1/push/vapid-public-key";

// ---------------------------------------------------------------- no DOM (page and worker)

export function b64urlToBytes(value) {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function bytesToB64url(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The server's applicationServerKey (kept in IndexedDB for pushsubscriptionchange). */
export async function vapidKey() {
  try {
    const { public_key: key } = await api(VAPID_URL);
    await setMeta("vapid_key", key);
    return key;
  } catch (err) {
    const cached = await getMeta("vapid_key");
    if (cached) return cached;
    throw err;
  }
}

/** The subscription as the API takes it: PushSubscription.toJSON() plus this install's id. */
export async function subscriptionBody(sub) {
  const json = typeof sub.toJSON === "function" ? sub.toJSON() : sub;
  return { endpoint: json.endpoint, keys: json.keys, device_id: await deviceId() };
}

/** POST the subscription (the server upserts by endpoint and drops this device's old one). */
export async function saveSubscription(sub) {
  return api(SUBSCRIPTIONS_URL, { method: "POST", body: await subscriptionBody(sub) });
}

function sameKey(sub, key) {
  const current = sub && sub.options && sub.options.applicationServerKey;
  if (!current) return true; // the browser does not say: assume it is ours
  return bytesToB64url(current) === key;
}

/** Subscribe `registration` with `key` (replacing a subscription made with another key). */
export async function subscribeWith(registration, key) {
  let sub = await registration.pushManager.getSubscription();
  if (sub && !sameKey(sub, key)) {
    await sub.unsubscribe();
    sub = null;
  }
  return sub || registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
}

/**
 * The browser replaced (or dropped) the subscription: subscribe again with the
 * same key and tell the server. Runs in the service worker; api.js there needs
 * the session's CSRF token, which fetchMe() (js/sync.js) sets.
 */
export async function resubscribe(registration, event, fetchMe) {
  const me = await fetchMe();
  if (!me) return null; // signed out: nobody to deliver to
  let sub = event && event.newSubscription;
  if (!sub) {
    const old = event && event.oldSubscription;
    const raw = old && old.options && old.options.applicationServerKey;
    const key = raw ? bytesToB64url(raw) : await vapidKey();
    sub = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
  }
  await saveSubscription(sub);
  return sub;
}

// ---------------------------------------------------------------- the page

export function pushSupported() {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator
    && typeof window !== "undefined" && "PushManager" in window && "Notification" in window;
}

async function registration() {
  // Resolves once the app's service worker is active (js/app.js registers it).
  return navigator.serviceWorker.ready;
}

/** "unsupported" | "blocked" | "on" | "off" */
export async function pushStatus() {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "blocked";
  if (Notification.permission !== "granted") return "off";
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg ? await reg.pushManager.getSubscription() : null;
  return sub ? "on" : "off";
}

function changed(status) {
  window.dispatchEvent(new CustomEvent("qorgau:push", { detail: status }));
  return status;
}

/** The click on "Turn on notifications": ask, subscribe, tell the server. */
export async function turnOn() {
  if (!pushSupported()) return changed("unsupported");
  const permission = await Notification.requestPermission();
  if (permission === "denied") return changed("blocked");
  if (permission !== "granted") return changed("off"); // dismissed: ask again next click
  const key = await vapidKey();
  const sub = await subscribeWith(await registration(), key);
  try {
    await saveSubscription(sub);
  } catch (err) {
    // The server does not have it: do not leave the browser half-subscribed.
    await sub.unsubscribe().catch(() => {});
    throw err;
  }
  return changed("on");
}

/** Take this device's subscription off the server (while the session lasts) and the browser. */
export async function turnOff({ server = true, local = true } = {}) {
  if (!pushSupported()) return "unsupported";
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg ? await reg.pushManager.getSubscription() : null;
  if (!sub) return changed(await pushStatus());
  let removed = !server;
  if (server) {
    try {
      await api(SUBSCRIPTIONS_URL, { method: "DELETE", body: { endpoint: sub.endpoint } });
      removed = true;
    } catch (err) {
      console.warn("push: could not remove the subscription from the server:", err);
    }
  }
  if (local || removed) await sub.unsubscribe().catch(() => {});
  return changed(await pushStatus());
}

// The page's wiring (js/app.js calls this once, with the person it knows of):
// sign-out, a new person, the control.
let started = false;

export function startPush(signedIn = null) {
  if (started || typeof document === "undefined") return;
  started = true;
  let person = null;       // who this page last knew to be signed in
  let resent = null;       // the person whose subscription was re-sent on this load
  let releasing = false;   // the sign-out click is being let through

  // Sign-out ends the session, after which the server would refuse the DELETE
  // (401). So the click on "Sign out" waits for the DELETE and the local
  // unsubscribe, then goes on to js/auth.js as the person made it.
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("#auth-signout");
    if (!button || releasing || !pushSupported()) return;
    event.preventDefault();
    event.stopPropagation();
    button.disabled = true;
    const timeout = new Promise((resolve) => { setTimeout(resolve, 5000); });
    Promise.race([turnOff({ server: true, local: true }), timeout])
      .catch((err) => console.warn("push: sign-out:", err))
      .finally(() => {
        button.disabled = false;
        releasing = true;
        try { button.click(); } finally { releasing = false; }
      });
  }, true);

  function onAuth(body) {
    const now = body && body.person ? body.person : null;
    if (!now && person) {
      // Signed out some other way (a revoked session, say). Try the server; the
      // browser's subscription goes only if the server copy went too, so an
      // offline start or a passing network failure never silently ends pushes.
      turnOff({ server: true, local: false }).catch(() => {});
    }
    // A revoked session took the server's copy with it: the next sign-in sends it again.
    if (!now) resent = null;
    if (now && pushSupported() && Notification.permission === "granted" && resent !== now.id) {
      // This browser may have been subscribed under someone else (a post's shared
      // desktop between shifts): the server moves the endpoint to whoever is here now.
      resent = now.id;
      navigator.serviceWorker.getRegistration()
        .then((reg) => (reg ? reg.pushManager.getSubscription() : null))
        .then((sub) => (sub ? saveSubscription(sub) : null))
        .catch((err) => console.warn("push: re-sending the subscription:", err));
    }
    person = now;
  }
  window.addEventListener("qorgau:auth", (event) => onAuth(event.detail));
  if (signedIn) onAuth({ person: signedIn });
}

/**
 * The control: a status line and one button. `t` is i18n's t and `getLang`
 * returns the language on screen. Several controls on one page stay in step.
 */
export function pushControl(t, getLang, { id = "push-control" } = {}) {
  if (!document.querySelector('link[href="/css/push.css"]')) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/css/push.css";
    document.head.appendChild(link);
  }
  const box = document.createElement("div");
  box.className = "push-control";
  box.id = id;
  const heading = document.createElement("h3");
  const status = document.createElement("p");
  status.className = "push-status";
  status.id = `${id}-status`;
  status.setAttribute("role", "status");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "push-toggle";
  button.setAttribute("aria-describedby", status.id);
  const problem = document.createElement("p");
  problem.className = "push-error";
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  box.append(heading, status, button, problem);
  let current = "off";
  let busy = false;

  function draw() {
    const lang = getLang();
    heading.textContent = t(lang, "push_title");
    status.dataset.state = current;
    status.textContent = t(lang, `push_state_${current}`);
    button.hidden = current === "unsupported" || current === "blocked";
    button.disabled = busy;
    button.dataset.action = current === "on" ? "off" : "on";
    button.textContent = t(lang, current === "on" ? "push_turn_off" : "push_turn_on");
  }

  async function refresh() {
    try { current = await pushStatus(); } catch { current = "off"; }
    draw();
  }

  button.addEventListener("click", async () => {
    busy = true;
    problem.hidden = true;
    draw();
    try {
      current = button.dataset.action === "off" ? await turnOff() : await turnOn();
    } catch (err) {
      console.warn("push:", err);
      problem.hidden = false;
      problem.textContent = t(getLang(), "push_failed",
        { error: err instanceof ApiError ? err.message : (err && err.name) || String(err) });
      current = await pushStatus().catch(() => "off");
    } finally {
      busy = false;
      draw();
    }
  });
  window.addEventListener("qorgau:push", refresh);
  window.addEventListener("qorgau:lang", draw);
  draw();
  refresh();
  return box;
}
