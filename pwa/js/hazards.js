// Hazard flags on the crew's phone (and the police post's list).
//
// The phone keeps its region's live flags in IndexedDB (meta "hazards": the
// whole set from /api/v1/hazards/region, replaced at each download, so an
// expired or withdrawn flag disappears at the next sync). On the home screen
// the crew member types the call's address: the phone reads it as a building
// (js/address.js, the same rules as the server) and warns, offline too, when
// a live flag is on that building; and, where the person has already allowed
// location, when the phone is inside a flag's circle. With no list on the
// phone yet it asks the server about that one address (rate-limited).
//
// js/app.js calls startHazards(person) for crew and police, and
// stopHazards() at sign-out. Everything is drawn with DOM APIs.

import { api } from "./api.js";
import { addressKey, distanceM } from "./address.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";
import * as store from "./store.js";

const REGION_URL = "/api/v1/hazards/region";
const LOOKUP_URL = "/api/v1/hazards/lookup";
const META_KEY = "hazards";
const REFRESH_MS = 15 * 60 * 1000;
const CHECK_DELAY_MS = 300;

let person = null;
let flags = null;       // {region, generated_at, items} as last downloaded
let section = null;     // the "Address of the call" box on the home screen
let lastPosition = null;
let watchId = null;
let timer = null;
let started = false;

const lang = () => currentLanguage();
const tr = (key, values) => t(lang(), key, values);
const day = (iso) => localTime(iso).slice(0, 10);

/** Live flags (not expired at `now`) on the building `text` names. */
export function flagsForAddress(items, text, now = Date.now()) {
  const key = addressKey(text);
  if (!key) return [];
  return (items || []).filter((f) => f.address_key === key && Date.parse(f.expires_at) > now);
}

/** Live flags whose circle holds the point, nearest first, with their distance. */
export function flagsNear(items, lat, lon, now = Date.now()) {
  return (items || [])
    .filter((f) => Date.parse(f.expires_at) > now)
    .map((f) => ({ ...f, distance_m: distanceM(lat, lon, f.lat, f.lon) }))
    .filter((f) => f.distance_m <= f.radius_m)
    .sort((a, b) => a.distance_m - b.distance_m);
}

// ---------------------------------------------------------------- the download

export async function refreshFlags() {
  if (!person || !["crew", "police"].includes(person.role)) return flags;
  try {
    const body = await api(REGION_URL);
    await store.setMeta(META_KEY, { ...body, person_id: person.id });
    flags = body;
  } catch {
    // Offline or signed out: keep what the phone has (its own expiry dates still apply).
  }
  render();
  return flags;
}

async function loadKept() {
  const kept = await store.getMeta(META_KEY);
  // Flags belong to the person (their region) who downloaded them.
  flags = kept && person && kept.person_id === person.id ? kept : null;
}

// ---------------------------------------------------------------- the home screen

function reasonText(reason) {
  return tr(`hz_reason_${reason}`);
}

function warning(items, near = null) {
  return h("div", { class: "hz-warning", id: "hz-warning", role: "alert" },
    h("p", { class: "hz-warning-title" },
      h("strong", {}, near === null ? tr("hz_warning_title")
        : tr("hz_warning_near", { m: Math.round(near) }))),
    items.map((f) => h("p", { class: "hz-warning-facts" },
      tr("hz_reason", { reason: reasonText(f.reason) }), h("br"),
      tr("hz_flagged_on", { date: day(f.raised_at), until: day(f.expires_at) }))),
    h("p", { class: "hz-ask-police" }, h("strong", {}, tr("hz_ask_police"))));
}

let checkTimer = null;
let checkSeq = 0;

async function check() {
  if (!section) return;
  const input = section.querySelector("#hz-address");
  const out = section.querySelector("#hz-result");
  const seq = ++checkSeq;
  const text = input.value.trim();
  const near = lastPosition ? flagsNear(flags?.items, lastPosition.lat, lastPosition.lon) : [];
  const parts = [];
  if (text) {
    const key = addressKey(text);
    if (!key) {
      parts.push(h("p", { class: "hz-status" }, tr("hz_need_house")));
    } else if (flags) {
      const found = flagsForAddress(flags.items, text);
      parts.push(found.length ? warning(found)
        : h("p", { class: "hz-status" }, tr("hz_no_flag",
          { key, time: localTime(flags.generated_at) })));
    } else if (navigator.onLine === false) {
      parts.push(h("p", { class: "hz-status" }, tr("hz_offline_unknown")));
    } else {
      try {
        const body = await api(`${LOOKUP_URL}?${new URLSearchParams({ address: text })}`);
        if (seq !== checkSeq) return;
        const live = (body.items || []).filter((f) => Date.parse(f.expires_at) > Date.now());
        parts.push(live.length ? warning(live)
          : h("p", { class: "hz-status" }, tr("hz_no_flag_never", { key })));
      } catch (err) {
        if (seq !== checkSeq) return;
        parts.push(h("p", { class: "hz-status" }, err.message || tr("hz_offline_unknown")));
      }
    }
  }
  if (near.length && !parts.some((p) => p.id === "hz-warning")) {
    parts.unshift(warning(near, near[0].distance_m));
  }
  if (seq !== checkSeq) return;
  out.replaceChildren(...parts);
  const shown = out.querySelector("#hz-warning");
  // A warning is scrolled into sight, above the fixed "Log incident" button (its
  // scroll-margin keeps it clear of the button); no scroll when already in sight.
  if (shown) shown.scrollIntoView({ block: "nearest" });
}

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, CHECK_DELAY_MS);
}

