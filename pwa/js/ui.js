// Rendering: the incident list and one incident's details form. DOM built
// with createElement and textContent only (no innerHTML, nothing inline), so
// it runs under `script-src 'self'; style-src 'self'` and a note can never
// inject markup.

import { t } from "./i18n.js";
import { classify, timeChange } from "./law.js";
import { localIso } from "./store.js";

// The server refuses a stated time later than its clock by more than this
// (api.incidents.service.FUTURE_TOLERANCE), and asks a station manager to
// confirm one more than this many days before the tap (its default setting).
const FUTURE_TOLERANCE_MS = 5 * 60 * 1000;
const DAYS_BEFORE_TAP = 7;

export const KINDS = ["unspecified", "threat", "violence", "violence_dangerous", "other"];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

export function formatTime(iso, lang, withDate = false) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const opts = withDate ? { dateStyle: "medium", timeStyle: "short" } : { timeStyle: "short" };
  try {
    return new Intl.DateTimeFormat(lang === "kk" ? "kk-KZ" : lang, opts).format(ms);
  } catch {
    return iso;
  }
}

/** The states a person sees for one incident, most important first. */
export function incidentStates(record, lang) {
  const states = [];
  if (record.rejected && record.rejected.revision >= record.revision) {
    states.push({ cls: "state-rejected", text: t(lang, "state_rejected") });
  } else if (record.pending && record.set_aside && record.set_aside.revision >= record.revision) {
    states.push({ cls: "state-set-aside", text: t(lang, "state_set_aside") });
  } else if (record.pending) {
    states.push({ cls: "state-local", text: t(lang, "state_local") });
  }
  if (record.synced_revision > 0) states.push({ cls: "state-sent", text: t(lang, "state_sent") });
  const server = record.server || {};
  if (server.case_number) {
    states.push({ cls: "state-case", text: t(lang, "case_number", { n: server.case_number }) });
  }
  if (server.status && server.status !== "logged") {
    states.push({ cls: `state-${server.status}`, text: t(lang, `status_${server.status}`) });
  }
  if (server.occurred_at_pending) {
    states.push({ cls: "state-time-pending", text: t(lang, "state_time_pending") });
  }
  return states;
}

function stateList(record, lang) {
  return el("ul", { class: "states" },
    incidentStates(record, lang).map((s) => el("li", { class: `state ${s.cls}`, text: s.text })));
}

function rejectionReasons(record, lang) {
  if (!(record.rejected && record.rejected.revision >= record.revision)) return null;
  const errors = record.rejected.errors || [];
  const text = (e) => {
    const key = `reject_${e.field}`;
    if (t(lang, key) !== key) return t(lang, key);
    return e.field ? `${e.field}: ${e.message}` : e.message;
  };
  return el("ul", { class: "reasons", role: "alert" }, errors.map((e) => el("li", { text: text(e) })));
}

/** When it happened: the stated time, else the tap's. */
export function occurredAt(record) {
  return record.occurred_at || record.tapped_at;
}

/** "Happened … · logged …" when the stated time is not the tap's, else null. */
export function happenedLogged(record, lang) {
  const occurred = occurredAt(record);
  if (Date.parse(occurred) === Date.parse(record.tapped_at)) return null;
  return t(lang, "happened_logged", { occurred: formatTime(occurred, lang, true),
    logged: formatTime(record.tapped_at, lang, true) });
}

/** Local classification from the cached rules; null when the rules are missing or refuse. */
export function localClassification(rules, record, me, lang) {
  if (!rules) return null;
  try {
    return classify(rules, {
      kind: record.kind,
      aggravating: record.aggravating || [],
      // The server defaults the victim to the reporter's position; do the same.
      victim_role: record.victim_role || me?.position || "other_medical",
      on_duty: record.on_duty !== false,
      occurred_at: occurredAt(record),
    }, lang);
  } catch (err) {
    return { summary: String(err.message), penalties: [], disclaimer: "", status: "error" };
  }
}

function shortClassification(result, lang) {
  if (!result) return t(lang, "rules_missing_short");
  return result.summary;
}

