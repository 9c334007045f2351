// tapmesh web view: the page. Draws the service map, the services pane,
// the event list (virtualised: only the rows in sight are in the DOM) and
// the detail panel. Rows arrive from worker.js in batches; drawing happens
// at most once an animation frame. Event data only ever reaches the DOM
// through textContent and attribute values, never as HTML.
"use strict";

const ROW = 22;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const view = {
  env: null, q: "", gen: 0,
  // The rows live in the worker (absolute indices base .. total); the page
  // holds only the window it draws.
  base: 0, total: 0, shown: 0, cache: { from: 0, rows: [] }, asked: null, newestFirst: false, paused: false, manual: false,
  selected: null, stats: { received: 0, dropped: 0, lastSeq: 0, streaming: false },
  describe: null, edgeStats: {}, logs: {}, mapKey: "",
};

// ---- performance record, for the load test and for anyone curious ----
const perf = { longTasks: [], frames: [] };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      perf.longTasks.push({ start: e.startTime, duration: e.duration });
      if (perf.longTasks.length > 10000) perf.longTasks.shift();
    }
  }).observe({ type: "longtask", buffered: true });
} catch (_) { /* no long-task timing in this browser */ }
let lastFrame = 0;
function frameLoop(t) {
  if (lastFrame) {
    perf.frames.push(t - lastFrame);
    if (perf.frames.length > 10000) perf.frames.shift();
  }
  lastFrame = t;
  // Frames are recorded only when asked (a test sets
// window.tapmeshRecordFrames before the page loads, or ?perf=1): a loop on
// every frame keeps the browser drawing 60 times a second.
if (window.tapmeshRecordFrames || new URLSearchParams(location.search).has("perf")) {
  requestAnimationFrame(frameLoop);
}
}
requestAnimationFrame(frameLoop);

window.tapmeshView = {
  stats: () => ({
    loaded: view.total - view.base, lastSeq: view.stats.lastSeq, streaming: view.stats.streaming,
    filter: view.q, received: view.stats.received, dropped: view.stats.dropped, paused: view.paused,
    error: view.stats.error || null,
  }),
  // A promise (WebDriver's execute_script waits for it).
  seqs: () => ask({ cmd: "seqs" }).then((m) => m.seqs),
  perf: () => ({ longTasks: perf.longTasks.slice(), frames: perf.frames.slice() }),
};

// ---- small DOM helpers (text only) ----
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === "class") e.className = attrs[k];
    else if (k === "text") e.textContent = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  return e;
}
function value(text, clause) {
  const s = el("span", { text: text == null ? "" : String(text) });
  if (clause) { s.className = "v"; s.dataset.clause = clause; s.title = "add " + clause; }
  return s;
}
const quote = (s) => JSON.stringify(String(s));

// ---- the environment and the filter ----
const worker = new Worker("/ui/worker.js");
worker.onmessage = (m) => {
  const d = m.data;
  if (d.gen !== view.gen) return;
  if (d.kind === "batch") {
    view.stats = d.stats;
    addRows(d);
  } else if (d.kind === "edges") {
    view.edgeStats = d.edges;
    drawMap();
  } else if (d.kind === "rows") {
    view.asked = null;
    view.cache = { from: d.from, rows: d.rows };
    schedule();
  } else if (d.kind === "reply") {
    const done = replies.get(d.id);
    replies.delete(d.id);
    if (done) done(d);
  } else if (d.kind === "error") {
    showError(d.error, d.position);
  }
};

const replies = new Map();
let nextId = 0;
function ask(msg) {
  const id = ++nextId;
  return new Promise((resolve) => {
    replies.set(id, resolve);
    worker.postMessage({ ...msg, id });
  });
}

function apiBase() { return "/environments/" + encodeURIComponent(view.env); }

