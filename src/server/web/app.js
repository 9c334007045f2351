// tapmesh web view: the page's entry. The filter, the event list
// (virtualised: the rows live in worker.js, and only those in sight are
// asked for and put in the DOM; a live list is redrawn at most four times
// a second) and the polling of the environment's state; map.js draws the
// map and the services, detail.js the detail panel. Event data only ever
// reaches the DOM through textContent and attribute values, never as HTML.
import { ROW, $, el, quote, view, apiBase } from "./dom.js";
import { drawMap, drawServices, edgeClause, topology } from "./map.js";
import { openDetail } from "./detail.js";

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


// ---- the environment's state and logs, polled ----
async function poll() {
  try {
    const r = await fetch(apiBase());
    if (r.ok) { view.describe = await r.json(); drawServices(); drawMap(); }
  } catch (_) { /* the daemon is gone or restarting: try again */ }
}

// Each service's last lines, read from the end of its log file (every
// service's lines together would be looked for among the events in
// memory, which on a busy environment means all of them).
async function pollLogs() {
  const names = topology().names.filter((n) => n !== "~test");
  const logs = {};
  await Promise.all(names.map(async (n) => {
    try {
      const r = await fetch(apiBase() + "/log?tail=20&service=" + encodeURIComponent(n));
      if (r.ok) logs[n] = (await r.text()).split("\n").filter((l) => l !== "");
    } catch (_) { /* as above */ }
  }));
  view.logs = logs;
  drawServices();
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
