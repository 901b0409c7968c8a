// The station manager's desk: incidents of their stations (filters, search,
// sort, pages, totals, exports), one incident in full with a printable
// report, figures drawn as SVG, and the crew's device health.
//
//   #/review                    the list
//   #/review/incidents/<uuid>   one incident (its view is access-logged)
//   #/review/figures            figures
//   #/review/devices            device health
//   #/review/people             the crew: add a person, invite them
//
// js/app.js loads this module for people whose role is "manager" and calls
// startConsole(). Everything is drawn with DOM APIs: no inline script or style.

import { api, ApiError } from "./api.js";
import { barChart, stackedColumns } from "./charts.js";
import { invitationBox } from "./auth.js";
import { appendPresent, h, happenedLogged, localTime, ZONE } from "./dom.js";
import { alarmSection, openTimersSection } from "./checkin_console.js";
import { hazardSection } from "./hazard_console.js";
import { sosSection } from "./police_sos.js";
import { changeLines, eventTitle } from "./history.js";
import { evidenceSection } from "./media_view.js";
import { currentLanguage, t } from "./i18n.js";
import { replicaLag } from "./replica.js";

const BASE = "/api/v1/review";
const STATUSES = ["logged", "routed", "acknowledged", "investigating", "closed"];
const SORTS = ["-occurred_at", "occurred_at", "-received_at", "received_at",
  "-case_number", "case_number"];
const PARTS = ["1", "2", "3", "4", "5", "6"];

let lang = currentLanguage();
let started = false;
let root = null;
let rules = null;    // the law rules document: labels of kinds and victim roles
let options = null;  // crew and posts for the filters
const list = { filters: { sort: "-occurred_at" }, items: [], next: null, total: null,
  totalExact: true };
let figureRange = {};

// ---------------------------------------------------------------- helpers

const tr = (key, values) => t(lang, key, values);

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return tr("rv_seconds", { n: s });
  if (s < 3600) return tr("rv_minutes", { m: Math.floor(s / 60), s: s % 60 });
  return tr("rv_hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

function label(collection, id) {
  const item = rules && (rules[collection] || []).find((x) => x.id === id);
  return item ? (item.label[lang] || item.label.en) : id;
}

const kindLabel = (id) => label("kinds", id);
const roleLabel = (id) => label("victim_roles", id);
const circumstanceLabel = (id) => label("aggravating_circumstances", id);
const partLabel = (key) => (key === "none" ? tr("rv_part_none") : tr("rv_part_n", { n: key }));
const statusLabel = (s) => tr(`status_${s}`);

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, value);
  }
  return q.toString();
}

function problemText(err) {
  if (err instanceof ApiError) {
    const fields = (err.problem.errors || []).map((e) => `${e.field}: ${e.message}`);
    return fields.length ? fields.join("; ") : err.message;
  }
  return String(err && err.message ? err.message : err);
}

function errorBox(err) {
  return h("p", { class: "console-error", role: "alert" }, problemText(err));
}

// ---------------------------------------------------------------- frame

