// The police officer's screens: the post's incidents and one incident, with
// Acknowledge, the ЕРДР number and the status. Made for a phone at the door
// of the emergency room and for the post's desktop alike: big targets, one
// column that widens.
//
//   #/police                    the list: urgent (police needed now, not yet
//                               acknowledged) first, then newest first
//   #/police/incidents/<uuid>   one incident (each view is access-logged)
//
// js/app.js loads this module for people whose role is "police" and calls
// startPolice(). A push opens /#/incidents/<uuid>; for an officer that is this
// module's detail. The list refreshes when a push arrives (the service worker
// posts a message) and every 30 s while the screen is visible. Everything is
// drawn with DOM APIs: no inline script or style, no innerHTML.

import { api, ApiError } from "./api.js";
import { appendPresent, h, happenedLogged, localTime, pointerIsDown, ZONE } from "./dom.js";
import { policeHazards } from "./hazards.js";
import { changeLines, eventTitle } from "./history.js";
import { evidenceSection } from "./media_view.js";
import { currentLanguage, t } from "./i18n.js";
import { sosSection } from "./police_sos.js";
import { pushControl } from "./push.js";

const BASE = "/api/v1/police/incidents";
const REFRESH_MS = 30 * 1000;
const MAX_NOTE = 2000;

let lang = currentLanguage();
let started = false;
let root = null;
let rules = null;
let items = [];
let loadedAt = null;
let loadError = null;
let rendering = null;
let again = false;
let control = null;     // the notifications control, kept across renders
let lastScreen = null;  // the hash last drawn: a new one starts at the top
const notices = new Map(); // incident id → {key} shown once after an action

// ---------------------------------------------------------------- helpers

const tr = (key, values) => t(lang, key, values);
const trOr = (key, fallback) => (tr(key) === key ? fallback : tr(key));

function label(collection, id) {
  const item = rules && (rules[collection] || []).find((x) => x.id === id);
  return item ? (item.label[lang] || item.label.en) : (id || "—");
}

function partText(incident) {
  const c = incident.classification || {};
  return c.part ? tr("pl_part", { n: c.part }) : tr("pl_part_none");
}

const statusText = (s) => trOr(`status_${s}`, s);
const acknowledged = (incident) => Boolean(incident.alert && incident.alert.acknowledged_at);
const escalated = (incident) => Boolean(incident.alert && incident.alert.escalated_at);
const urgentNow = (incident) => incident.urgent && incident.police_needed;

// Known field errors in the officer's language; anything else as the server said it.
const FIELD_MESSAGES = { erdr_number: "pl_err_erdr", note: "pl_err_note", status: "pl_err_status" };

function fieldErrors(err) {
  if (!(err instanceof ApiError)) return null;
  const list = err.problem.errors || [];
  if (!list.length) return null;
  const out = {};
  for (const e of list) {
    const key = FIELD_MESSAGES[e.field];
    out[e.field] = key ? tr(key) : e.message;
  }
  return out;
}

function problemText(err) {
  if (err instanceof ApiError) {
    if (err.status === 409) return tr("pl_err_closed");
    if (err.status === 401) return tr("pl_err_signin");
    return err.message;
  }
  if (err instanceof TypeError) return tr("pl_err_offline");
  return String(err && err.message ? err.message : err);
}

// ---------------------------------------------------------------- frame

