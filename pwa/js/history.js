// An incident's server history (its events) in words, for the police and the
// manager's screens alike: each change as "what: before → after" in the
// screen's language, never a raw field name, an id or JSON. A field this file
// does not know how to say is left out rather than shown raw.

import { localTime } from "./dom.js";
import { t } from "./i18n.js";

const EMPTY = (v) => v === null || v === undefined || v === "" || v === false
  || (Array.isArray(v) && v.length === 0);

// Ids and bookkeeping: who acknowledged is the event's actor; the post is named
// by the screen; the revision is the crew app's counter.
const UNSAID = new Set(["revision", "acknowledged_by", "post_id", "device_time_flag"]);

function label(rules, lang, collection, id) {
  const item = rules && (rules[collection] || []).find((x) => x.id === id);
  return item ? (item.label[lang] || item.label.en) : null;
}

/** One value in words; null when it cannot be said without showing raw data. */
export function valueText(name, value, { lang, rules }) {
  const tr = (key, values) => t(lang, key, values);
  if (value === null || value === undefined || value === "") return "—";
  switch (name) {
    case "kind": return label(rules, lang, "kinds", value) || tr(`kind_${value}`);
    case "victim_role": return label(rules, lang, "victim_roles", value) || "—";
    case "aggravating":
      return Array.isArray(value) && value.length
        ? value.map((id) => label(rules, lang, "aggravating_circumstances", id) || "—").join("; ")
        : "—";
    case "on_duty":
    case "police_needed": return value ? tr("rv_yes") : tr("rv_no");
    case "location":
      if (typeof value !== "object" || !Number.isFinite(Number(value.lat))) return null;
      return `${Number(value.lat).toFixed(5)}, ${Number(value.lon).toFixed(5)}`
        + (Number.isFinite(Number(value.accuracy_m)) && value.accuracy_m !== null
          ? ` (±${Math.round(value.accuracy_m)} ${tr("pl_metres")})` : "");
    case "status": return tr(`status_${value}`);
    case "classification":
      if (typeof value !== "object") return null;
      return value.part ? tr("pl_part", { n: value.part }) : tr("pl_part_none");
    case "route_reason": return tr(`pl_reason_${value}`);
    case "distance_km":
      return Number.isFinite(Number(value))
        ? tr("pl_km", { km: Number(value).toFixed(1) }) : null;
    case "occurred_at": return `${localTime(value, true)}`;
    case "destination_post_id": return null; // an id: the line says only that it changed
    case "note":
    case "police_note":
    case "manager_note":
    case "erdr_number":
    case "case_number":
      return typeof value === "object" ? null : String(value);
    default: return null;
  }
}

/** The changes of one event as lines of text in `lang`. */
export function changeLines(changes, ctx) {
  const lines = [];
  for (const [name, pair] of Object.entries(changes || {})) {
    if (UNSAID.has(name)) continue;
    const [before, after] = Array.isArray(pair) && pair.length === 2 ? pair : [null, pair];
    if (EMPTY(before) && EMPTY(after)) continue;
    const what = t(ctx.lang, `field_${name}`);
    if (what === `field_${name}`) continue; // a field with no name in words: left out
    const b = valueText(name, before, ctx);
    const a = valueText(name, after, ctx);
    if (a === null || b === null) {
      lines.push(`${what}: ${t(ctx.lang, "history_changed")}`);
    } else if (EMPTY(before)) {
      lines.push(`${what}: ${a}`);
    } else {
      lines.push(`${what}: ${b} → ${a}`);
    }
  }
  return lines;
}

/** What kind of event, in words (rv_event_*), whatever the server adds later. */
export function eventTitle(kind, lang) {
  const key = `rv_event_${kind}`;
  const text = t(lang, key);
  return text === key ? t(lang, "rv_event_other") : text;
}