function route() {
  const hash = location.hash.replace(/^#/, "");
  let m = hash.match(/^\/review\/incidents\/([0-9a-f-]{36})$/i);
  if (m) return { name: "detail", id: m[1].toLowerCase() };
  if (hash === "/review/figures") return { name: "figures" };
  if (hash === "/review/devices") return { name: "devices" };
  if (hash === "/review/people") return { name: "people" };
  m = hash.match(/^\/review\/?$/);
  if (m) return { name: "list" };
  return null; // another part of the app (the account screen)
}

function nav(current) {
  const link = (href, key, name) => h("a", {
    href, class: "console-tab", "aria-current": current === name ? "page" : null,
  }, tr(key));
  return h("nav", { class: "console-nav no-print", "aria-label": tr("rv_console") },
    link("#/review", "rv_tab_incidents", "list"),
    link("#/review/figures", "rv_tab_figures", "figures"),
    link("#/review/people", "rv_tab_people", "people"),
    link("#/review/devices", "rv_tab_devices", "devices"),
    h("a", { href: "#/account", class: "console-tab" }, tr("nav_account")));
}

async function render() {
  lang = currentLanguage();
  const where = route();
  root.hidden = !where;
  document.body.classList.toggle("console-active", Boolean(where));
  if (!where) return;
  const view = h("div", { class: "console-view" });
  root.replaceChildren(nav(where.name), view);
  try {
    if (where.name === "list") await renderList(view);
    else if (where.name === "detail") await renderDetail(view, where.id);
    else if (where.name === "figures") await renderFigures(view);
    else if (where.name === "people") await renderPeople(view);
    else await renderDevices(view);
  } catch (err) {
    view.appendChild(errorBox(err));
  }
  root.dataset.ready = where.name;
  // A new screen starts at its top, its heading focused (not after a redraw in place).
  if (lastScreen !== location.hash) {
    lastScreen = location.hash;
    window.scrollTo(0, 0);
    const heading = view.querySelector("h2");
    if (heading && document.activeElement !== heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
}

let lastScreen = null;

// ---------------------------------------------------------------- the list

function select(name, choices, value, anyKey = "rv_any") {
  return h("select", { name, id: `rv-${name}` },
    h("option", { value: "" }, tr(anyKey)),
    choices.map(([v, text]) => h("option", { value: v, selected: String(value ?? "") === v },
      text)));
}

function field(name, labelKey, control) {
  return h("div", { class: "rv-field" }, h("label", { for: `rv-${name}` }, tr(labelKey)),
    control);
}

function filterForm() {
  const f = list.filters;
  const kinds = (rules?.kinds || []).map((k) => [k.id, kindLabel(k.id)]);
  const crew = (options?.crew || []).map((c) => [String(c.id), c.display_name]);
  const posts = (options?.posts || []).map((p) => [String(p.id), p.hospital_name]);
  const form = h("form", { class: "rv-filters", role: "search" },
    field("from", "rv_from", h("input", { type: "date", name: "from", id: "rv-from",
      value: f.from || "" })),
    field("to", "rv_to", h("input", { type: "date", name: "to", id: "rv-to", value: f.to || "" })),
    field("kind", "rv_kind", select("kind", kinds, f.kind)),
    field("part", "rv_part", select("part", PARTS.map((p) => [p, partLabel(p)]), f.part)),
    field("status", "rv_status", select("status", STATUSES.map((s) => [s, statusLabel(s)]),
      f.status)),
    field("reporter_id", "rv_crew", select("reporter_id", crew, f.reporter_id)),
    field("post_id", "rv_post", select("post_id", posts, f.post_id)),
    field("police_needed", "rv_urgency", select("police_needed",
      [["true", tr("rv_urgent")], ["false", tr("rv_not_urgent")]], f.police_needed)),
    field("q", "rv_search", h("input", { type: "search", name: "q", id: "rv-q",
      value: f.q || "", maxlength: 100 })),
    field("sort", "rv_sort", h("select", { name: "sort", id: "rv-sort" },
      SORTS.map((s) => h("option", { value: s, selected: f.sort === s }, tr(`rv_sort_${s}`))))),
    h("div", { class: "rv-actions" },
      h("button", { type: "submit" }, tr("rv_apply")),
      h("button", { type: "reset", class: "secondary" }, tr("rv_clear"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    list.filters = {};
    for (const [key, value] of data.entries()) if (value) list.filters[key] = String(value).trim();
    list.filters.sort ||= "-occurred_at";
    render();
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    list.filters = { sort: "-occurred_at" };
    render();
  });
  // One "Filters" control on a phone (the incidents come first); open on a desk,
  // or when a filter is in use, so the person sees what narrows the list.
  const active = Object.entries(f).filter(([k, v]) => k !== "sort" && v).length;
  const wide = window.matchMedia("(min-width: 48rem)").matches;
  return h("details", { class: "rv-filter-box no-print", id: "rv-filter-box",
    open: wide || active > 0 || filtersOpen, ontoggle: (e) => { filtersOpen = e.target.open; } },
  h("summary", {}, active ? tr("rv_filters_n", { n: active }) : tr("rv_filters")), form);
}

let filtersOpen = false;

// Seconds the last list or figures answer was behind (read from a lagging replica).
let lag = 0;
const noteLag = (response) => { lag = replicaLag(response); };
const lagNote = () => (lag ? h("p", { class: "rv-lag", id: "rv-lag", role: "status" },
  tr("rv_replica_lag", { time: duration(lag) })) : null);

async function loadPage(cursor = null) {
  const page = await api(`${BASE}/incidents?${query({ ...list.filters, limit: 50, cursor })}`,
    { onResponse: noteLag });
  list.items = cursor ? list.items.concat(page.items) : page.items;
  list.next = page.next_cursor;
  list.total = page.total;
  list.totalExact = page.total_exact !== false;
}

// Each cell carries its column's name (data-label): on a phone the table is
// drawn as one card per incident, each value under its name (console.css).
const COLUMNS = ["rv_col_case", "rv_col_time", "rv_kind", "rv_part", "rv_status", "rv_crew",
  "rv_post", "rv_urgency", "rv_erdr"];

function row(item) {
  const cells = [
    h("a", { href: `#/review/incidents/${item.id}`, class: "rv-open" }, item.case_number || item.id),
    [happenedLogged(item, tr) || localTime(item.occurred_at),
      item.occurred_at_pending
        ? h("strong", { class: "badge" }, ` ${tr("state_time_pending")}`) : ""],
    kindLabel(item.kind),
    item.legal_part ? partLabel(String(item.legal_part)) : "—",
    statusLabel(item.status),
    [item.reporter ? item.reporter.display_name : "—",
      item.victim_role ? h("span", { class: "muted" }, ` · ${roleLabel(item.victim_role)}`) : ""],
    item.post ? item.post.hospital_name : "—",
    item.police_needed ? tr("rv_urgent") : "",
    item.erdr_number || ""];
  return h("tr", { "data-id": item.id, class: item.police_needed ? "urgent" : null },
    cells.map((cell, i) => h("td", { "data-label": tr(COLUMNS[i]),
      class: cell === "" ? "rv-empty" : null }, cell)));
}

async function renderList(view) {
  await loadPage();
  const exportQuery = query({ ...list.filters, lang });
  const table = h("table", { class: "rv-table", id: "rv-list" },
    h("thead", {}, h("tr", {}, COLUMNS.map((k) => h("th", { scope: "col" }, tr(k))))),
    h("tbody", {}, list.items.map(row)));
  const more = h("button", { type: "button", class: "secondary no-print", id: "rv-more",
    hidden: !list.next }, tr("rv_more"));
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const before = list.items.length;
      await loadPage(list.next);
      table.tBodies[0].append(...list.items.slice(before).map(row));
      more.hidden = !list.next;
    } catch (err) {
      view.appendChild(errorBox(err));
    } finally {
      more.disabled = false;
    }
  });
  appendPresent(view,
    h("h2", {}, tr("rv_incidents_title")),
    lagNote(),
    await openTimersSection(),
    filterForm(),
    h("p", { class: "rv-summary" },
      h("span", { id: "rv-total", role: "status" }, tr(list.totalExact ? "rv_total" : "rv_total_more", { n: list.total })),
      " ",
      h("a", { class: "rv-export", href: `${BASE}/export.csv?${exportQuery}`, download: "" },
        tr("rv_export_csv")),
      " ",
      h("a", { class: "rv-export", href: `${BASE}/export.json?${exportQuery}`, download: "" },
        tr("rv_export_json"))),
    list.items.length ? table : h("p", {}, tr("rv_none")),
    more);
}

// ---------------------------------------------------------------- one incident

function dl(pairs) {
  return h("dl", { class: "rv-facts" }, pairs.filter(Boolean).flatMap(([k, v]) =>
    [h("dt", {}, tr(k)), h("dd", {}, v ?? "—")]));
}

function changeList(changes) {
  const lines = changeLines(changes, { lang, rules });
  return lines.length ? h("ul", { class: "history-changes" }, lines.map((l) => h("li", {}, l)))
    : "—";
}

async function renderDetail(view, id) {
  let body;
  try {
    body = await api(`${BASE}/incidents/${id}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      appendPresent(view, h("p", {}, tr("rv_not_found")), h("a", { href: "#/review" }, tr("rv_back")));
      return;
    }
    throw err;
  }
  const c = body.classification || {};
  const alert = body.alert || {};
  const loc = body.location;
  const printed = new Date().toISOString();
  const noteBox = h("textarea", { id: "rv-note", rows: 3, maxlength: 2000 },
    body.manager_note ? body.manager_note.note : "");
  const noteStatus = h("span", { role: "status", class: "muted" });
  const save = h("button", { type: "submit" }, tr("rv_note_save"));
  const noteForm = h("form", { class: "rv-note-form no-print" },
    h("label", { for: "rv-note" }, tr("rv_manager_note")), noteBox,
    h("div", { class: "rv-actions" }, save, noteStatus));
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      await api(`${BASE}/incidents/${id}/note`, { method: "PUT", body: { note: noteBox.value } });
      noteStatus.textContent = tr("rv_note_saved");
      await render();
    } catch (err) {
      noteStatus.textContent = problemText(err);
    } finally {
      save.disabled = false;
    }
  });
  const printButton = h("button", { type: "button", class: "no-print", id: "rv-print" },
    tr("rv_print"));
  printButton.addEventListener("click", () => window.print());

  const events = h("table", { class: "rv-table rv-history", id: "rv-history" },
    h("thead", {}, h("tr", {}, ["rv_col_time", "rv_event", "rv_actor", "rv_changes"]
      .map((k) => h("th", { scope: "col" }, tr(k))))),
    h("tbody", {}, (body.events || []).map((e) => h("tr", { class: "history-entry" },
      h("td", { "data-label": tr("rv_col_time") }, localTime(e.at, true)),
      h("td", { "data-label": tr("rv_event") }, eventTitle(e.kind, lang)),
      h("td", { "data-label": tr("rv_actor") }, e.actor ? e.actor.display_name : tr("rv_system")),
      h("td", { class: "rv-changes", "data-label": tr("rv_changes") },
        changeList(e.changes))))));

  appendPresent(view,
    h("header", { class: "print-only rv-print-head" },
      h("p", {}, "Qorgau · ", tr("rv_report_title")),
      h("p", { class: "muted" }, tr("rv_printed_at", { time: localTime(printed) }))),
    h("div", { class: "rv-detail-head" },
      h("h2", { id: "rv-case" }, tr("case_number", { n: body.case_number || body.id })),
      chainLine(body.chain), printButton),
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_classification")),
      // The stored wording is in the reporter's language; another screen says the part.
      h("p", { class: "rv-classification" }, c.summary && (!c.lang || c.lang === lang)
        ? c.summary : body.legal_part ? tr("pl_part", { n: body.legal_part }) : tr("rv_part_none")),
      c.disclaimer && (!c.lang || c.lang === lang) ? h("p", { class: "muted" }, c.disclaimer)
        : null,
      dl([["rv_part", body.legal_part ? partLabel(String(body.legal_part)) : "—"],
        ["rv_kind", kindLabel(body.kind)],
        ["rv_aggravating", (body.aggravating || []).map(circumstanceLabel).join("; ") || "—"],
        ["rv_victim", roleLabel(body.victim_role)],
        ["rv_on_duty", body.on_duty ? tr("rv_yes") : tr("rv_no")]])),
    h("section", { class: "rv-section", id: "rv-times" }, h("h3", {}, tr("rv_times")),
      happenedLogged(body, tr) ? h("p", { id: "rv-happened" }, happenedLogged(body, tr)) : null,
      timeCorrection(body, render),
      dl([["rv_occurred", `${localTime(body.occurred_at, true)} (${ZONE})`],
        ["rv_logged", `${localTime(body.logged_at, true)} (${ZONE})`],
        ["rv_tapped", deviceTime(body.tapped_at)],
        ["rv_received", `${localTime(body.received_at, true)} (${ZONE})`],
        body.device_time_flag ? ["rv_clock_flag",
          t(lang, `rv_clock_${body.device_time_flag}`) === `rv_clock_${body.device_time_flag}`
            ? tr("rv_clock_other") : tr(`rv_clock_${body.device_time_flag}`)] : null,
        ["rv_station", body.station ? body.station.name : "—"],
        ["rv_crew", body.reporter ? body.reporter.display_name : "—"]])),
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_police")),
      dl([["rv_status", statusLabel(body.status)],
        ["rv_urgency", body.police_needed ? tr("rv_urgent") : tr("rv_not_urgent")],
        ["rv_post", body.post ? body.post.hospital_name : "—"],
        ["rv_destination", body.destination_post ? body.destination_post.hospital_name : "—"],
        ["rv_routed_at", alert.routed_at ? localTime(alert.routed_at, true) : "—"],
        ["rv_acknowledged_at", alert.acknowledged_at
          ? `${localTime(alert.acknowledged_at, true)}${alert.acknowledged_by
            ? ` · ${alert.acknowledged_by.display_name}` : ""}` : "—"],
        ["rv_erdr", body.erdr_number || "—"]])),
    body.sos ? sosSection(id, "manager") : null, // the live SOS (js/police_sos.js)
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_location")),
      loc ? dl([["rv_coordinates", `${loc.lat.toFixed(6)}, ${loc.lon.toFixed(6)}`
        + (loc.accuracy_m ? ` (±${Math.round(loc.accuracy_m)} m)` : "")],
      ["rv_map", h("a", { href: body.map_url, target: "_blank", rel: "noopener noreferrer",
        id: "rv-map" }, tr("rv_open_map"))]])
        : h("p", {}, tr("rv_no_location"))),
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_crew_note")),
      h("p", { class: "rv-note" }, body.note || "—")),
    evidenceSection(body.id),
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_manager_note")),
      h("p", { class: "rv-note print-only" }, body.manager_note ? body.manager_note.note : "—"),
      noteForm),
    hazardSection(id, body),
    h("section", { class: "rv-section" }, h("h3", {}, tr("rv_history")), events),
    h("p", { class: "no-print" }, h("a", { href: "#/review", class: "rv-back" }, tr("rv_back"))));
}

/** The phone's own clock reading, as it said it: "2026-06-01 08:00:00 (UTC+05:00)". */
function deviceTime(iso) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(iso || "");
  if (!m) return iso || "—";
  return `${m[1]} ${m[2]} (UTC${m[3] === "Z" ? "" : m[3]})`;
}

/**
 * A stated time awaiting this manager's confirmation (too long before the tap):
 * the time, confirm and reject. The decision names the time shown, so a newer
 * correction from the crew is never confirmed unseen.
 */
function timeCorrection(body, redraw) {
  if (!body.occurred_at_pending) return null;
  const status = h("span", { role: "status", class: "muted", id: "rv-time-status" });
  const decide = async (decision, done) => {
    try {
      await api(`${BASE}/incidents/${body.id}/time-correction`,
        { method: "POST", body: { decision, occurred_at: body.occurred_at_pending } });
      status.textContent = tr(done);
      await redraw();
    } catch (err) {
      status.textContent = problemText(err);
    }
  };
  const confirm = h("button", { type: "button", id: "rv-time-confirm" }, tr("rv_time_confirm"));
  confirm.addEventListener("click", () => decide("confirm", "rv_time_confirmed"));
  const reject = h("button", { type: "button", id: "rv-time-reject" }, tr("rv_time_reject"));
  reject.addEventListener("click", () => decide("reject", "rv_time_rejected"));
  return h("div", { class: "rv-time-pending", id: "rv-time-pending" },
    h("p", {}, h("strong", {}, tr("rv_time_pending",
      { time: `${localTime(body.occurred_at_pending)} (${ZONE})` }))),
    h("div", { class: "rv-actions no-print" }, confirm, reject, status));
}

/** Whether the incident's hash chain verifies (api.ledger), on screen and in print. */
function chainLine(chain) {
  if (!chain) return null;
  return h("p", { id: "rv-chain", class: chain.verified ? "rv-chain muted" : "rv-chain error" },
    chain.verified
      ? tr("rv_chain_verified", { n: chain.events, head: (chain.head || "").slice(0, 16) })
      : tr("rv_chain_broken", { seq: chain.broken_at }));
}

// ---------------------------------------------------------------- figures

async function renderFigures(view) {
  const body = await api(`${BASE}/figures?${query({ ...figureRange, lang })}`,
    { onResponse: noteLag });
  const form = h("form", { class: "rv-filters no-print" },
    field("ffrom", "rv_from", h("input", { type: "date", id: "rv-ffrom", name: "from",
      value: body.from })),
    field("fto", "rv_to", h("input", { type: "date", id: "rv-fto", name: "to", value: body.to })),
    h("div", { class: "rv-actions" }, h("button", { type: "submit" }, tr("rv_apply"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    figureRange = { from: data.get("from"), to: data.get("to") };
    render();
  });
  const keys = [...PARTS, "none"].filter((k) => body.by_month.some((m) => m.by_part[k]));
  const timings = h("table", { class: "rv-table", id: "rv-timings" },
    h("thead", {}, h("tr", {}, ["", "rv_count", "rv_median", "rv_p90"]
      .map((k) => h("th", { scope: "col" }, k ? tr(k) : "")))),
    h("tbody", {}, [["rv_tap_to_sync", body.tap_to_sync], ["rv_sync_to_ack", body.sync_to_ack]]
      .map(([k, d]) => h("tr", {}, h("th", { scope: "row" }, tr(k)),
        h("td", { "data-label": tr("rv_count") }, d.count),
        h("td", { "data-label": tr("rv_median") }, duration(d.median_s)),
        h("td", { "data-label": tr("rv_p90") }, duration(d.p90_s))))));
  appendPresent(view,
    h("h2", {}, tr("rv_figures_title")), lagNote(), form,
    h("p", { id: "rv-figures-total" }, tr("rv_total", { n: body.total })),
    h("div", { class: "rv-charts" },
      stackedColumns(body.by_month, keys.length ? keys : ["1"], {
        title: tr("rv_chart_months"), keyLabel: partLabel, totalLabel: tr("rv_count"),
        id: "chart-months" }),
      barChart(body.by_station.map((s) => ({ label: s.label, value: s.count })), {
        title: tr("rv_chart_stations"), valueLabel: tr("rv_count"), id: "chart-stations" }),
      barChart(body.by_job.map((j) => ({ label: j.label || roleLabel(j.key), value: j.count })), {
        title: tr("rv_chart_jobs"), valueLabel: tr("rv_count"), id: "chart-jobs" }),
      h("figure", { class: "chart" }, h("figcaption", {}, tr("rv_chart_delays")), timings),
      await alarmSection({ from: body.from, to: body.to })));
}

// ---------------------------------------------------------------- devices

async function renderDevices(view) {
  const body = await api(`${BASE}/devices`);
  const rows = body.devices.map((d) => h("tr", { class: d.stale ? "stale" : null },
    h("td", {}, d.person.display_name, d.stale
      ? h("strong", { class: "badge" }, ` ${tr("rv_stale")}`) : ""),
    h("td", {}, d.station ? d.station.name : "—"),
    h("td", { class: "mono", title: d.device_id }, d.device_id.slice(0, 8)),
    h("td", {}, localTime(d.last_sync_at)),
    h("td", {}, d.outbox_size),
    h("td", {}, d.left_unsynced),
    h("td", { class: d.set_aside ? "set-aside" : null }, d.set_aside ?? 0),
    h("td", {}, d.push.status === "subscribed" ? tr("rv_push_on") : tr("rv_push_off")),
    h("td", {}, d.storage_persisted === null || d.storage_persisted === undefined
      ? tr("rv_unknown") : d.storage_persisted ? tr("rv_yes") : tr("rv_no")),
    h("td", { class: "mono" }, d.app_version || "—"),
    h("td", { class: d.media?.pending ? "set-aside" : null }, d.media
      ? `${d.media.pending} (${(d.media.pending_bytes / 1048576).toFixed(1)} MB)` : "—")));
  appendPresent(view, h("h2", {}, tr("rv_devices_title")),
    h("p", { class: "muted" }, tr("rv_devices_hint")),
    rows.length ? h("table", { class: "rv-table", id: "rv-devices" },
      h("thead", {}, h("tr", {}, ["rv_crew", "rv_station", "rv_device", "rv_last_sync",
        "rv_reported_unsynced", "rv_left_unsynced", "rv_set_aside", "rv_push", "rv_storage", "rv_app_version", "rv_media_pending"]
        .map((k) => h("th", { scope: "col" }, tr(k))))),
      h("tbody", {}, rows)) : h("p", {}, tr("rv_no_devices")));
}

// ---------------------------------------------------------------- people

let invitation = null; // {personId, url, expires_at, qr_svg}: the last link made here
let added = null;      // the id of the person just added (their row offers the invitation)

const POSITIONS = ["feldsher", "doctor", "nurse", "driver"];

async function renderPeople(view) {
  const body = await api("/api/v1/people");
  const stations = body.stations || [];
  const name = h("input", { id: "pp-name", name: "display_name", maxlength: 120, required: true,
    autocomplete: "off", "aria-describedby": "pp-name-error" });
  const position = h("select", { id: "pp-position", name: "position",
    "aria-describedby": "pp-position-error" },
  POSITIONS.map((p) => h("option", { value: p }, roleLabel(p) || p)));
  const station = h("select", { id: "pp-station", name: "station",
    "aria-describedby": "pp-station-error" },
  stations.map((s) => h("option", { value: s.code }, s.name)));
  const language = h("select", { id: "pp-language", name: "language" },
    [["ru", "Русский"], ["kk", "Қазақша"], ["en", "English"]].map(([v, text]) =>
      h("option", { value: v, selected: v === lang, lang: v }, text)));
  const errors = {};
  const errorLine = (key) => {
    errors[key] = h("p", { class: "console-error", id: `pp-${key}-error`, hidden: true });
    return errors[key];
  };
  const status = h("p", { role: "status", id: "pp-status" });
  const submit = h("button", { type: "submit", id: "pp-add" }, tr("pp_add_button"));
  const form = h("form", { class: "rv-people-form", id: "pp-form", novalidate: true },
    h("div", { class: "rv-field" }, h("label", { for: "pp-name" }, tr("pp_name")), name,
      errorLine("name")),
    h("div", { class: "rv-field" }, h("label", { for: "pp-position" }, tr("pp_position")),
      position, errorLine("position")),
    stations.length > 1 || !stations.length
      ? h("div", { class: "rv-field" }, h("label", { for: "pp-station" }, tr("rv_station")),
        station, errorLine("station"))
      : h("p", {}, `${tr("rv_station")}: ${stations[0].name}`, errorLine("station")),
    h("div", { class: "rv-field" }, h("label", { for: "pp-language" }, tr("pp_language")),
      language),
    h("div", { class: "rv-actions" }, submit), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const node of Object.values(errors)) { node.hidden = true; node.textContent = ""; }
    if (!name.value.trim()) {
      errors.name.hidden = false;
      errors.name.textContent = tr("pp_err_name");
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const person = await api("/api/v1/people", { method: "POST", body: {
        display_name: name.value.trim(), position: position.value,
        station: station.value || (stations[0] && stations[0].code), language: language.value } });
      added = person.id;
      invitation = null;
      await render();
    } catch (err) {
      const fields = err instanceof ApiError ? err.problem.errors || [] : [];
      const byField = { display_name: "name", position: "position", station: "station" };
      let shown = false;
      for (const e of fields) {
        const key = byField[e.field];
        if (key) {
          errors[key].hidden = false;
          errors[key].textContent = tr(`pp_err_${key}`);
          shown = true;
        }
      }
      if (!shown) {
        status.textContent = err instanceof ApiError && err.status === 403
          ? tr("pp_err_scope") : problemText(err);
      }
      submit.disabled = false;
    }
  });

  const invite = async (personId, button) => {
    button.disabled = true;
    try {
      invitation = { personId, ...(await api(`/api/v1/people/${personId}/invitations`,
        { method: "POST", body: {} })) };
      await render();
    } catch (err) {
      button.disabled = false;
      button.after(errorBox(err));
    }
  };
  const people = body.people || [];
  appendPresent(view,
    h("h2", {}, tr("pp_title")),
    h("p", { class: "muted" }, tr("pp_hint")),
    people.length ? h("ul", { class: "rv-people", id: "pp-list" }, people.map((p) => h("li", {
      class: p.id === added ? "rv-person added" : "rv-person", "data-person": p.id },
    h("p", { class: "rv-person-name" }, h("strong", {}, p.display_name),
      p.id === added ? h("span", { class: "rv-added" }, ` · ${tr("pp_added")}`) : ""),
    h("p", { class: "muted" }, [p.position ? roleLabel(p.position) : tr(`role_${p.role}`),
      p.station_name || p.station || "", tr("pp_passkeys", { n: p.passkeys }),
      p.active ? "" : tr("pp_inactive")].filter(Boolean).join(" · ")),
    p.active ? h("button", { type: "button", class: "secondary pp-invite",
      onclick: (e) => invite(p.id, e.currentTarget) },
    p.passkeys ? tr("pp_invite_again") : tr("pp_invite")) : null,
    invitation && invitation.personId === p.id
      ? invitationBox(invitation, lang, { id: "pp-invitation" }) : null)))
      : h("p", {}, tr("pp_none")),
    h("section", { class: "rv-section", "aria-labelledby": "pp-add-title" },
      h("h3", { id: "pp-add-title" }, tr("pp_add_title")), form));
}

// ---------------------------------------------------------------- start

function stylesheet(href, media) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.appendChild(h("link", { rel: "stylesheet", href, media }));
}

async function loadReference() {
  const [r, o] = await Promise.allSettled([
    fetch("/api/v1/law/rules").then((res) => (res.ok ? res.json() : null)),
    api(`${BASE}/options`)]);
  rules = r.status === "fulfilled" ? r.value : null;
  options = o.status === "fulfilled" ? o.value : null;
}

export async function startConsole() {
  if (started) return;
  started = true;
  stylesheet("/css/console.css");
  stylesheet("/css/print.css", "print");
  document.body.classList.add("console-mode");
  root = h("section", { id: "console", class: "console", "aria-live": "polite" });
  (document.getElementById("main") || document.body).prepend(root);
  if (!route() && !/^#\/(account|enrol\/)/.test(location.hash)) location.replace("#/review");
  window.addEventListener("hashchange", () => {
    if (location.hash === "" || location.hash === "#/") location.replace("#/review");
    else render();
  });
  // The app shell owns the language; redraw whenever it changes.
  window.addEventListener("qorgau:lang", () => render());
  await loadReference();
  await render();
}
