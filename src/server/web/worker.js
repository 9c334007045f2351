// tapmesh web view: the stream reader. Runs in a Web Worker so that
// reading and parsing tens of thousands of events a second never runs on
// the thread that draws. It reads the daemon's event stream as rows
// (`?view=row`: the list's columns, no headers or bodies; the detail panel
// fetches an event whole, by seq), keeps per-edge statistics for the map,
// and posts both to the page in batches, ten times a second.
"use strict";

// The call events the map counts (the stats stream under a filter reads
// only these).
const CALLS = [
  "request.completed", "grpc.call.completed", "kafka.request.completed",
  "postgres.query.completed", "redis.command.completed",
];
const FLUSH_MS = 100;
const RETRY_MS = 1000;
const STATS_HISTORY = 50000;
// The rows of the current filter: at most MAX_ROWS, the oldest cut 10,000
// at a time. `base` counts the rows cut, so indices stay absolute.
const MAX_ROWS = 200000;
let rows = [];
let base = 0;
let added = 0;

let env = null;
let generation = 0;
let received = 0;
let dropped = 0;
let lastSeq = 0;
let streaming = false;
let refused = null;
// Every stream of the current filter: aborted when the filter changes, so
// that no old stream holds one of the browser's few connections a host.
let aborter = new AbortController();
const edges = new Map(); // "a->b" -> {buckets: Map(sec -> {n, err, lat: []}), total, errors, subs}

// A row (see src/server/row.rs) of a call, counted on its edge.
function count(r) {
  if (!r.call || !r.edge) return;
  // One edge a service pair: a Kafka cluster's other brokers
  // ("broker/broker-1") count on their service's edge.
  const arrow = r.edge.indexOf("->");
  const slash = r.edge.indexOf("/", arrow);
  const name = slash < 0 ? r.edge : r.edge.slice(0, slash);
  let s = edges.get(name);
  if (!s) { s = { buckets: new Map(), total: 0, errors: 0, subs: new Set() }; edges.set(name, s); }
  s.subs.add(r.edge);
  const sec = Math.floor(r.ts / 1000);
  let b = s.buckets.get(sec);
  if (!b) { b = { n: 0, err: 0, lat: [] }; s.buckets.set(sec, b); }
  b.n++;
  s.total++;
  if (r.err) { b.err++; s.errors++; }
  if (r.lat != null) {
    // At most 500 samples a second an edge: a fair sample for p99.
    if (b.lat.length < 500) b.lat.push(r.lat);
    else { const i = Math.floor(Math.random() * b.n); if (i < 500) b.lat[i] = r.lat; }
  }
}

function edgeStats() {
  const now = Math.floor(Date.now() / 1000);
  const out = {};
  for (const [name, s] of edges) {
    let n5 = 0, n60 = 0, e60 = 0;
    const lat = [];
    for (const [sec, b] of s.buckets) {
      if (sec < now - 60) { s.buckets.delete(sec); continue; }
      n60 += b.n; e60 += b.err;
      if (sec >= now - 5) n5 += b.n;
      for (const l of b.lat) lat.push(l);
    }
    lat.sort((a, b) => a - b);
    const p99 = lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] : null;
    out[name] = { subs: [...s.subs], rate: n5 / 5, errors: n60 ? e60 / n60 : 0, p99, total: s.total, totalErrors: s.errors, recent: n60 };
  }
  return out;
}

async function read(url, gen, signal, onEvent, onError, from = 0) {
  let since = from;
  for (;;) {
    if (gen !== generation) return;
    let response;
    try {
      response = await fetch(url + (since ? "&since=" + since : ""), { headers: { accept: "application/x-ndjson" }, signal });
    } catch (err) {
      if (signal.aborted) return;
      await sleep(RETRY_MS);
      continue;
    }
    if (response.status === 400) {
      const body = await response.json().catch(() => ({ error: "bad query" }));
      onError(body);
      return;
    }
    if (!response.ok) { await sleep(RETRY_MS); continue; }
    streaming = true;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (gen !== generation) { reader.cancel(); return; }
        rest += decoder.decode(value, { stream: true });
        let start = 0, nl;
        while ((nl = rest.indexOf("\n", start)) >= 0) {
          const line = rest.slice(start, nl);
          start = nl + 1;
          if (!line) continue;
          let e;
          try { e = JSON.parse(line); } catch (_) { continue; }
          if (e.seq > since) since = e.seq;
          onEvent(e);
        }
        rest = rest.slice(start);
      }
    } catch (_) { /* the connection dropped: resume below */ }
    streaming = false;
    if (gen !== generation) return;
    // The stream ends when the environment is down; ask before resuming.
    const state = await fetch("/environments/" + encodeURIComponent(env), { signal }).then((r) => r.json()).catch(() => null);
    if (signal.aborted) return;
    if (state && !["starting", "up", "stopping"].includes(state.state)) return;
    await sleep(RETRY_MS);
  }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function start(msg) {
  const known = Math.max(lastSeq, msg.lastSeq || 0);
  generation = msg.gen;
  const gen = generation;
  aborter.abort();
  aborter = new AbortController();
  const signal = aborter.signal;
  streaming = false;
  refused = null;
  env = msg.env;
  rows = [];
  base = 0;
  added = 0;
  received = 0;
  dropped = 0;
  lastSeq = 0;
  // In batches of a tenth of a second: a busy environment then costs the
  // daemon a few writes a second for this page, not one per event.
  // Rows, not whole events (see src/server/row.rs).
  const stream = "/environments/" + encodeURIComponent(env) + "/events?view=row&batch_ms=100";
  const filtered = msg.q && msg.q.trim() !== "";
  read(stream + (filtered ? "&q=" + encodeURIComponent(msg.q) : ""), gen, signal, (e) => {
    received++;
    if (e.seq > lastSeq) lastSeq = e.seq;
    if (e.type === "events.dropped") dropped++;
    rows.push(e);
    added++;
    if (rows.length > MAX_ROWS) {
      const cut = rows.length - MAX_ROWS + 10000;
      rows = rows.slice(cut);
      base += cut;
    }
    if (!filtered) count(e);
  }, (err) => {
    refused = { message: err.error, line: err.position ? err.position.line : null, column: err.position ? err.position.column : null };
    streaming = false;
    postMessage({ kind: "error", gen, error: err.error, position: err.position || null });
  });
  edges.clear();
  if (filtered) {
    // The map shows the last minute: the last STATS_HISTORY events are
    // plenty, and a long history is not read again at each filter change.
    read(stream + "&type=" + CALLS.join(","), gen, signal, count, () => {}, Math.max(0, known - STATS_HISTORY));
  }
}

setInterval(() => {
  const fresh = added;
  added = 0;
  postMessage({ kind: "batch", gen: generation, added: fresh, base, total: base + rows.length, stats: { received, dropped, lastSeq, streaming: streaming && !refused, error: refused } });
}, FLUSH_MS);

setInterval(() => postMessage({ kind: "edges", gen: generation, edges: edgeStats() }), 1000);

onmessage = (m) => {
  const d = m.data || {};
  if (d.cmd === "rows") {
    if (d.gen !== generation) return;
    const from = Math.max(base, d.from);
    postMessage({ kind: "rows", gen: generation, from, rows: rows.slice(from - base, Math.max(from, d.to) - base) });
  } else if (d.cmd === "seqs") {
    postMessage({ kind: "reply", gen: generation, id: d.id, seqs: rows.map((r) => r.seq) });
  } else if (d.cmd === "start") start(d);
  else if (m.data && m.data.cmd === "stop") { generation = -1; aborter.abort(); }
};
