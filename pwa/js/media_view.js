// An incident's photos and recordings for the people who review it (the
// manager's console, the police post's screen): previews without location
// (made by the server), the original to download, each one's place in the
// chain. Every preview and download is written to the access log by the server.

import { api } from "./api.js";
import { h, localTime } from "./dom.js";
import { currentLanguage, t } from "./i18n.js";

const tr = (key, values) => t(currentLanguage(), key, values);

function mb(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function entry(a) {
  const label = a.kind === "photo" ? tr("md_photo") : tr("md_audio");
  const original = `/api/v1/media/${encodeURIComponent(a.id)}/original`;
  const stored = a.status === "stored";
  return h("li", { class: "md-evidence", "data-id": a.id },
    stored && a.preview
      ? h("img", { src: `/api/v1/media/${encodeURIComponent(a.id)}/preview`, alt: label,
        loading: "lazy", width: 240 }) : null,
    h("p", {}, h("strong", {}, label), ` · ${mb(a.size)} · ${localTime(a.captured_at || a.created_at)}`),
    stored
      ? h("p", {}, h("a", { href: original, download: "" }, tr("md_download")),
        a.event_seq ? h("span", { class: "muted" }, ` · ${tr("md_sealed", { seq: a.event_seq })}`)
          : null)
      : h("p", { class: "muted" }, tr("md_still_uploading")));
}

/** A section that fills itself with the incident's media (and goes when it has none). */
export function evidenceSection(incidentId, { className = "rv-section" } = {}) {
  const section = h("section", { class: `${className} md-review`, id: "md-review",
    "aria-labelledby": "md-review-title" });
  api(`/api/v1/incidents/${encodeURIComponent(incidentId)}/media`).then((body) => {
    const items = (body && body.attachments) || [];
    if (!items.length) { section.remove(); return; } // nothing to say, no empty heading
    section.replaceChildren(h("h3", { id: "md-review-title" }, tr("md_view_title")),
      h("ul", { class: "md-previews" }, items.map(entry)));
  }).catch(() => section.remove());
  return section;
}
