// Sign-in with a passkey, enrolment from an invitation link (#/enrol/<token>),
// "my devices", a manager's invitations and the permanent demo banner.
//
// It renders into <section id="auth"> and tells the rest of the app on window:
// "qorgau:signed-in" when a new session starts, and "qorgau:auth" whenever the
// person changes (detail: the /me body, or null when signed out). currentMe()
// gives the same at any time; showSignIn() brings the sign-in screen forward.

import { api, ApiError, setCsrfToken } from "./api.js";
import { h } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";
import { getMeta } from "./store.js";

const root = document.getElementById("auth");
const banner = document.getElementById("demo-banner");
let lang = currentLanguage();
window.addEventListener("qorgau:lang", (event) => {
  lang = event.detail;
  render();
});
let me = null;
let view = { name: "loading" };
let notice = "";   // an i18n key shown once above the view
let errorKey = "";
let devices = null;
let people = null;
let invitation = null; // { personId, url, expires_at, qr_svg }
let demoPeople = null;
let devicesOpen = false; // the devices panel stays as the person left it across renders
let offline = false;     // the last /me got no answer: the person shown is the one last known

// --- WebAuthn JSON <-> ArrayBuffer (not every phone has parse*FromJSON yet) ---

export function b64urlToBuffer(value) {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
}

export function bufferToB64url(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: b64urlToBuffer(c.id) }));

export function creationOptionsFromJSON(options) {
  return {
    ...options,
    challenge: b64urlToBuffer(options.challenge),
    user: { ...options.user, id: b64urlToBuffer(options.user.id) },
    excludeCredentials: withIds(options.excludeCredentials),
  };
}

export function requestOptionsFromJSON(options) {
  return {
    ...options,
    challenge: b64urlToBuffer(options.challenge),
    allowCredentials: withIds(options.allowCredentials),
  };
}

export function credentialToJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: bufferToB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = bufferToB64url(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  } else {
    response.authenticatorData = bufferToB64url(r.authenticatorData);
    response.signature = bufferToB64url(r.signature);
    if (r.userHandle) response.userHandle = bufferToB64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: bufferToB64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response,
  };
}

// --- state ---------------------------------------------------------------------------

export function currentMe() {
  return me;
}

function setMe(body, { fresh = false } = {}) {
  me = body;
  setCsrfToken(body ? body.csrf_token : "");
  if (banner) banner.hidden = !(body && body.demo);
  window.dispatchEvent(new CustomEvent("qorgau:auth", { detail: body }));
  if (fresh) window.dispatchEvent(new CustomEvent("qorgau:signed-in", { detail: body }));
}

export async function showSignIn() {
  if (!me) {
    view = { name: "signin" };
    await loadSignIn();
    render();
  }
  root.scrollIntoView({ behavior: "smooth", block: "start" });
  const button = document.getElementById("auth-signin");
  if (button) button.focus();
}

function errorKeyFor(err) {
  if (err && err.name === "NotAllowedError") return "auth_err_cancelled";
  if (err && err.message === "unsupported") return "auth_err_unsupported";
  if (err instanceof ApiError) {
    const byType = {
      "invitation-used": "auth_err_invitation_used",
      "invitation-expired": "auth_err_invitation_expired",
      "invitation-revoked": "auth_err_invitation_revoked",
      "invitation-unknown": "auth_err_invitation_unknown",
      "rate-limited": "auth_err_rate",
      "passkey-flagged": "auth_err_flagged",
      "unknown-passkey": "auth_err_unknown_passkey",
    };
    return byType[err.type] || "auth_err_generic";
  }
  return "auth_err_generic";
}

async function attempt(action) {
  errorKey = "";
  notice = "";
  try {
    await action();
  } catch (err) {
    console.warn("auth:", err);
    errorKey = errorKeyFor(err);
  }
  render();
}

function enrolToken() {
  const match = /^#\/enrol\/([A-Za-z0-9_-]{16,200})$/.exec(location.hash);
  return match ? match[1] : null;
}

