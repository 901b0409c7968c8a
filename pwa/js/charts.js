// SVG charts drawn by the app itself: no chart library, no request to anyone.
// Built with DOM APIs (createElementNS), so a strict Content-Security-Policy
// holds; colours come from classes in css/console.css. Every chart is a
// <figure> with the numbers beside it in a table, so nothing depends on
// reading a picture.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function html(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function numbersTable(headers, rows) {
  const table = html("table", { class: "chart-numbers" });
  const head = table.createTHead().insertRow();
  for (const h of headers) head.appendChild(html("th", { scope: "col" }, h));
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((cell, i) => tr.appendChild(html(i === 0 ? "th" : "td",
      i === 0 ? { scope: "row" } : {}, String(cell))));
  }
  return table;
}

// Horizontal bars: [{label, value}]. Returns <figure class="chart">.
export function barChart(items, { title, valueLabel, id }) {
  const figure = html("figure", { class: "chart", ...(id ? { id } : {}) });
  figure.appendChild(html("figcaption", {}, title));
  const rowH = 26;
  const labelW = 170;
  const width = 520;
  const height = Math.max(1, items.length) * rowH + 8;
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title, class: "chart-svg" });
  items.forEach((item, n) => {
    const y = 4 + n * rowH;
    const w = Math.round(((width - labelW - 60) * item.value) / max);
    svg.appendChild(el("text", { x: labelW - 6, y: y + 17, class: "chart-label",
      "text-anchor": "end" }, item.label));
    svg.appendChild(el("rect", { x: labelW, y: y + 3, width: Math.max(w, item.value ? 2 : 0),
      height: rowH - 8, class: "chart-bar" }));
    svg.appendChild(el("text", { x: labelW + w + 6, y: y + 17, class: "chart-value" },
      String(item.value)));
  });
  figure.appendChild(svg);
  figure.appendChild(numbersTable(["", valueLabel], items.map((i) => [i.label, i.value])));
  return figure;
}

// Stacked columns per month: months [{month, total, by_part}], keys in stack order.
export function stackedColumns(months, keys, { title, keyLabel, totalLabel, id }) {
  const figure = html("figure", { class: "chart", ...(id ? { id } : {}) });
  figure.appendChild(html("figcaption", {}, title));
  const colW = 34;
  const left = 34;
  const top = 10;
  const plotH = 160;
  const width = left + Math.max(1, months.length) * colW + 10;
  const height = top + plotH + 40;
  const max = Math.max(1, ...months.map((m) => m.total));
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title, class: "chart-svg" });
  svg.appendChild(el("line", { x1: left, y1: top + plotH, x2: width - 4, y2: top + plotH,
    class: "chart-axis" }));
  svg.appendChild(el("text", { x: left - 4, y: top + 8, class: "chart-value",
    "text-anchor": "end" }, String(max)));
  svg.appendChild(el("text", { x: left - 4, y: top + plotH, class: "chart-value",
    "text-anchor": "end" }, "0"));
  months.forEach((m, n) => {
    const x = left + n * colW + 4;
    let y = top + plotH;
    keys.forEach((key, k) => {
      const value = m.by_part[key] || 0;
      if (!value) return;
      const h = (plotH * value) / max;
      y -= h;
      const rect = el("rect", { x, y, width: colW - 8, height: Math.max(h, 1),
        class: `chart-bar part-${k}` });
      rect.appendChild(el("title", {}, `${m.month} · ${keyLabel(key)}: ${value}`));
      svg.appendChild(rect);
    });
    if (m.total) {
      svg.appendChild(el("text", { x: x + (colW - 8) / 2, y: y - 3, class: "chart-value",
        "text-anchor": "middle" }, String(m.total)));
    }
    svg.appendChild(el("text", { x: x + (colW - 8) / 2, y: top + plotH + 14,
      class: "chart-label", "text-anchor": "middle" }, m.month.slice(5)));
    if (n === 0 || m.month.endsWith("-01")) {
      svg.appendChild(el("text", { x: x + (colW - 8) / 2, y: top + plotH + 28,
        class: "chart-label", "text-anchor": "middle" }, m.month.slice(0, 4)));
    }
  });
  figure.appendChild(svg);
  const legend = html("ul", { class: "chart-legend" });
  keys.forEach((key, k) => {
    const li = html("li");
    li.appendChild(html("span", { class: `swatch part-${k}`, "aria-hidden": "true" }));
    li.appendChild(document.createTextNode(keyLabel(key)));
    legend.appendChild(li);
  });
  figure.appendChild(legend);
  figure.appendChild(numbersTable(["", ...keys.map(keyLabel), totalLabel],
    months.map((m) => [m.month, ...keys.map((key) => m.by_part[key] || 0), m.total])));
  return figure;
}