function build() {
  const home = document.getElementById("view-home");
  if (!home) return null;
  const input = h("input", { id: "hz-address", type: "text", autocomplete: "off",
    inputmode: "text", enterkeyhint: "search", "aria-describedby": "hz-hint",
    maxlength: 200 });
  const button = h("button", { type: "submit", class: "hz-check" });
  const form = h("form", { class: "hz-form", role: "search" },
    h("label", { for: "hz-address", id: "hz-label" }), input, button);
  const box = h("section", { class: "hz-box", id: "hz-box", "aria-labelledby": "hz-title" },
    h("h2", { id: "hz-title", class: "hz-title" }),
    form,
    h("p", { id: "hz-hint", class: "hint" }),
    // A warning (role "alert") is read out at once by a screen reader.
    h("div", { id: "hz-result", class: "hz-result", "aria-live": "polite" }));
  form.addEventListener("submit", (event) => { event.preventDefault(); check(); });
  input.addEventListener("input", scheduleCheck);
  // Above the big button, which stays where the thumb is.
  home.insertBefore(box, home.querySelector(".tap-zone"));
  return box;
}

function render() {
  if (!section) return;
  section.querySelector("#hz-title").textContent = tr("hz_check_title");
  section.querySelector("#hz-label").textContent = tr("hz_address_label");
  section.querySelector(".hz-check").textContent = tr("hz_check");
  section.querySelector("#hz-hint").textContent = tr("hz_address_hint");
  check();
}

// ---------------------------------------------------------------- location

async function watchLocation() {
  if (watchId !== null || !navigator.geolocation || !navigator.permissions) return;
  try {
    // Never ask here: only a phone whose person already allowed location
    // (the tap asks for it) is watched.
    const status = await navigator.permissions.query({ name: "geolocation" });
    if (status.state !== "granted") return;
  } catch {
    return;
  }
  watchId = navigator.geolocation.watchPosition((pos) => {
    lastPosition = { lat: pos.coords.latitude, lon: pos.coords.longitude };
    check();
  }, () => {}, { enableHighAccuracy: true, maximumAge: 30000 });
}

// ---------------------------------------------------------------- start, stop

export async function startHazards(me) {
  if (!me || !["crew", "police"].includes(me.role)) return;
  person = me;
  await loadKept();
  if (me.role === "crew" && !section) section = build();
  if (started) { await refreshFlags(); return; }
  started = true;
  render();
  window.addEventListener("qorgau:lang", render);
  window.addEventListener("online", refreshFlags);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshFlags();
  });
  timer = setInterval(refreshFlags, REFRESH_MS);
  if (me.role === "crew") watchLocation();
  await refreshFlags();
}

/** Signed out: the region's flags leave the phone with the person. */
export async function stopHazards() {
  person = null;
  flags = null;
  clearInterval(timer);
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
  started = false;
  section?.remove();
  section = null;
  await store.setMeta(META_KEY, null);
}

// ---------------------------------------------------------------- the police post

/** The region's live flags as a list for the post's screen (js/police.js). */
export async function policeHazards() {
  let body = null;
  try {
    body = await api(REGION_URL);
  } catch (err) {
    return h("section", { class: "hz-police" }, h("h3", {}, tr("hz_police_title")),
      h("p", { class: "pl-error", role: "alert" }, err.message));
  }
  const items = body.items || [];
  return h("section", { class: "hz-police", id: "hz-police",
    "aria-labelledby": "hz-police-title" },
  h("h3", { id: "hz-police-title" }, tr("hz_police_title")),
  items.length
    ? h("ul", { class: "hz-list" }, items.map((f) => h("li", { class: "hz-item" },
      h("strong", {}, f.address), " · ", reasonText(f.reason), h("br"),
      h("span", { class: "muted" }, tr("hz_flagged_on",
        { date: day(f.raised_at), until: day(f.expires_at) })))))
    : h("p", {}, tr("hz_police_none")));
}