function setFilter(q) {
  view.q = q.trim();
  $("filter").value = q;
  showError(null);
  const url = new URL(location.href);
  url.searchParams.set("env", view.env);
  if (view.q) url.searchParams.set("q", view.q); else url.searchParams.delete("q");
  history.replaceState(null, "", url);
  const enc = encodeURIComponent(view.q);
  $("export-har").href = apiBase() + "/har" + (view.q ? "?q=" + enc : "");
  $("export-har").setAttribute("download", view.env + ".har");
  $("export-jsonl").href = apiBase() + "/events?follow=false&format=ndjson" + (view.q ? "&q=" + enc : "");
  $("export-jsonl").setAttribute("download", view.env + ".jsonl");
  view.base = 0;
  view.total = 0;
  view.shown = 0;
  view.cache = { from: 0, rows: [] };
  view.asked = null;
  view.paused = false;
  view.manual = false;
  view.gen++;
  setScroll(0);
  const lastSeq = Math.max(view.stats.lastSeq || 0, (view.describe && view.describe.last_seq) || 0);
  worker.postMessage({ cmd: "start", env: view.env, q: view.q, gen: view.gen, lastSeq });
  // The worker numbers its messages by its own count of starts.
  schedule();
}

function showError(message, position) {
  const box = $("filter-error");
  if (!message) { box.hidden = true; box.textContent = ""; $("filter").classList.remove("bad"); return; }
  box.textContent = message;
  if (position) { box.dataset.line = position.line; box.dataset.column = position.column; }
  box.hidden = false;
  $("filter").classList.add("bad");
}

function addClause(clause) {
  const cur = $("filter").value.trim();
  setFilter(cur ? cur + " && " + clause : clause);
}

// ---- the list ----
// New rows are drawn at most LIVE_DRAW_MS apart: nobody reads faster, and
// each draw of a live list lays out and paints every row in sight, which
// a machine busy with the traffic it shows can do without.
const LIVE_DRAW_MS = 250;
let lastLiveDraw = 0;
let liveTimer = 0;

function addRows(d) {
  const trimmed = d.base - view.base;
  const changed = d.total !== view.total || trimmed !== 0;
  view.base = d.base;
  view.total = d.total;
  if (!view.paused) view.shown = view.total;
  // Rows cut from the front: a paused list keeps showing the same rows.
  if (trimmed > 0 && view.paused && !view.newestFirst) setScroll($("list").scrollTop - trimmed * ROW);
  if (!changed) return;
  const wait = lastLiveDraw + LIVE_DRAW_MS - performance.now();
  if (wait <= 0) { lastLiveDraw = performance.now(); schedule(); }
  else if (!liveTimer) {
    liveTimer = setTimeout(() => { liveTimer = 0; lastLiveDraw = performance.now(); schedule(); }, wait);
  }
}

let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; drawList(); });
}

let expectedScroll = -1;
function setScroll(top) {
  const list = $("list");
  list.scrollTop = top;
  expectedScroll = list.scrollTop;
}

const pool = [];
// The absolute index of the i-th row drawn.
function indexAt(i) {
  return view.newestFirst ? view.shown - 1 - i : view.base + i;
}

function cached(index) {
  return view.cache.rows[index - view.cache.from];
}

