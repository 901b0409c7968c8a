// The SMS fallback on the crew's screens (docs/sms.md): an urgent record (an
// SOS, or any incident marked police-needed-now: outbox.js isUrgent) that the
// server has not acknowledged OFFER_AFTER_MS after its tap gets a "Send by SMS"
// link: an sms: link to the region's number with the record in a message the
// server verifies with this device's SMS key (js/sms_codec.js).
//
// The key and the number come with the signed-in session (the /me body's
// `sms`, announced by js/auth.js as "qorgau:auth") and are kept in IndexedDB,
// so the offer works offline; a 401 or a sign-out forgets them.

import { currentLanguage, t } from "./i18n.js";
import { isUrgent, URGENT_WINDOW_MS } from "./outbox.js";
import { getIncident, getMeta, pendingIncidents, setMeta } from "./store.js";
import { encode, smsLink } from "./sms_codec.js";

export const OFFER_AFTER_MS = 30 * 1000;
const CHECK_EVERY_MS = 2000;

/** Whether `record` is an urgent one the server has not acknowledged for OFFER_AFTER_MS. */
export function wantsSms(record, now = Date.now()) {
  if (!record || !isUrgent(record) || record.pending !== 1) return false;
  if ((record.synced_revision || 0) > 0) return false; // the server has it already
  const age = now - Date.parse(record.tapped_at);
  return age >= OFFER_AFTER_MS && age < URGENT_WINDOW_MS;
}

/** The record to offer: the incident on screen if it wants one, else the newest that does. */
async function candidate(now) {
  const m = location.hash.match(/^#\/incidents\/([0-9a-f-]{36})$/i);
  if (m) {
    const shown = await getIncident(m[1].toLowerCase());
    if (wantsSms(shown, now)) return shown;
  }
  const waiting = (await pendingIncidents()).filter((r) => wantsSms(r, now));
  waiting.sort((a, b) => Date.parse(b.tapped_at) - Date.parse(a.tapped_at));
  return waiting[0] || null;
}

let shownKey = null; // what is on screen: record id + revision + language

function clear(node) {
  node.hidden = true;
  node.replaceChildren();
}

async function render() {
  const nodes = document.querySelectorAll("[data-sms-offer]");
  if (!nodes.length) return;
  const credentials = await getMeta("sms").catch(() => null);
  const record = credentials && credentials.number ? await candidate(Date.now()) : null;
  if (!record) {
    shownKey = null;
    nodes.forEach(clear);
    return;
  }
  const lang = currentLanguage();
  const key = `${record.id}:${record.revision}:${lang}`;
  if (key === shownKey) return;
  const body = await encode(record, credentials);
  const href = smsLink(credentials.number, body);
  shownKey = key;
  for (const node of nodes) {
    const note = document.createElement("p");
    note.className = "sms-opened";
    note.setAttribute("role", "status");
    const title = document.createElement("h3");
    title.textContent = t(lang, "sms_title");
    const hint = document.createElement("p");
    hint.textContent = t(lang, "sms_hint");
    const link = document.createElement("a");
    link.className = "sms-send";
    link.href = href;
    link.dataset.incident = record.id;
    link.textContent = t(lang, "sms_send");
    link.addEventListener("click", () => { note.textContent = t(lang, "sms_opened"); });
    node.replaceChildren(title, hint, link, note);
    node.hidden = false;
  }
}

function refresh() {
  render().catch(() => { /* the offer is extra: it never gets in the way */ });
}

/** Keep (or, signed out, forget) the credentials of a /me body. */
function remember(body) {
  // auth.js announces null only after the server's 401 or a sign-out: the key is void.
  return setMeta("sms", body && body.person ? body.sms || null : null).then(refresh, () => {});
}

window.addEventListener("qorgau:auth", (event) => remember(event.detail));
// This module loads after the shell: the session may have been announced already.
import("./auth.js").then(({ currentMe }) => {
  const me = currentMe();
  if (me && me.csrf_token) remember(me); // a body from the server, not the offline cache
}).catch(() => {});
window.addEventListener("qorgau:lang", refresh);
window.addEventListener("hashchange", refresh);
window.addEventListener("online", refresh);
window.addEventListener("offline", refresh);
setInterval(refresh, CHECK_EVERY_MS);
refresh();