function route() {
  const hash = location.hash.replace(/^#/, "");
  const m = hash.match(/^\/police\/incidents\/([0-9a-f-]{36})$/i);
  if (m) return { name: "detail", id: m[1].toLowerCase() };
  if (/^\/police\/?$/.test(hash)) return { name: "list" };
  return null; // another part of the app (the account screen)
}

function nav(current) {
  return h("nav", { class: "pl-nav", "aria-label": tr("pl_screen") },
    h("a", { href: "#/police", class: "pl-tab", "aria-current": current === "list" ? "page" : null },
      tr("pl_tab_incidents")),
    h("a", { href: "#/account", class: "pl-tab" }, tr("nav_account")));
}

async function render({ quiet = false } = {}) {
  lang = currentLanguage();
  const where = route();
  root.hidden = !where;
  document.body.classList.toggle("police-active", Boolean(where));
  if (!where) return;
  // One render at a time: a push and the timer arriving together draw once;
  // a click that arrives meanwhile draws again right after.
  if (rendering) {
    if (!quiet) again = true;
    return rendering;
  }
  rendering = (async () => {
    const view = h("div", { class: "pl-view" });
    try {
      if (where.name === "list") await renderList(view);
      else await renderDetail(view, where.id, { quiet });
    } catch (err) {
      view.appendChild(h("p", { class: "pl-error", role: "alert" }, problemText(err)));
    }
    if (view.dataset.keep !== "1" && !(quiet && keepCurrent(view))) {
      root.replaceChildren(nav(where.name), view);
    }
    root.dataset.ready = where.name;
    // A new screen starts at its top, its heading focused (not a redraw in place).
    if (lastScreen !== location.hash) {
      lastScreen = location.hash;
      window.scrollTo(0, 0);
      const heading = view.querySelector("h2");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus({ preventScroll: true });
      }
    }
  })().finally(() => {
    rendering = null;
    if (again) { again = false; render(); }
  });
  return rendering;
}

// ---------------------------------------------------------------- the list

async function loadList() {
  try {
    items = (await api(`${BASE}?limit=100`)).items || [];
    loadedAt = new Date();
    loadError = null;
  } catch (err) {
    loadError = err; // keep showing what was loaded last
  }
}

function badges(incident) {
  const list = [];
  if (incident.sos) list.push(["pl-badge urgent sos", tr("sos_badge")]);
  if (urgentNow(incident)) list.push(["pl-badge urgent", tr("pl_urgent_now")]);
  else if (incident.urgent) list.push(["pl-badge unack", tr("pl_unacknowledged")]);
  if (escalated(incident)) list.push(["pl-badge escalated", tr("pl_escalated")]);
  return list.map(([cls, text]) => h("span", { class: cls }, text));
}

function card(incident) {
  const cls = ["pl-card"];
  if (urgentNow(incident)) cls.push("urgent");
  else if (incident.urgent) cls.push("unack");
  if (incident.status === "closed") cls.push("closed");
  return h("li", { class: "pl-item", "data-id": incident.id },
    h("a", { class: cls.join(" "), href: `#/police/incidents/${incident.id}` },
      h("span", { class: "pl-card-head" },
        h("strong", { class: "pl-case" }, incident.case_number || incident.id),
        h("span", { class: "pl-badges" }, badges(incident))),
      h("span", { class: "pl-card-facts" },
        h("span", { class: "pl-part" }, partText(incident)),
        h("span", { class: "pl-time" }, h("time", { datetime: incident.occurred_at },
          happenedLogged(incident, tr) || localTime(incident.occurred_at))),
        h("span", { class: "pl-station" }, incident.station_name || "—"),
        h("span", { class: `pl-status status-${incident.status}` }, statusText(incident.status)))));
}

async function renderList(view) {
  await loadList();
  const refresh = h("button", { type: "button", class: "pl-secondary", id: "pl-refresh" },
    tr("pl_refresh"));
  refresh.addEventListener("click", () => render());
  appendPresent(view,
    h("div", { class: "pl-head" },
      h("h2", {}, tr("pl_title")),
      refresh),
    h("p", { class: "pl-updated muted", id: "pl-updated", role: "status" },
      loadedAt ? tr("pl_updated", { time: localTime(loadedAt.toISOString(), true) }) : ""),
    loadError ? h("p", { class: "pl-error", role: "alert" }, problemText(loadError)) : null,
    items.length
      ? h("ul", { class: "pl-list", id: "pl-list", "aria-label": tr("pl_title") }, items.map(card))
      : h("p", { id: "pl-none" }, tr("pl_none")),
    await policeHazards(),
    control);
}

// ---------------------------------------------------------------- one incident

function dl(pairs) {
  return h("dl", { class: "pl-facts" }, pairs.filter(Boolean).flatMap(([k, v, attrs]) =>
    [h("dt", {}, tr(k)), h("dd", attrs || {}, v === null || v === undefined || v === "" ? "—" : v)]));
}