function drawList() {
  const list = $("list");
  const space = $("list-space");
  const n = Math.max(0, view.shown - view.base);
  space.style.height = n * ROW + "px";
  if (!view.paused) setScroll(view.newestFirst ? 0 : n * ROW);
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 4);
  const count = Math.max(0, Math.min(n - first, Math.ceil(list.clientHeight / ROW) + 8));
  // Ask the worker for the rows in sight it has not sent yet.
  if (count > 0) {
    const a = indexAt(first), b = indexAt(first + count - 1);
    const lo = Math.min(a, b), hi = Math.max(a, b) + 1;
    const have = view.cache.from <= lo && view.cache.from + view.cache.rows.length >= hi;
    if (!have && !view.asked) {
      view.asked = { lo, hi };
      worker.postMessage({ cmd: "rows", gen: view.gen, from: Math.max(view.base, lo - 40), to: hi + 40 });
    }
  }
  while (pool.length < count) {
    const r = el("div", { class: "row" });
    for (const c of ["c-seq", "c-time", "c-type", "c-edge", "c-what", "c-status", "c-latency", "c-size"]) {
      r.append(el("span", { class: c }));
    }
    space.append(r);
    pool.push(r);
  }
  for (let k = 0; k < pool.length; k++) {
    const node = pool[k];
    if (k >= count) {
      node.hidden = true;
      delete node.dataset.seq;
      delete node.dataset.type;
      continue;
    }
    const row = cached(indexAt(first + k));
    if (!row) { node.hidden = true; delete node.dataset.seq; continue; }
    node.hidden = false;
    node.style.top = (first + k) * ROW + "px";
    if (node.dataset.seq === String(row.seq)) continue;
    node.dataset.seq = row.seq;
    node.dataset.type = row.type;
    const life = LIFE.test(row.type);
    node.className = "row" + (row.err ? " err" : "") + (life ? " life" : "") + (row.seq === view.selected ? " sel" : "");
    const cells = node.children;
    const edge = row.edge || "";
    fill(cells[0], row.seq, null);
    fill(cells[1], new Date(row.ts).toISOString().slice(11, 23), null);
    fill(cells[2], row.type, "type == " + quote(row.type));
    fill(cells[3], edge, edge.includes("->") ? "edge == " + quote(edge) : edge ? "service == " + quote(edge) : null);
    fill(cells[4], row.what, row.wf ? row.wf + " == " + quote(row.wv) : null);
    fill(cells[5], row.st, row.sf ? row.sf + " == " + row.sv : null);
    fill(cells[6], row.lat == null ? "" : row.lat.toFixed(row.lat < 10 ? 2 : 1) + " ms", null);
    fill(cells[7], size(row.size), null);
  }
  $("count").textContent = (view.total - view.base) + " events";
  const waiting = view.total - view.shown;
  const resume = $("resume");
  resume.hidden = !view.paused;
  resume.textContent = waiting > 0 ? waiting + " new events: resume" : "paused: resume";
  $("pause").textContent = view.paused ? "resume" : "pause";
}

const LIFE = /^(service|environment|build|health|progress)\./;

