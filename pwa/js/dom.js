// Small helpers shared by the screens that build their markup in script
// (the manager console, the police screens, sign-in): no innerHTML anywhere,
// so text from people (notes, names) is always inert.

// Legal times are Kazakhstan's, whatever the device's clock zone says.
export const ZONE = "Asia/Almaty";

/** h("p", {class: "x", onclick: fn}, "text", child) -> an element. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "string" || typeof child === "number"
      ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** "2026-06-01 10:05" (or with seconds) in Almaty time. */
export function localTime(iso, withSeconds = false) {
  if (!iso) return "—";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: withSeconds ? "2-digit" : undefined, hourCycle: "h23",
  }).formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`;
}

/** node.append(...children) without the absent ones: Element.append(null) prints "null". */
export function appendPresent(node, ...children) {
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/**
 * "Happened 2026-03-06 23:40 · logged 2026-03-07 02:10" (Almaty time) when the
 * crew stated a time other than the tap's, else null. `tr` is the screen's
 * translator (key, values) -> text.
 */
export function happenedLogged(incident, tr) {
  if (!incident || !incident.logged_at || !incident.occurred_at) return null;
  if (Date.parse(incident.logged_at) === Date.parse(incident.occurred_at)) return null;
  return tr("happened_logged", { occurred: localTime(incident.occurred_at),
    logged: localTime(incident.logged_at) });
}

// A finger or mouse button is down: a redraw now would take the button from
// under it (pressed on the old one, released on the new one: no click at all).
let pointerDown = false;
if (typeof document !== "undefined") {
  for (const type of ["pointerdown", "pointerup", "pointercancel"]) {
    document.addEventListener(type, () => { pointerDown = type === "pointerdown"; }, true);
  }
}

/** Whether a screen refresh should wait: a pointer is pressed right now. */
export function pointerIsDown() {
  return pointerDown;
}
