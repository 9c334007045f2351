// tapmesh web view: small DOM helpers. Event data only ever reaches the
// DOM through textContent and attribute values, never as HTML: these are
// the only ways the page builds elements.

export const ROW = 22;
const SVG = "http://www.w3.org/2000/svg";
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === "class") e.className = attrs[k];
    else if (k === "text") e.textContent = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
export function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  return e;
}
export function value(text, clause) {
  const s = el("span", { text: text == null ? "" : String(text) });
  if (clause) { s.className = "v"; s.dataset.clause = clause; s.title = "add " + clause; }
  return s;
}
export const quote = (s) => JSON.stringify(String(s));

// The environment the page shows and everything it knows of it.
export const view = {
  env: null, q: "", gen: 0,
  // The rows live in the worker (absolute indices base .. total); the page
  // holds only the window it draws.
  base: 0, total: 0, shown: 0, cache: { from: 0, rows: [] }, asked: null, newestFirst: false, paused: false, manual: false,
  selected: null, stats: { received: 0, dropped: 0, lastSeq: 0, streaming: false },
  describe: null, edgeStats: {}, logs: {}, mapKey: "",
};

export function apiBase() { return "/environments/" + encodeURIComponent(view.env); }