function size(n) {
  if (n == null) return "";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function fill(cell, text, clause) {
  const t = text == null ? "" : String(text);
  if (cell.textContent === t && (cell.dataset.clause || null) === clause) return;
  cell.textContent = t;
  cell.title = t;
  // A click on a row opens it; shift+click on a cell adds its clause.
  if (clause) { cell.dataset.clause = clause; cell.title += "  (shift+click: filter on " + clause + ")"; }
  else delete cell.dataset.clause;
}

// Only a scroll the user made pauses the list: a list that shrinks or
// grows scrolls too.
let userScrollAt = -1e9;
function userScrolled() { userScrollAt = performance.now(); }

function onScroll() {
  const list = $("list");
  if (Math.abs(list.scrollTop - expectedScroll) < 2) return;
  if (performance.now() - userScrollAt > 1000) return;
  const atLive = view.newestFirst
    ? list.scrollTop < ROW
    : list.scrollTop + list.clientHeight >= list.scrollHeight - ROW;
  if (!atLive && !view.paused) view.paused = true;
  else if (atLive && view.paused && !view.manual) { view.paused = false; view.shown = view.total; }
  expectedScroll = -1;
  schedule();
}

function resume() {
  view.paused = false;
  view.manual = false;
  view.shown = view.total;
  schedule();
}

// ---- the map ----
function topology() {
  const d = view.describe || {};
  const topo = d.topology || { services: [], edges: [] };
  const names = new Set(topo.services.map((s) => s.name));
  for (const n in d.services || {}) names.add(n);
  const edges = new Map();
  for (const e of topo.edges) edges.set(e.source + "->" + e.target, { source: e.source, target: e.target, protocol: e.protocol });
  for (const k in view.edgeStats) {
    if (edges.has(k)) continue;
    const [source, target] = k.split("->");
    edges.set(k, { source, target, protocol: null });
    names.add(source);
    names.add(target);
  }
  return { names: [...names], edges: [...edges.values()] };
}

function layout(names, edges) {
  const layer = new Map(names.map((n) => [n, 0]));
  // Longest path from the callers: a service sits right of what calls it.
  for (let pass = 0; pass < names.length; pass++) {
    let moved = false;
    for (const e of edges) {
      if (e.source === e.target) continue;
      const want = layer.get(e.source) + 1;
      if (want > layer.get(e.target) && want < names.length) { layer.set(e.target, want); moved = true; }
    }
    if (!moved) break;
  }
  if (layer.has("~test")) layer.set("~test", -1);
  const cols = new Map();
  for (const n of names) {
    const l = layer.get(n);
    if (!cols.has(l)) cols.set(l, []);
    cols.get(l).push(n);
  }
  const keys = [...cols.keys()].sort((a, b) => a - b);
  const room = ($("map").clientWidth || 1200) - 170;
  const gap = Math.max(190, Math.min(330, keys.length > 1 ? room / (keys.length - 1) : 330));
  const pos = new Map();
  let height = 0;
  keys.forEach((l, ci) => {
    const col = cols.get(l).sort();
    col.forEach((n, ri) => pos.set(n, { x: 20 + ci * gap, y: 20 + ri * 64 }));
    height = Math.max(height, 20 + col.length * 64);
  });
  return { pos, width: 40 + (keys.length - 1) * gap + 130, height };
}

function drawMap() {
  const { names, edges } = topology();
  const key = names.join(",") + "|" + edges.map((e) => e.source + "->" + e.target).join(",");
  const map = $("map");
  if (key !== view.mapKey) {
    view.mapKey = key;
    const { pos, width, height } = layout(names, edges);
    const into = new Map();
    const root = svg("svg", { width: Math.max(width, 300), height: Math.max(height + 10, 120) });
    for (const e of edges) {
      const a = pos.get(e.source), b = pos.get(e.target);
      if (!a || !b) continue;
      const g = svg("g", { class: "edge", "data-edge": e.source + "->" + e.target });
      const x1 = a.x + 130, y1 = a.y + 17, x2 = b.x, y2 = b.y + 17;
      const mid = (x1 + x2) / 2;
      const d = x2 > x1
        ? `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`
        : `M${x1},${y1} C${x1 + 60},${y1 - 60} ${x2 - 60},${y2 - 60} ${x2},${y2}`;
      g.append(svg("path", { d, "marker-end": "url(#arrow)" }), svg("path", { d, class: "hit" }));
      // By the arrow's head: edges fan out from a caller, so their
      // labels meet only where they start.
      const k = into.get(e.target) || 0;
      into.set(e.target, k + 1);
      const label = x2 > x1
        ? svg("text", { x: x2 - 10, y: y2 - 7 - 13 * k, "text-anchor": "end" })
        : svg("text", { x: (x1 + x2) / 2, y: Math.min(y1, y2) - 48, "text-anchor": "middle" });
      g.append(label);
      root.append(g);
    }
    for (const n of names) {
      const p = pos.get(n);
      const g = svg("g", { class: "node", "data-service": n, transform: `translate(${p.x},${p.y})` });
      const title = svg("title");
      g.append(svg("rect", { width: 130, height: 34, rx: 6 }), title);
      const t = svg("text", { x: 65, y: 21, "text-anchor": "middle" });
      t.textContent = n.length > 18 ? n.slice(0, 17) + "…" : n;
      g.append(t);
      root.append(g);
    }
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
    const tip = svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#aab2c3" });
    marker.append(tip);
    defs.append(marker);
    root.prepend(defs);
    map.replaceChildren(root);
  }
  const services = (view.describe && view.describe.services) || {};
  for (const g of map.querySelectorAll("g.node")) {
    const n = g.dataset.service;
    const st = n === "~test" ? "test" : (services[n] && services[n].state) || "waiting";
    g.dataset.state = st;
    g.querySelector("title").textContent = n + ": " + st;
  }
  for (const g of map.querySelectorAll("g.edge")) {
    const s = view.edgeStats[g.dataset.edge];
    g.dataset.rate = s ? s.rate.toFixed(1) : "0";
    g.dataset.errors = s ? s.errors.toFixed(3) : "0";
    g.dataset.p99 = s && s.p99 != null ? s.p99.toFixed(2) : "";
    g.classList.toggle("live", !!s && s.rate > 0);
    g.classList.toggle("bad", !!s && s.errors > 0);
    const label = g.querySelector("text");
    label.textContent = s
      ? `${s.rate.toFixed(1)}/s · ${(s.errors * 100).toFixed(1)}% err · p99 ${s.p99 == null ? "-" : s.p99.toFixed(1) + " ms"}`
      : "";
  }
}

// The filter for a map edge: its events, and those to the other brokers
// of a Kafka cluster the edge stands for (`broker/broker-1`).
function edgeClause(edge) {
  const s = view.edgeStats[edge];
  const others = s ? s.subs.filter((x) => x !== edge) : [];
  const exact = "edge == " + quote(edge);
  return others.length ? "(" + exact + " || edge.startsWith(" + quote(edge + "/") + "))" : exact;
}

// ---- the services pane ----
function drawServices() {
  const d = view.describe;
  if (!d) return;
  $("env-name").textContent = d.name + " (" + d.id + ")";
  const state = $("env-state");
  state.textContent = d.state;
  state.className = "state " + d.state;
  const pane = $("services");
  const names = topology().names.filter((n) => n !== "~test");
  const existing = new Map([...pane.querySelectorAll(".svc")].map((e) => [e.dataset.service, e]));
  for (const n of names) {
    let box = existing.get(n);
    if (!box) {
      box = el("div", { class: "svc" },
        el("div", {}, el("span", { class: "name", text: n }), " ", el("span", { class: "state" })),
        el("div", { class: "meta restarts" }), el("div", { class: "meta endpoints" }),
        el("div", { class: "reason" }), el("pre", { class: "log" }));
      box.dataset.service = n;
      pane.append(box);
    }
    const s = (d.services || {})[n] || { state: "waiting", restarts: 0 };
    box.dataset.state = s.state;
    const badge = box.querySelector(".state");
    badge.textContent = s.state;
    badge.className = "state " + s.state;
    box.querySelector(".restarts").textContent = "restarts: " + (s.restarts || 0) + (s.pid ? " · pid " + s.pid : "") +
      (s.exit_code != null ? " · exit " + s.exit_code : "");
    const eps = ((d.endpoints || {})[n]) || {};
    box.querySelector(".endpoints").textContent = Object.entries(eps)
      .map(([ing, e]) => ing + ": " + e.address + (e.observed ? " (observed " + e.observed + ")" : "")).join("  ");
    box.querySelector(".reason").textContent = s.state === "failed" ? (s.reason || "failed") : "";
    const log = box.querySelector("pre.log");
    const lines = (view.logs[n] || []).join("\n");
    if (log.textContent !== lines) { log.textContent = lines; log.scrollTop = log.scrollHeight; }
  }
}

async function poll() {
  try {
    const r = await fetch(apiBase());
    if (r.ok) { view.describe = await r.json(); drawServices(); drawMap(); }
  } catch (_) { /* the daemon is gone or restarting: try again */ }
}

async function pollLogs() {
  try {
    const r = await fetch(apiBase() + "/log?tail=400");
    if (!r.ok) return;
    const logs = {};
    for (const line of (await r.text()).split("\n")) {
      const i = line.indexOf(" | ");
      if (i < 0) continue;
      const n = line.slice(0, i);
      (logs[n] = logs[n] || []).push(line.slice(i + 3));
    }
    for (const n in logs) logs[n] = logs[n].slice(-20);
    view.logs = logs;
    drawServices();
  } catch (_) { /* as above */ }
}

// ---- the detail panel ----
async function openDetail(seq) {
  view.selected = seq;
  for (const n of pool) n.classList.toggle("sel", n.dataset.seq === String(seq));
  const panel = $("detail");
  const body = $("detail-body");
  panel.hidden = false;
  $("detail-title").textContent = "#" + seq;
  body.replaceChildren(el("p", { class: "note", text: "loading…" }));
  const r = await fetch(apiBase() + "/events/" + seq);
  if (view.selected !== seq) return;
  if (!r.ok) { body.replaceChildren(el("p", { class: "note", text: "event " + seq + " is not available" })); return; }
  const { event, bodies } = await r.json();
  if (view.selected !== seq) return;
  renderDetail(event, bodies || {});
}

function kv(part, obj, clauseOf) {
  const t = el("table", { class: "kv" });
  if (part) t.dataset.part = part;
  for (const [k, v] of Object.entries(obj || {})) {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    t.append(el("tr", {}, el("td", { text: k }), el("td", {}, value(text, clauseOf ? clauseOf(k, v) : null))));
  }
  return t;
}

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length && i < 65536; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    const h = [...chunk].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const a = [...chunk].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(i.toString(16).padStart(8, "0") + "  " + h.padEnd(48) + "  " + a);
  }
  return lines.join("\n");
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return null; }
}