function passkeysSupported() {
  return Boolean(window.PublicKeyCredential && navigator.credentials);
}

// --- actions ---------------------------------------------------------------------

async function enrol(token, label) {
  if (!passkeysSupported()) throw new Error("unsupported");
  const options = await api("/api/v1/auth/register/options", {
    method: "POST", body: { invitation: token } });
  const credential = await navigator.credentials.create({
    publicKey: creationOptionsFromJSON(options) });
  const body = await api("/api/v1/auth/register/verify", { method: "POST", body: {
    invitation: token, credential: credentialToJSON(credential), device_label: label } });
  // The token has done its work; keep it out of the address bar and history.
  history.replaceState(null, "", location.pathname);
  setMe(body, { fresh: true });
  view = { name: "home" };
  notice = "auth_enrolled";
  await loadHome();
}

async function signIn() {
  if (!passkeysSupported()) throw new Error("unsupported");
  const options = await api("/api/v1/auth/login/options", { method: "POST", body: {} });
  const credential = await navigator.credentials.get({
    publicKey: requestOptionsFromJSON(options) });
  setMe(await api("/api/v1/auth/login/verify", { method: "POST",
    body: { credential: credentialToJSON(credential) } }), { fresh: true });
  view = { name: "home" };
  await loadHome();
}

async function demoSignIn(personId) {
  setMe(await api("/api/v1/auth/demo", { method: "POST", body: { person_id: personId } }),
    { fresh: true });
  view = { name: "home" };
  await loadHome();
}

async function signOut() {
  await api("/api/v1/auth/logout", { method: "POST" });
  // What the phone kept for this person only (their region's hazard flags) goes too.
  window.dispatchEvent(new CustomEvent("qorgau:signed-out"));
  signedOut();
  await loadSignIn();
}

function signedOut() {
  setMe(null);
  devices = people = invitation = null;
  view = { name: "signin" };
}

async function addPasskey(label) {
  const options = await api("/api/v1/auth/passkeys/options", { method: "POST" });
  const credential = await navigator.credentials.create({
    publicKey: creationOptionsFromJSON(options) });
  await api("/api/v1/auth/passkeys/verify", { method: "POST",
    body: { credential: credentialToJSON(credential), device_label: label } });
  notice = "auth_enrolled";
  await loadHome();
}

async function revoke(kind, id, current) {
  await api(`/api/v1/auth/${kind}/${id}`, { method: "DELETE" });
  if (current) {
    signedOut();
    await loadSignIn();
  } else {
    await loadHome();
  }
}

async function invite(personId) {
  const body = await api(`/api/v1/people/${personId}/invitations`, { method: "POST", body: {} });
  invitation = { personId, ...body };
}

async function revokeDevices(personId) {
  if (!confirm(t(lang, "auth_confirm_revoke_devices"))) return;
  await api(`/api/v1/people/${personId}/revoke-devices`, { method: "POST" });
  if (invitation && invitation.personId === personId) invitation = null;
  await loadHome();
}

async function loadHome() {
  devices = await api("/api/v1/auth/devices");
  const role = me.person.role;
  people = role === "manager" || role === "admin"
    ? (await api("/api/v1/people")).people : null;
}

async function loadSignIn() {
  try {
    demoPeople = (await api("/api/v1/auth/demo/people")).people;
  } catch {
    demoPeople = null; // 404: not a demo run
  }
}

// --- rendering -------------------------------------------------------------------------

const when = (iso) => (iso ? new Date(iso).toLocaleString(lang) : "—");

function renderEnrol(token) {
  const label = h("input", { id: "auth-label", name: "device_label", maxlength: "120",
    autocomplete: "off", placeholder: t(lang, "auth_device_label_hint") });
  return [
    h("h3", {}, t(lang, "auth_enrol_title")),
    h("p", {}, t(lang, "auth_enrol_hint")),
    h("label", { for: "auth-label" }, t(lang, "auth_device_label")), label,
    h("button", { type: "button", id: "auth-enrol", class: "primary",
      onclick: () => attempt(() => enrol(token, label.value)) }, t(lang, "auth_enrol_button")),
  ];
}

