// The SOS part of the officer's incident screen (js/police.js draws it for an
// incident with sos: true): open or stood down, DURESS when the crew member
// was made to cancel, the newest location fix with its age and accuracy and
// links to open it in 2GIS, Yandex Maps and Google Maps, the last fixes in
// order, and "On the way" with an optional estimated arrival. It asks the
// server again every few seconds while it is on screen, and the age ticks
// every second.

import { api, ApiError } from "./api.js";
import { appendPresent, h, localTime, pointerIsDown } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";

const BASE = "/api/v1/sos";
export const REFRESH_MS = 3000;
const tr = (key, values) => t(currentLanguage(), key, values);

/** The three map links for a point (the apps crews and officers in Kazakhstan use). */
export function mapLinks(lat, lon) {
  const la = Number(lat).toFixed(6);
  const lo = Number(lon).toFixed(6);
  return [
    ["2gis", "2GIS", `https://2gis.kz/geo/${lo},${la}`],
    ["yandex", "Yandex Maps", `https://yandex.kz/maps/?pt=${lo},${la}&z=17&l=map`],
    ["google", "Google Maps", `https://www.google.com/maps/search/?api=1&query=${la},${lo}`],
  ];
}

function age(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 90 ? tr("sos_age_s", { n: s }) : tr("sos_age_min", { n: Math.round(s / 60) });
}

function fixBlock(fix) {
  if (!fix) return h("p", { id: "sos-fix-none" }, tr("sos_fix_none"));
  const when = fix.fixed_at || fix.received_at;
  return h("div", { class: "sos-fix", id: "sos-fix" },
    h("p", {},
      h("span", { class: "pl-coords", id: "sos-fix-coords" },
        `${Number(fix.lat).toFixed(6)}, ${Number(fix.lon).toFixed(6)}`),
      " ",
      h("span", { id: "sos-fix-accuracy" }, fix.accuracy_m !== null && fix.accuracy_m !== undefined
        ? tr("sos_accuracy", { m: Math.round(fix.accuracy_m) }) : tr("sos_accuracy_unknown"))),
    h("p", { class: "muted" }, tr("sos_fix_at", { time: localTime(when, true) }), " · ",
      h("span", { id: "sos-fix-age", "data-at": when }, age(when))),
    h("p", { class: "sos-maps" }, mapLinks(fix.lat, fix.lon).map(([id, name, href]) =>
      h("a", { id: `sos-map-${id}`, class: "pl-map sos-map", href, target: "_blank",
        rel: "noopener noreferrer" }, name))));
}

function trail(list) {
  if (!list || list.length < 2) return null;
  return h("details", { class: "sos-trail" },
    h("summary", {}, tr("sos_trail", { n: list.length })),
    h("ol", { id: "sos-trail" }, list.map((f) => h("li", { class: "sos-trail-fix" },
      `${localTime(f.fixed_at || f.received_at, true)} · ${Number(f.lat).toFixed(5)}, `
      + `${Number(f.lon).toFixed(5)}`
      + (f.accuracy_m !== null && f.accuracy_m !== undefined
        ? ` (±${Math.round(f.accuracy_m)} ${tr("pl_metres")})` : "")))));
}

function onTheWay(alarm, box, role) {
  if (alarm.on_the_way) {
    const way = alarm.on_the_way;
    return h("p", { id: "sos-on-the-way-done", class: "pl-done" }, way.eta_minutes
      ? tr("sos_way_done_eta", { officer: way.officer || "—", eta: way.eta_minutes,
        time: localTime(way.at, true) })
      : tr("sos_way_done", { officer: way.officer || "—", time: localTime(way.at, true) }));
  }
  if (!alarm.open || role !== "police") return null;
  const eta = h("input", { id: "sos-eta", name: "eta_minutes", type: "number", min: 1, max: 240,
    inputmode: "numeric", "aria-describedby": "sos-eta-error" });
  const error = h("p", { id: "sos-eta-error", class: "pl-field-error", role: "alert",
    hidden: true });
  const button = h("button", { type: "submit", class: "pl-primary", id: "sos-on-the-way" },
    tr("sos_way_button"));
  const form = h("form", { class: "pl-form", id: "sos-way-form", novalidate: true },
    h("label", { for: "sos-eta" }, tr("sos_eta_label")), eta, error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = eta.value.trim();
    const minutes = value ? Number(value) : null;
    if (value && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 240)) {
      error.hidden = false;
      error.textContent = tr("sos_eta_error");
      return;
    }
    button.disabled = true;
    try {
      const body = await api(`${BASE}/${alarm.id}/on-the-way`, { method: "POST",
        body: { eta_minutes: minutes } });
      box.drawn = ++box.asked;
      draw(box, body, role, { force: true });
    } catch (err) {
      error.hidden = false;
      error.textContent = err instanceof ApiError ? err.message : tr("pl_err_offline");
      button.disabled = false;
    }
  });
  return form;
}

function draw(box, alarm, role, { force = false } = {}) {
  // The refresh never redraws under the officer's hands (an ETA being typed, the
  // button being pressed): only after their own action.
  const form = box.querySelector("#sos-way-form");
  if (!force && ((form && form.contains(document.activeElement)) || pointerIsDown())) return;
  box.dataset.open = alarm.open ? "1" : "0";
  box.replaceChildren();
  appendPresent(box,
    h("h3", { id: "sos-live-title" }, tr("sos_live_title")),
    alarm.duress ? h("p", { class: "sos-duress", id: "sos-duress", role: "alert" },
      tr("sos_duress_police", { time: localTime(alarm.duress_at, true) })) : null,
    h("p", { id: "sos-state", class: alarm.open ? "sos-state-open" : "sos-state-over" },
      alarm.open ? tr("sos_state_open", { person: alarm.person, station: alarm.station })
        : tr("sos_state_over", { time: localTime(alarm.stood_down_at, true) })),
    fixBlock(alarm.fix),
    trail(alarm.trail),
    onTheWay(alarm, box, role));
}

/** The SOS section for the incident screen; it keeps itself current while shown. */
export function sosSection(incidentId, role = "police") {
  const box = h("section", { class: "pl-section sos-live", id: "sos-live",
    "aria-labelledby": "sos-live-title" }, h("h3", { id: "sos-live-title" },
    tr("sos_live_title")));
  // Answers can arrive out of order: one asked before the officer's own "On the
  // way" must not draw over what that action's answer drew.
  box.asked = 0;
  box.drawn = 0;
  const load = async () => {
    const mine = ++box.asked;
    try {
      const alarm = await api(`${BASE}/${incidentId}`);
      if (mine < box.drawn) return;
      box.drawn = mine;
      draw(box, alarm, role);
    } catch { /* kept as last drawn; the next round tries again */ }
  };
  load();
  const timer = setInterval(() => {
    if (!box.isConnected) { clearInterval(timer); return; }
    const ageNode = box.querySelector("#sos-fix-age");
    if (ageNode) ageNode.textContent = age(ageNode.dataset.at);
  }, 1000);
  const refresh = setInterval(() => {
    if (!box.isConnected) { clearInterval(refresh); return; }
    if (document.visibilityState === "visible") load();
  }, REFRESH_MS);
  return box;
}