// A body as sent (text or base64), its decompressed view when it had a
// Content-Encoding, and views to switch between.
function bodyView(part, text, encoding, truncated, decoded) {
  const views = [];
  if (decoded && !decoded.error) {
    const dtext = decoded.text != null ? decoded.text : null;
    if (dtext != null) {
      const p = pretty(dtext);
      views.push(["decompressed (" + decoded.codings.join(", ") + ")" + (decoded.truncated ? ", cut" : ""), p || dtext]);
    } else if (decoded.base64) {
      views.push(["decompressed hex", hex(b64bytes(decoded.base64))]);
    }
  }
  if (text) {
    if (encoding === "base64") {
      views.push(["hex", hex(b64bytes(text))]);
    } else {
      const p = pretty(text);
      if (p) views.push(["json", p]);
      views.push(["text", text]);
    }
  }
  if (!views.length) return el("p", { class: "note", text: "(no body)" });
  const pre = el("pre", { text: views[0][1] });
  pre.dataset.part = part;
  const tabs = el("div", { class: "tabs" });
  views.forEach(([name, content], i) => {
    const b = el("button", { type: "button", text: name, class: i === 0 ? "on" : "" });
    b.onclick = () => { pre.textContent = content; for (const x of tabs.children) x.classList.remove("on"); b.classList.add("on"); };
    tabs.append(b);
  });
  const wrap = el("div", {}, tabs, pre);
  if (truncated) wrap.append(el("p", { class: "note", text: "captured in part (capture limit)" }));
  if (decoded && decoded.error) wrap.append(el("p", { class: "note", text: "not decompressed: " + decoded.error }));
  return wrap;
}