function locationFacts(loc) {
  if (!loc) return tr("pl_location_none");
  const lat = Number(loc.lat).toFixed(6);
  const lon = Number(loc.lon).toFixed(6);
  return h("span", {},
    h("span", { class: "pl-coords", id: "pl-coords" }, `${lat}, ${lon}`),
    loc.accuracy_m !== null && loc.accuracy_m !== undefined
      ? ` (±${Math.round(loc.accuracy_m)} ${tr("pl_metres")})` : "",
    " ",
    h("a", { id: "pl-map", class: "pl-map", target: "_blank", rel: "noopener noreferrer",
      href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}` },
    tr("pl_map")));
}

function history(events) {
  return h("ol", { class: "pl-history history", id: "pl-history" }, (events || []).map((e) => {
    const lines = changeLines(e.changes, { lang, rules });
    return h("li", { class: "history-entry" },
      h("time", { datetime: e.at, class: "pl-when" }, localTime(e.at, true)), " · ",
      h("strong", {}, eventTitle(e.kind, lang)),
      e.actor ? ` — ${e.actor.display_name}` : "",
      lines.length ? h("ul", { class: "history-changes muted" },
        lines.map((line) => h("li", {}, line))) : null);
  }));
}

function fieldError(id) {
  return h("p", { class: "pl-field-error", id, role: "alert", hidden: true });
}

function showFieldError(node, input, text) {
  node.hidden = !text;
  node.textContent = text || "";
  if (input) input.setAttribute("aria-invalid", text ? "true" : "false");
}

async function act(button, work, { onError } = {}) {
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    if (!onError || !onError(err)) {
      root.querySelector(".pl-action-error")?.remove();
      button.after(h("p", { class: "pl-error pl-action-error", role: "alert" }, problemText(err)));
    }
    button.disabled = false;
  }
}

function ackSection(incident) {
  const alert = incident.alert || {};
  const box = h("section", { class: "pl-section pl-ack", "aria-labelledby": "pl-ack-title" },
    h("h3", { id: "pl-ack-title" }, tr("pl_ack_title")));
  if (acknowledged(incident)) {
    box.append(h("p", { id: "pl-acknowledged", class: "pl-done" }, tr("pl_acknowledged_by", {
      who: alert.acknowledged_by ? alert.acknowledged_by.display_name : "—",
      time: localTime(alert.acknowledged_at, true) })));
    return box;
  }
  if (incident.status === "closed") {
    box.append(h("p", {}, tr("pl_not_acknowledged")));
    return box;
  }
  const button = h("button", { type: "button", id: "pl-acknowledge", class: "pl-primary" },
    tr("pl_acknowledge"));
  button.addEventListener("click", () => act(button, async () => {
    await api(`${BASE}/${incident.id}/acknowledge`, { method: "POST" });
    notices.set(incident.id, "pl_ack_done");
    await render();
  }));
  box.append(h("p", {}, tr("pl_not_acknowledged")), button);
  return box;
}

function erdrSection(incident) {
  const closed = incident.status === "closed";
  const input = h("input", { id: "pl-erdr", name: "erdr_number", type: "text",
    inputmode: "numeric", autocomplete: "off", maxlength: 40, value: incident.erdr_number || "",
    "aria-describedby": "pl-erdr-hint pl-erdr-error", disabled: closed });
  const error = fieldError("pl-erdr-error");
  const save = h("button", { type: "submit", class: "pl-primary", disabled: closed },
    tr("pl_erdr_save"));
  const form = h("form", { class: "pl-form", id: "pl-erdr-form", novalidate: true },
    h("label", { for: "pl-erdr" }, tr("pl_erdr")),
    h("p", { id: "pl-erdr-hint", class: "muted" }, tr("pl_erdr_hint")),
    input, error, save);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    showFieldError(error, input, "");
    act(save, async () => {
      await api(`${BASE}/${incident.id}/erdr`, { method: "PUT",
        body: { erdr_number: input.value.trim() } });
      notices.set(incident.id, "pl_erdr_done");
      await render();
    }, { onError: (err) => {
      const fields = fieldErrors(err);
      if (!fields) return false;
      showFieldError(error, input, fields.erdr_number || Object.values(fields).join("; "));
      input.focus();
      return true;
    } });
  });
  return h("section", { class: "pl-section", "aria-labelledby": "pl-erdr-title" },
    h("h3", { id: "pl-erdr-title" }, tr("pl_erdr_title")),
    incident.erdr_number ? h("p", { id: "pl-erdr-current" },
      tr("pl_erdr_current", { n: incident.erdr_number })) : null,
    form);
}

function statusSection(incident) {
  const closed = incident.status === "closed";
  const box = h("section", { class: "pl-section", "aria-labelledby": "pl-status-title" },
    h("h3", { id: "pl-status-title" }, tr("pl_status_title")),
    h("p", { id: "pl-status-now" }, tr("pl_status_now", { status: statusText(incident.status) })));
  if (closed) {
    box.append(h("p", { class: "muted" }, tr("pl_closed_readonly")));
    return box;
  }
  const choice = (value, key) => h("label", { class: "pl-choice" },
    h("input", { type: "radio", name: "status", value, id: `pl-status-${value}`,
      checked: value === "investigating" }), " ", tr(key));
  const note = h("textarea", { id: "pl-note", name: "note", rows: 3, maxlength: MAX_NOTE,
    "aria-describedby": "pl-note-hint pl-note-error" });
  const statusError = fieldError("pl-status-error");
  const noteError = fieldError("pl-note-error");
  const save = h("button", { type: "submit", class: "pl-primary" }, tr("pl_status_save"));
  const form = h("form", { class: "pl-form", id: "pl-status-form", novalidate: true },
    h("fieldset", { class: "pl-choices" },
      h("legend", {}, tr("pl_status_set")),
      choice("investigating", "pl_set_investigating"),
      choice("closed", "pl_set_closed"),
      statusError),
    h("label", { for: "pl-note" }, tr("pl_status_note")),
    h("p", { id: "pl-note-hint", class: "muted" }, tr("pl_status_note_hint")),
    note, noteError, save);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const status = new FormData(form).get("status");
    showFieldError(noteError, note, "");
    showFieldError(statusError, null, "");
    if (status === "closed" && !note.value.trim()) {
      showFieldError(noteError, note, tr("pl_err_note"));
      note.focus();
      return;
    }
    act(save, async () => {
      await api(`${BASE}/${incident.id}/status`, { method: "POST",
        body: { status, note: note.value.trim() || null } });
      notices.set(incident.id, status === "closed" ? "pl_closed_done" : "pl_status_done");
      await render();
    }, { onError: (err) => {
      const fields = fieldErrors(err);
      if (!fields) return false;
      if (fields.note) showFieldError(noteError, note, fields.note);
      const rest = Object.entries(fields).filter(([k]) => k !== "note").map(([, v]) => v);
      if (rest.length) showFieldError(statusError, null, rest.join("; "));
      return true;
    } });
  });
  box.append(form);
  return box;
}

/** What the screen shows, less the SOS section (which keeps itself current). */
function shown(node) {
  const copy = node.cloneNode(true);
  copy.querySelectorAll("#sos-live").forEach((box) => box.replaceChildren());
  return copy.innerHTML;
}

/** A timer's or a push's redraw leaves the screen alone when it would show the
 * same, when the officer started typing while it fetched, or while a pointer is
 * down: a tap on "Acknowledge" or "On the way" is never swallowed by a redraw. */
function keepCurrent(view) {
  if (pointerIsDown() || busyTyping()) return true;
  const current = root.querySelector(".pl-view");
  return Boolean(current) && shown(current) === shown(view);
}

function busyTyping() {
  // The 30 s refresh never throws away what the officer is typing.
  const active = document.activeElement;
  if (active && root.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
    return true;
  }
  // Nor the SOS's "On the way" under the officer's hands (it keeps itself current).
  if (active && active.closest && active.closest("#sos-way-form")) return true;
  return [...root.querySelectorAll("#pl-note")].some((n) => n.value.trim())
    || [...root.querySelectorAll("#pl-erdr")].some((n) => n.value !== n.defaultValue);
}

async function renderDetail(view, id, { quiet }) {
  if (quiet && busyTyping()) { view.dataset.keep = "1"; return; }
  let incident;
  try {
    incident = await api(`${BASE}/${id}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      appendPresent(view, h("p", { id: "pl-not-found" }, tr("pl_not_found")),
        h("p", {}, h("a", { href: "#/police", class: "pl-back" }, tr("pl_back"))));
      return;
    }
    throw err;
  }
  const c = incident.classification || {};
  const alert = incident.alert || {};
  const notice = notices.get(id);
  notices.delete(id);
  const reason = alert.reason ? trOr(`pl_reason_${alert.reason}`, alert.reason) : "—";
  appendPresent(view,
    h("p", {}, h("a", { href: "#/police", class: "pl-back" }, `← ${tr("pl_back")}`)),
    h("div", { class: "pl-detail-head" },
      h("h2", { id: "pl-case" }, tr("case_number", { n: incident.case_number || incident.id })),
      h("span", { class: "pl-badges" }, badges(incident))),
    notice ? h("p", { class: "pl-notice", id: "pl-notice", role: "status" }, tr(notice)) : null,
    ackSection(incident),
    incident.sos ? sosSection(incident.id) : null,
    h("section", { class: "pl-section", "aria-labelledby": "pl-record-title" },
      h("h3", { id: "pl-record-title" }, tr("pl_record")),
      h("p", { class: "pl-classification", id: "pl-classification" },
        c.summary && (!c.lang || c.lang === lang) ? c.summary : partText(incident)),
      dl([
        ["pl_occurred", `${happenedLogged(incident, tr)
          || localTime(incident.occurred_at, true)} (${ZONE})`],
        ["pl_station", incident.station_name],
        ["pl_kind", label("kinds", incident.kind)],
        ["pl_aggravating", (incident.aggravating || [])
          .map((a) => label("aggravating_circumstances", a)).join("; ")],
        ["pl_victim", label("victim_roles", incident.victim_role)],
        ["pl_on_duty", incident.on_duty ? tr("rv_yes") : tr("rv_no")],
        ["pl_police_needed", incident.police_needed ? tr("rv_yes") : tr("rv_no")],
        ["pl_note", incident.note],
        ["pl_location", locationFacts(incident.location)],
        ["pl_status", statusText(incident.status)],
      ])),
    h("section", { class: "pl-section", "aria-labelledby": "pl-route-title" },
      h("h3", { id: "pl-route-title" }, tr("pl_route")),
      dl([
        ["pl_route_reason", reason, { id: "pl-reason" }],
        alert.distance_km !== null && alert.distance_km !== undefined
          ? ["pl_distance", tr("pl_km", { km: Number(alert.distance_km).toFixed(1) })] : null,
        ["pl_post", incident.case_post_name],
        ["pl_routed_at", localTime(alert.routed_at, true)],
        alert.escalated_at ? ["pl_escalated_at", localTime(alert.escalated_at, true)] : null,
      ])),
    erdrSection(incident),
    statusSection(incident),
    evidenceSection(id, { className: "pl-section" }),
    h("section", { class: "pl-section", "aria-labelledby": "pl-history-title" },
      h("h3", { id: "pl-history-title" }, tr("pl_history")), history(incident.events)));
}