export function renderList(container, empty, records, { rules, me, lang }) {
  container.replaceChildren();
  empty.hidden = records.length > 0;
  for (const record of records) {
    const server = record.server || {};
    // The server words its classification in the person's profile language;
    // the screen speaks the phone's: the server's words only when they match.
    const fromServer = server.classification?.summary && server.revision === record.revision
      && (server.classification.lang === lang || !rules);
    const summary = fromServer ? server.classification.summary
      : shortClassification(localClassification(rules, record, me, lang), lang);
    container.append(el("li", { class: "incident-item" },
      el("a", { href: `#/incidents/${record.id}`, class: "incident-link" },
        el("span", { class: "when", text: happenedLogged(record, lang)
          || t(lang, "logged_at", { time: formatTime(record.tapped_at, lang, true) }) }),
        stateList(record, lang),
        el("span", { class: "summary", text: summary })),
      rejectionReasons(record, lang)));
  }
}

function fieldNames(fields, lang) {
  return fields.map((f) => t(lang, `field_${f}`)).join(", ");
}

function historyItem(rev, lang, receipts) {
  let what;
  if (rev.source === "tap") what = t(lang, "history_tap");
  else if (rev.source === "location") what = t(lang, "history_location");
  else what = t(lang, "history_edit", { fields: fieldNames(rev.changed || [], lang) });
  return el("li", {},
    el("span", { class: "when", text: `${formatTime(rev.saved_at, lang, true)} · ` +
      t(lang, "history_revision", { r: rev.revision }) }), " ", what,
    receipts && receipts[rev.revision]
      ? el("span", { class: "receipt", text: ` · ${t(lang, "receipt_kept")}` }) : "");
}

function checkbox(id, label, checked, onChange) {
  const input = el("input", { type: "checkbox", id, checked: Boolean(checked) });
  input.addEventListener("change", () => onChange(input.checked));
  return el("div", { class: "check" }, input, el("label", { for: id, text: label }));
}

/**
 * One incident: states, the details form (each change saved at once through
 * `save(changes)`), the live provisional classification, and the history.
 * The form is built once per visit; refresh() redraws everything around it,
 * so a save never steals the focus or the caret from the field in use.
 */