function side(part, title, ...children) {
  const d = el("div", {}, el("h3", { text: title }), ...children);
  d.dataset.part = part;
  return d;
}

function decodedJson(part, v) {
  const p = el("pre", { text: v == null ? "(not decoded)" : JSON.stringify(v, null, 2) });
  p.dataset.part = part;
  return p;
}

function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

function endpointOf(service) {
  const eps = ((view.describe && view.describe.endpoints) || {})[service] || {};
  const first = Object.values(eps)[0];
  return first ? first.address : null;
}

function renderDetail(e, bodies) {
  const body = $("detail-body");
  const parts = [];
  const copy = $("copy-command");
  copy.hidden = true;
  const p = e.request || e.grpc_call || e.kafka_request || e.query || e.command || e.connection ||
    e.lifecycle || e.log || e.note || e.decode_error || e.notification || e.push || e.dropped || {};
  const edge = p.source != null ? p.source + "->" + p.target : e.service || "";
  $("detail-title").textContent = "#" + e.seq + " " + e.type + (edge ? " " + edge : "");
  const summary = { seq: e.seq, type: e.type, time: e.timestamp };
  if (edge) summary.edge = edge;
  if (p.latency_ms != null) summary.latency = p.latency_ms + " ms";
  const sumClause = (k, v) => k === "type" ? "type == " + quote(v) : k === "edge" && String(v).includes("->") ? "edge == " + quote(v) : null;
  const sum = kv("summary", summary, sumClause);
  parts.push(sum);
  if (e.request) {
    const r = e.request;
    const hclause = (sideName) => (k, v) => "http." + sideName + ".headers[" + quote(k) + "] == " + quote(v);
    parts.push(el("div", { class: "sides" },
      side("request", "request",
        el("div", {}, value(r.method, "http.method == " + quote(r.method)), " ", value(r.path, "http.path == " + quote(r.path)), " " + r.version),
        kv("request-headers", r.request_headers, hclause("request")),
        Object.keys(r.request_trailers || {}).length ? kv("request-trailers", r.request_trailers) : null,
        bodyView("request-body", r.request_body, r.request_body_encoding, r.request_body_truncated, bodies.request)),
      side("response", "response",
        el("div", {}, value(r.status_code == null ? (r.error || "no response") : r.status_code, r.status_code != null ? "http.status == " + r.status_code : null)),
        kv("response-headers", r.response_headers, hclause("response")),
        Object.keys(r.response_trailers || {}).length ? kv("trailers", r.response_trailers) : null,
        bodyView("response-body", r.response_body, r.response_body_encoding, r.response_body_truncated, bodies.response))));
    const host = (r.request_headers && r.request_headers.host) || endpointOf(r.target) || r.target;
    let cmd = "curl -X " + r.method + " " + shellQuote("http://" + host + r.path);
    for (const [k, v] of Object.entries(r.request_headers || {})) {
      if (k !== "host" && k !== "content-length") cmd += " -H " + shellQuote(k + ": " + v);
    }
    if (r.request_body && r.request_body_encoding === "utf8") cmd += " --data-raw " + shellQuote(r.request_body);
    offerCommand(cmd);
  } else if (e.grpc_call) {
    const c = e.grpc_call;
    const mclause = (k, v) => "grpc.metadata[" + quote(k) + "] == " + quote(v);
    const dw = el("div", { class: "note" }, "decoded with: ", value(c.decoded_with || "nothing"));
    dw.lastChild.dataset.part = "decoded-with";
    parts.push(el("div", {}, value(c.service + "/" + c.method, "grpc.method == " + quote(c.method)), "  ",
      value(c.grpc_status_name || c.grpc_status, c.grpc_status != null ? "grpc.status == " + c.grpc_status : null),
      c.grpc_message ? "  " + c.grpc_message : ""), dw);
    if ((c.decode_problems || []).length) parts.push(el("p", { class: "note", text: "decoding: " + c.decode_problems.join("; ") }));
    parts.push(el("div", { class: "sides" },
      side("request", "request (" + c.request_messages + " messages)",
        kv("request-headers", c.request_metadata, mclause), decodedJson("request-decoded", c.request_body_decoded)),
      side("response", "response (" + c.response_messages + " messages)",
        kv("response-headers", c.response_metadata), decodedJson("response-decoded", c.response_body_decoded))));
    const first = Array.isArray(c.request_body_decoded) ? c.request_body_decoded[0] : null;
    const addr = endpointOf(c.target) || c.target;
    offerCommand("grpcurl -plaintext" + (first ? " -d " + shellQuote(JSON.stringify(first)) : "") + " " + addr + " " + c.service + "/" + c.method);
  } else if (e.kafka_request) {
    const k = e.kafka_request;
    parts.push(kv("request", { api: k.api_name, version: k.api_version, correlation_id: k.correlation_id, client_id: k.client_id, error_code: k.error_code },
      (key, v) => key === "api" && v ? "kafka.api == " + quote(v) : key === "error_code" && v != null ? "kafka.error_code == " + v : null));
    const t = el("table", { class: "kv" });
    t.dataset.part = "partitions";
    t.append(el("tr", {}, el("td", { text: "topic / partition" }), el("td", { text: "records · bytes · error" })));
    for (const tp of k.topics || []) {
      t.append(el("tr", {}, el("td", {}, value(tp.topic + " / " + tp.partition, "kafka.topic == " + quote(tp.topic))),
        el("td", { text: tp.records + " · " + tp.bytes + " B" + (tp.error_code ? " · error " + tp.error_code : "") })));
    }
    parts.push(el("h3", { text: "partitions" }), t);
  } else if (e.query) {
    const q = e.query;
    const sql = el("pre", { text: q.sql || "" });
    sql.dataset.part = "sql";
    parts.push(el("h3", { text: "statement" }), sql);
    parts.push(kv("request", { command: q.command, params: q.params, rows: q.rows, database: q.database, user: q.user, transaction: q.transaction },
      (key, v) => key === "command" && v ? "sql.command == " + quote(v) : null));
    if (q.error) parts.push(el("h3", { text: "error" }), kv("error", q.error));
  } else if (e.command) {
    const c = e.command;
    parts.push(kv("request", { command: c.command, args: c.args, reply: c.reply, error: c.error },
      (key, v) => key === "command" ? "redis.command == " + quote(v) : null));
  } else {
    parts.push(kv("payload", p));
  }
  const raw = el("pre", { text: JSON.stringify(e, null, 2) });
  raw.dataset.part = "raw";
  parts.push(el("h3", { text: "raw event" }), raw);
  body.replaceChildren(...parts.filter(Boolean));
}

