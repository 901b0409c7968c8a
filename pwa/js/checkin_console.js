// The console's alarm figures (js/console.js draws them on #/review/figures):
// each post's share of SOS / police-needed-now alarms taken by an officer
// within 10 s and within 40 s, against BS 8484's 80 % and 98.5 %. And the
// stations' open check-in timers, above the incident list (where a manager's
// "no check-in" push opens).

import { api, ApiError } from "./api.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";

const URL = "/api/v1/checkin/alarm-figures";
const TIMERS_URL = "/api/v1/checkin/timers";

const tr = (key, values) => t(currentLanguage(), key, values);

function percent(share) {
  if (share === null || share === undefined) return "—";
  const text = (Math.round(share * 1000) / 10).toLocaleString(currentLanguage());
  return `${text} %`;
}

function cell(label, share, target) {
  const meets = share >= target;
  return h("td", { "data-label": label, class: meets ? "al-meets" : "al-below" },
    percent(share), " ", h("span", { class: "al-verdict" },
      `(${tr(meets ? "al_meets" : "al_below")})`));
}

function stylesheet() {
  if (document.querySelector('link[href="/css/checkin.css"]')) return;
  document.head.appendChild(h("link", { rel: "stylesheet", href: "/css/checkin.css" }));
}

/** The figure for the dates the console shows ({from, to}, either may be absent). */
export async function alarmSection(range = {}) {
  const params = new URLSearchParams();
  if (range.from) params.set("from", range.from);
  if (range.to) params.set("to", range.to);
  stylesheet();
  let body;
  try {
    body = await api(`${URL}?${params}`);
  } catch (err) {
    return h("figure", { class: "chart", id: "al-figures" },
      h("figcaption", {}, tr("al_title")),
      h("p", { role: "alert" }, err instanceof ApiError ? err.message : String(err)));
  }
  const table = body.posts.length
    ? h("table", { class: "rv-table", id: "al-table" },
      h("thead", {}, h("tr", {}, ["al_post", "al_alerts", "al_10s", "al_40s"]
        .map((k) => h("th", { scope: "col" }, tr(k))))),
      h("tbody", {}, body.posts.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.post_name),
        h("td", { "data-label": tr("al_alerts") }, p.alerts),
        cell(tr("al_10s"), p.within_10s, body.target_10s),
        cell(tr("al_40s"), p.within_40s, body.target_40s)))))
    : h("p", {}, tr("al_none"));
  return h("figure", { class: "chart", id: "al-figures" },
    h("figcaption", {}, tr("al_title")), h("p", { class: "hint" }, tr("al_hint")), table);
}

/** The stations' check-in timers nobody has closed, or null when there are none. */
export async function openTimersSection() {
  let body;
  try {
    body = await api(TIMERS_URL);
  } catch {
    return null;  // the incident list matters more than this box
  }
  const open = (body.items || []).filter((timer) => timer.state !== "safe");
  if (!open.length) return null;
  stylesheet();
  return h("section", { class: "ci-console", id: "ci-timers", "aria-labelledby": "ci-timers-title" },
    h("h3", { id: "ci-timers-title" }, tr("ct_title")),
    h("ul", {}, open.map((timer) => h("li", { class: `ci-timer ci-timer-${timer.state}` },
      h("strong", {}, timer.person_name), " · ", timer.address, h("br"),
      tr(`ct_state_${timer.state}`, { time: localTime(timer.ends_at).slice(11) }),
      timer.incident_id ? [" · ", h("a", { href: `#/review/incidents/${timer.incident_id}` },
        tr("ct_incident"))] : null))));
}