export function renderIncident(container, record, ctx) {
  const { rules, me, lang, posts, save } = ctx;
  container.replaceChildren();
  if (!record) {
    container.append(el("p", { text: t(lang, "not_found") }));
    return { refresh() {} };
  }
  const head = el("div", { class: "incident-head" });
  const live = el("div", { class: "incident-live" });

  const form = el("form", { class: "details", novalidate: true });
  form.addEventListener("submit", (e) => e.preventDefault());

  // What happened
  const kinds = el("fieldset", {}, el("legend", { text: t(lang, "kind_legend") }));
  for (const kind of KINDS) {
    const id = `kind-${kind}`;
    const input = el("input", { type: "radio", name: "kind", id, value: kind,
      checked: record.kind === kind });
    input.addEventListener("change", () => { if (input.checked) save({ kind }); });
    kinds.append(el("div", { class: "check" }, input, el("label", { for: id,
      text: t(lang, `kind_${kind}`) })));
  }
  form.append(kinds, whenField(record, lang, save));

  // Aggravating circumstances: the article's own list, from the rules.
  const circumstances = rules?.aggravating_circumstances || [];
  if (circumstances.length) {
    const agg = el("fieldset", {}, el("legend", { text: t(lang, "aggravating_legend") }));
    // Read the whole set from the boxes, in the rules' order, so equal sets are equal.
    const chosen = () => circumstances.map((c) => c.id)
      .filter((id) => agg.querySelector(`#agg-${id}`).checked);
    for (const c of circumstances) {
      agg.append(checkbox(`agg-${c.id}`, c.label[lang] || c.label.en,
        (record.aggravating || []).includes(c.id), () => save({ aggravating: chosen() })));
    }
    form.append(agg);
  }

  form.append(checkbox("police-needed", t(lang, "police_needed"), record.police_needed,
    (on) => save({ police_needed: on })));
  form.append(checkbox("on-duty", t(lang, "on_duty"), record.on_duty !== false,
    (on) => save({ on_duty: on })));

  // Who was attacked (defaults to the signed-in crew member's position).
  const roles = rules?.victim_roles || [];
  if (roles.length) {
    const select = el("select", { id: "victim-role" });
    const current = record.victim_role || me?.position || "";
    if (!current) select.append(el("option", { value: "", text: "—" }));
    for (const r of roles) {
      select.append(el("option", { value: r.id, selected: r.id === current,
        text: r.label?.[lang] || r.id }));
    }
    select.addEventListener("change", () => save({ victim_role: select.value || null }));
    form.append(el("div", { class: "field" },
      el("label", { for: "victim-role", text: t(lang, "victim_role_label") }), select));
  }

  // Destination hospital: only when the server has told us the posts.
  if (posts && posts.length) {
    const select = el("select", { id: "destination" },
      el("option", { value: "", text: t(lang, "destination_none") }));
    for (const p of posts) {
      select.append(el("option", { value: String(p.id),
        selected: record.destination_post_id === p.id,
        text: p.hospital_name || p.name || p.code }));
    }
    select.addEventListener("change", () => save(
      { destination_post_id: select.value ? Number(select.value) : null }));
    form.append(el("div", { class: "field" },
      el("label", { for: "destination", text: t(lang, "destination") }), select));
  }

  // A short note: saved when the person pauses or leaves the field.
  const note = el("textarea", { id: "note", maxlength: 2000, rows: 3,
    "aria-describedby": "note-hint" });
  note.value = record.note || "";
  let noteTimer = null;
  const saveNote = () => { clearTimeout(noteTimer); save({ note: note.value.slice(0, 2000) }); };
  note.addEventListener("input", () => {
    clearTimeout(noteTimer);
    noteTimer = setTimeout(saveNote, 800);
  });
  note.addEventListener("change", saveNote);
  form.append(el("div", { class: "field" },
    el("label", { for: "note", text: t(lang, "note") }), note,
    el("p", { id: "note-hint", class: "hint", text: t(lang, "note_hint") })));

  container.append(head, el("p", { class: "hint", text: t(lang, "details_hint") }), form, live);

  function refresh(current, extra = {}) {
    const { revisions, serverEvents, locationState } = extra;
    head.replaceChildren(
      el("p", { class: "when", id: "incident-when", text: happenedLogged(current, lang)
        || t(lang, "logged_at", { time: formatTime(current.tapped_at, lang, true) }) }),
      stateList(current, lang),
      rejectionReasons(current, lang) || "",
      el("p", { class: "location", id: "location-state",
        text: locationText(current, locationState, lang) }));
    live.replaceChildren(classificationBox(rules, current, me, lang),
      historyBox(revisions, serverEvents, lang, current.receipts));
  }
  return { refresh };
}

function classificationBox(rules, record, me, lang) {
  // Live provisional classification (offline too: cached rules + law.js).
  const result = localClassification(rules, record, me, lang);
  const box = el("section", { class: "classification", "aria-live": "polite",
    "aria-labelledby": "classification-title" },
    el("h3", { id: "classification-title", text: t(lang, "classification") }));
  if (!result) {
    box.append(el("p", { text: t(lang, "classification_unavailable") }));
  } else {
    box.append(el("p", { class: "summary", id: "classification-summary", text: result.summary }));
    if (result.penalties?.length) {
      box.append(el("p", { class: "label", text: t(lang, "penalties") }),
        el("ul", {}, result.penalties.map((p) => el("li", { text: p.text }))));
    }
    box.append(...warningItems(result.warnings));
    // A stated time that leaves the article's scope or moves the MCI year says so.
    box.append(...timeNotes(rules, record, lang));
    if (result.disclaimer) box.append(el("p", { class: "disclaimer", text: result.disclaimer }));
  }
  const server = record.server || {};
  const sc = server.classification;
  if (sc?.summary && result && sc.lang && sc.lang !== lang) {
    // Worded in another language (the profile's): say only what differs, in ours.
    if ((sc.part || null) !== (result.part || null)) {
      box.append(el("p", { class: "label", text: t(lang, "classification_server") }),
        el("p", { text: sc.part ? t(lang, "pl_part", { n: sc.part }) : t(lang, "pl_part_none") }));
    }
  } else if (sc?.summary) {
    box.append(el("p", { class: "label", text: t(lang, "classification_server") }),
      el("p", { text: server.classification.summary }));
    // Only what the local result did not already say (e.g. no rules on the phone).
    const shown = new Set((result?.warnings || []).map((w) => w.code));
    box.append(...warningItems((server.classification.warnings || [])
      .filter((w) => !shown.has(w.code))));
  }
  return box;
}