function offerCommand(cmd) {
  const b = $("copy-command");
  b.hidden = false;
  b.dataset.command = cmd;
  b.textContent = cmd.startsWith("grpcurl") ? "copy grpcurl" : "copy curl";
}

// ---- start ----
async function chooseEnvironment() {
  const params = new URLSearchParams(location.search);
  const wanted = params.get("env");
  if (wanted) return wanted;
  const list = await fetch("/environments").then((r) => r.json()).catch(() => []);
  const running = list.filter((e) => ["starting", "up"].includes(e.state));
  if (list.length === 1 || running.length === 1) return (running[0] || list[0]).id;
  const box = $("envs");
  box.hidden = false;
  box.replaceChildren(el("h3", { text: list.length ? "environments" : "no environment yet: start one with tapmesh up or POST /environments" }));
  for (const e of list) {
    const a = el("a", { href: "/?env=" + encodeURIComponent(e.id), text: e.name + " (" + e.id + ", " + e.state + ")" });
    box.append(el("div", {}, a));
  }
  return null;
}

async function main() {
  view.env = await chooseEnvironment();
  if (!view.env) { setTimeout(main, 2000); return; }
  $("envs").hidden = true;
  $("filter-form").onsubmit = (ev) => { ev.preventDefault(); clearTimeout(typing); setFilter($("filter").value); };
  let typing = 0;
  $("filter").oninput = () => {
    clearTimeout(typing);
    typing = setTimeout(() => { if ($("filter").value.trim() !== view.q) setFilter($("filter").value); }, 500);
  };
  $("list").addEventListener("scroll", onScroll, { passive: true });
  for (const t of ["wheel", "touchmove", "mousedown", "keydown"]) {
    $("list").addEventListener(t, userScrolled, { passive: true });
  }
  document.addEventListener("click", (ev) => {
    const v = ev.target.closest(".v[data-clause]");
    if (v) { ev.preventDefault(); ev.stopPropagation(); addClause(v.dataset.clause); return; }
    const g = ev.target.closest("g.edge");
    if (g) { setFilter(edgeClause(g.dataset.edge)); return; }
    const row = ev.target.closest("#list .row");
    if (!row || !row.dataset.seq) return;
    const cell = ev.target.closest("[data-clause]");
    if (ev.shiftKey && cell) addClause(cell.dataset.clause);
    else openDetail(Number(row.dataset.seq));
  }, true);
  $("detail-close").onclick = () => { $("detail").hidden = true; view.selected = null; schedule(); };
  $("pause").onclick = () => { if (view.paused) resume(); else { view.paused = true; view.manual = true; schedule(); } };
  $("resume").onclick = resume;
  $("order").onclick = () => {
    view.newestFirst = !view.newestFirst;
    $("order").textContent = view.newestFirst ? "newest first" : "newest last";
    for (const n of pool) delete n.dataset.seq;
    schedule();
  };
  $("copy-command").onclick = () => navigator.clipboard && navigator.clipboard.writeText($("copy-command").dataset.command);
  window.addEventListener("resize", schedule);
  // Streams held open by a page being left would take the next page's
  // connections.
  window.addEventListener("pagehide", () => worker.postMessage({ cmd: "stop" }));
  await poll();
  setFilter(new URLSearchParams(location.search).get("q") || "");
  setInterval(poll, 1000);
  pollLogs();
  setInterval(pollLogs, 2000);
}

main();