// ---------------------------------------------------------------- start

function stylesheet(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.appendChild(h("link", { rel: "stylesheet", href }));
}

function onHash() {
  const hash = location.hash;
  // A push opens /#/incidents/<id>; the crew's "My incidents" means nothing here.
  const m = hash.match(/^#\/incidents\/([0-9a-f-]{36})$/i);
  if (m) { location.replace(`#/police/incidents/${m[1].toLowerCase()}`); return; }
  if (hash === "" || hash === "#/" || hash === "#/incidents") {
    location.replace("#/police");
    return;
  }
  render();
}

export async function startPolice() {
  if (started) return;
  started = true;
  stylesheet("/css/police.css");
  document.body.classList.add("police-mode");
  root = h("section", { id: "police", class: "police", "aria-live": "polite" });
  (document.getElementById("main") || document.body).prepend(root);
  control = pushControl(t, () => lang, { id: "pl-push" });
  window.addEventListener("hashchange", onHash);
  window.addEventListener("qorgau:lang", () => render());
  // A push for this officer: show the new state now.
  navigator.serviceWorker?.addEventListener("message", (event) => {
    if (event.data && event.data.type === "push") render({ quiet: true });
  });
  setInterval(() => {
    if (document.visibilityState === "visible") render({ quiet: true });
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") render({ quiet: true });
  });
  try {
    const res = await fetch("/api/v1/law/rules");
    rules = res.ok ? await res.json() : null;
  } catch { rules = null; }
  if (!route() && !/^#\/(account|enrol\/)/.test(location.hash)) onHash();
  else await render();
}