function renderSignIn() {
  const parts = [
    h("h3", {}, t(lang, "auth_title_signin")),
    h("p", {}, t(lang, "auth_signin_hint")),
    h("button", { type: "button", id: "auth-signin", class: "primary",
      onclick: () => attempt(signIn) }, t(lang, "auth_signin_button")),
  ];
  if (demoPeople) {
    parts.push(h("h3", {}, t(lang, "auth_demo_pick")), h("ul", { id: "auth-demo-people" },
      demoPeople.map((p) => h("li", {}, h("button", { type: "button", "data-person": p.id,
        onclick: () => attempt(() => demoSignIn(p.id)) },
      `${p.display_name} — ${t(lang, `role_${p.role}`)}`)))));
  }
  return parts;
}

function renderDevices() {
  if (!devices) return [];
  const label = h("input", { id: "auth-new-label", maxlength: "120", autocomplete: "off",
    placeholder: t(lang, "auth_device_label_hint"), "aria-label": t(lang, "auth_device_label") });
  return [h("details", { id: "auth-devices", open: devicesOpen,
    ontoggle: (event) => { devicesOpen = event.target.open; } },
    h("summary", {}, t(lang, "auth_devices")),
    h("h4", {}, t(lang, "auth_passkeys")),
    h("ul", { id: "auth-passkeys" }, devices.passkeys.map((p) => h("li", {},
      `${p.device_label || "—"} · ${t(lang, "auth_last_used")}: ${when(p.last_used_at)}`,
      p.current ? ` (${t(lang, "auth_this_device")})` : "",
      p.flagged ? ` ⚠ ${t(lang, "auth_flagged")}` : "",
      " ", h("button", { type: "button",
        onclick: () => attempt(() => revoke("passkeys", p.id, p.current)) },
      t(lang, "auth_revoke"))))),
    h("h4", {}, t(lang, "auth_sessions")),
    h("ul", { id: "auth-sessions" }, devices.sessions.map((s) => h("li", {},
      `${s.user_agent.slice(0, 60) || "—"} · ${when(s.last_seen_at)}`,
      s.current ? ` (${t(lang, "auth_this_device")})` : "",
      " ", h("button", { type: "button",
        onclick: () => attempt(() => revoke("sessions", s.id, s.current)) },
      t(lang, "auth_revoke"))))),
    label,
    h("button", { type: "button", id: "auth-add-passkey",
      onclick: () => attempt(() => addPasskey(label.value)) }, t(lang, "auth_add_passkey")))];
}

/**
 * An invitation (the server's {url, expires_at, qr_svg}): the QR code, the link
 * (wrapping, never widening the screen) and a button that copies it. Shared by
 * the account screen and the console's People screen.
 */
export function invitationBox(issued, language, { id = "auth-invitation" } = {}) {
  const qr = h("div", { class: "auth-qr" });
  // The SVG is made by segno on our own server from our own URL.
  qr.innerHTML = issued.qr_svg;
  const status = h("span", { class: "copy-status", role: "status" });
  const copy = h("button", { type: "button", class: "copy-link", onclick: async () => {
    try {
      await navigator.clipboard.writeText(issued.url);
      status.textContent = t(language, "invite_copied");
    } catch {
      status.textContent = t(language, "invite_copy_failed");
    }
  } }, t(language, "invite_copy"));
  const expires = new Date(issued.expires_at).toLocaleString(language);
  return h("div", { id, class: "invitation" }, qr,
    h("p", { class: "invitation-url" },
      h("a", { href: issued.url, id: `${id}-url` }, issued.url)),
    h("p", {}, copy, " ", status),
    h("p", {}, `${t(language, "auth_invite_expires")} ${expires}`));
}

