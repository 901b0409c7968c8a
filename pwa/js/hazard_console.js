// The station manager's hazard flags on one incident (js/console.js draws it in
// the incident's page): raise a flag for the place (address, point, radius,
// reason, months), and renew or withdraw the flags raised from it. No free
// text beyond the address: names and health data have nowhere to go.

import { api, ApiError } from "./api.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";

const BASE = "/api/v1/hazards";
const REASONS = ["threats", "violence", "weapon", "dog", "group", "other"];
const FIELDS = { address: "hz_address", lat: "hz_lat", lon: "hz_lon", radius_m: "hz_radius",
  months: "hz_months", reason: "hz_reason_label" };

const tr = (key, values) => t(currentLanguage(), key, values);
const day = (iso) => localTime(iso).slice(0, 10);

function problemText(err) {
  if (err instanceof ApiError) {
    const errors = err.problem.errors || [];
    if (errors.length) {
      return errors.map((e) => `${FIELDS[e.field] ? tr(FIELDS[e.field]) : ""}: ${e.message}`)
        .join("; ");
    }
  }
  return err && err.message ? err.message : String(err);
}

function input(name, attrs) {
  return h("p", { class: "hz-field" },
    h("label", { for: `hz-${name}` }, tr(FIELDS[name])),
    h("input", { id: `hz-${name}`, name, ...attrs }));
}

function flagItem(flag, redraw, status) {
  const state = flag.withdrawn_at ? tr("hz_withdrawn") : flag.live ? tr("hz_live")
    : tr("hz_expired");
  const act = (path) => async () => {
    try {
      await api(`${BASE}/${flag.id}/${path}`, { method: "POST" });
      await redraw();
    } catch (err) {
      status.textContent = problemText(err);
    }
  };
  return h("li", { class: "hz-item", "data-id": flag.id },
    h("strong", {}, flag.address), " · ", tr(`hz_reason_${flag.reason}`), " · ",
    h("span", { class: "hz-state" }, state), " · ",
    tr("hz_until", { date: day(flag.expires_at) }), " · ", `${flag.radius_m} m`,
    flag.withdrawn_at ? null : h("span", { class: "rv-actions" },
      h("button", { type: "button", class: "hz-renew", onclick: act("renew") }, tr("hz_renew")),
      h("button", { type: "button", class: "hz-withdraw", onclick: act("withdraw") },
        tr("hz_withdraw"))));
}

/** The "Hazard flag" section of incident `id` (`incident`: the review detail body). */
export function hazardSection(id, incident) {
  const loc = incident.location;
  const section = h("section", { class: "rv-section hz-console no-print", id: "hz-console",
    "aria-labelledby": "hz-console-title" });
  const status = h("p", { role: "status", class: "muted", id: "hz-status" });
  const list = h("ul", { class: "hz-list", id: "hz-flags" });
  const reason = h("select", { id: "hz-reason", name: "reason", required: true },
    REASONS.map((r) => h("option", { value: r }, tr(`hz_reason_${r}`))));
  const form = h("form", { class: "hz-form-console" },
    input("address", { type: "text", maxlength: 200, required: true, autocomplete: "off" }),
    input("lat", { type: "number", step: "any", min: -90, max: 90, required: true,
      value: loc ? loc.lat : "" }),
    input("lon", { type: "number", step: "any", min: -180, max: 180, required: true,
      value: loc ? loc.lon : "" }),
    input("radius_m", { type: "number", min: 10, max: 500, value: 50, required: true }),
    h("p", { class: "hz-field" }, h("label", { for: "hz-reason" }, tr("hz_reason_label")),
      reason),
    input("months", { type: "number", min: 1, max: 24, value: 12, required: true }),
    h("p", { class: "rv-actions" }, h("button", { type: "submit", id: "hz-raise" },
      tr("hz_raise"))));

  async function redraw() {
    try {
      const body = await api(`${BASE}/incident/${id}`);
      const items = body.items || [];
      list.replaceChildren(...(items.length ? items.map((f) => flagItem(f, redraw, status))
        : [h("li", { class: "muted" }, tr("hz_none_raised"))]));
    } catch (err) {
      status.textContent = problemText(err);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector("#hz-raise");
    button.disabled = true;
    try {
      await api(BASE, { method: "POST", body: {
        incident_id: id, address: data.address, reason: data.reason,
        lat: Number(data.lat), lon: Number(data.lon),
        radius_m: Number(data.radius_m), months: Number(data.months) } });
      status.textContent = tr("hz_raised");
      form.querySelector("#hz-address").value = "";
      await redraw();
    } catch (err) {
      status.textContent = problemText(err);
    } finally {
      button.disabled = false;
    }
  });

  section.append(h("h3", { id: "hz-console-title" }, tr("hz_section")),
    h("p", { class: "muted" }, tr("hz_section_hint")), list, form, status);
  redraw();
  return section;
}