function timeNotes(rules, record, lang) {
  if (!rules || !record.occurred_at) return [];
  try {
    return timeChange(rules, record.tapped_at, record.occurred_at, lang)
      .map((n) => el("p", { class: "law-warning time-note", text: n.text }));
  } catch {
    return [];
  }
}

// The value of a datetime-local input for an instant, in the phone's own zone.
function pickerValue(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  return localIso(new Date(ms)).slice(0, 16);
}

/**
 * "When did it happen?": quick choices and a picker, defaulting to the tap.
 * A choice is saved as a revision (the outbox sends it like any other field);
 * a time in the future is refused here as the server would refuse it.
 */
function whenField(record, lang, save) {
  const box = el("fieldset", { class: "when-field", id: "when" },
    el("legend", { text: t(lang, "when_legend") }));
  const picker = el("input", { type: "datetime-local", id: "when-picker", step: 60 });
  picker.value = pickerValue(occurredAt(record));
  const message = el("p", { class: "hint", id: "when-message", role: "status" });
  const choose = (date) => {
    if (Number.isNaN(date.getTime())) return;
    if (date.getTime() > Date.now() + FUTURE_TOLERANCE_MS) {
      message.textContent = t(lang, "when_future");
      return;
    }
    const tap = Date.parse(record.tapped_at);
    message.textContent = date.getTime() < tap - DAYS_BEFORE_TAP * 86400000
      ? t(lang, "when_needs_manager", { days: DAYS_BEFORE_TAP }) : "";
    picker.value = pickerValue(localIso(date));
    save({ occurred_at: localIso(date) });
  };
  const quick = el("div", { class: "when-quick" });
  for (const [key, minutes] of [["now", 0], ["15", 15], ["60", 60]]) {
    const button = el("button", { type: "button", id: `when-${key}`, text: t(lang, `when_${key}`) });
    button.addEventListener("click", () => choose(new Date(Date.now() - minutes * 60000)));
    quick.append(button);
  }
  const atTap = el("button", { type: "button", id: "when-tap", text: t(lang, "when_tap") });
  atTap.addEventListener("click", () => {
    message.textContent = "";
    picker.value = pickerValue(record.tapped_at);
    save({ occurred_at: record.tapped_at });
  });
  quick.append(atTap);
  // A datetime-local value has no zone: the phone's own, as the person reads it.
  picker.addEventListener("change", () => { if (picker.value) choose(new Date(picker.value)); });
  box.append(quick, el("div", { class: "field" },
    el("label", { for: "when-picker", text: t(lang, "when_pick") }), picker),
  el("p", { class: "hint", text: t(lang, "when_hint") }), message);
  return box;
}

// Warnings of a classification (e.g. no MCI for the year: amounts in MCI only).
function warningItems(warnings) {
  return (warnings || []).map((w) => el("p", { class: "law-warning", text: w.text }));
}

function historyBox(revisions, serverEvents, lang, receipts) {
  // Every revision saved on the phone, and the server's events when online.
  const history = el("section", { class: "history", "aria-labelledby": "history-title" },
    el("h3", { id: "history-title", text: t(lang, "history") }),
    el("ol", {}, [...(revisions || [])].reverse().map((rev) => historyItem(rev, lang, receipts))));
  if (serverEvents && serverEvents.length) {
    history.append(el("h4", { text: t(lang, "server_events") }),
      el("ol", {}, serverEvents.map((ev) => {
        const key = `event_${ev.kind}`;
        const what = t(lang, key) === key ? String(ev.kind || "") : t(lang, key);
        return el("li", {},
          el("span", { class: "when", text: `${formatTime(ev.at || "", lang, true)} · ` }),
          what, ev.actor?.display_name ? ` (${ev.actor.display_name})` : "");
      })));
  }
  return history;
}

function locationText(record, state, lang) {
  if (record.location) {
    return t(lang, "location_saved", { m: Math.round(record.location.accuracy_m ?? 0) });
  }
  if (state === "waiting") return t(lang, "location_waiting");
  return t(lang, "location_unavailable");
}