function renderInvitation() {
  return invitationBox(invitation, lang);
}

function renderPeople() {
  if (!people) return [];
  return [h("details", { id: "auth-people-panel", open: true },
    h("summary", {}, t(lang, "auth_people")),
    h("ul", { id: "auth-people" }, people.map((p) => h("li", { "data-person": p.id },
      `${p.display_name} — ${t(lang, `role_${p.role}`)}${p.station ? ` (${p.station})` : ""}`,
      ` · ${t(lang, "auth_passkeys")}: ${p.passkeys} `,
      p.active ? h("button", { type: "button", class: "auth-invite",
        onclick: () => attempt(() => invite(p.id)) }, t(lang, "auth_invite")) : null,
      " ", h("button", { type: "button", class: "auth-revoke-devices",
        onclick: () => attempt(() => revokeDevices(p.id)) }, t(lang, "auth_revoke_devices")),
      invitation && invitation.personId === p.id ? renderInvitation() : null))))];
}

function renderHome() {
  const p = me.person;
  const unit = p.station ? p.station.name : p.post ? p.post.hospital_name : "";
  if (offline) {
    return [
      h("p", { id: "auth-whoami" }, `${t(lang, "auth_signed_in_as")} `,
        h("strong", {}, p.display_name), ` — ${t(lang, `role_${p.role}`)}`,
        unit ? `, ${unit}` : ""),
      h("p", { id: "auth-offline", role: "status" }, t(lang, "auth_offline")),
    ];
  }
  return [
    h("p", { id: "auth-whoami" }, `${t(lang, "auth_signed_in_as")} `,
      h("strong", {}, p.display_name), ` — ${t(lang, `role_${p.role}`)}`,
      unit ? `, ${unit}` : ""),
    h("button", { type: "button", id: "auth-signout",
      onclick: () => attempt(signOut) }, t(lang, "auth_sign_out")),
    ...renderDevices(),
    ...renderPeople(),
  ];
}

function render() {
  if (!root) return;
  if (banner) banner.textContent = t(lang, "auth_demo_banner");
  const parts = [];
  if (notice) parts.push(h("p", { id: "auth-notice", role: "status" }, t(lang, notice)));
  if (errorKey) parts.push(h("p", { id: "auth-error", role: "alert" }, t(lang, errorKey)));
  if (view.name === "enrol") parts.push(...renderEnrol(view.token));
  else if (view.name === "signin") parts.push(...renderSignIn());
  else if (view.name === "home" && me) parts.push(...renderHome());
  else if (view.name === "offline") {
    parts.push(h("p", { id: "auth-offline", role: "status" }, t(lang, "auth_offline_unknown")));
  }
  if (!passkeysSupported() && view.name !== "home" && view.name !== "offline") {
    parts.push(h("p", { role: "alert" }, t(lang, "auth_err_unsupported")));
  }
  root.replaceChildren(...parts);
  root.hidden = false;
}

async function route() {
  errorKey = "";
  const token = enrolToken();
  if (token) {
    view = { name: "enrol", token };
    render();
    return;
  }
  let body;
  try {
    body = await api("/api/v1/auth/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      // Only the server's answer signs a person out.
      offline = false;
      signedOut();
      await loadSignIn();
    } else {
      // No answer (offline, or the server failing): whoever was signed in still is.
      console.warn("auth:", err);
      offline = true;
      if (!me) {
        const person = await getMeta("me").catch(() => null);
        if (person) me = { person };
      }
      view = me ? { name: "home" } : { name: "offline" };
    }
    render();
    return;
  }
  offline = false;
  setMe(body);
  view = { name: "home" };
  try {
    await loadHome();
  } catch (err) {
    console.warn("auth:", err);
  }
  render();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-lang]");
  if (button) {
    lang = button.dataset.lang;
    render();
  }
});
window.addEventListener("hashchange", route);
if (root) route();
