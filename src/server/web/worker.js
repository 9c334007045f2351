// tapmesh web view: the stream reader. Runs in a Web Worker so that
// reading and parsing tens of thousands of events a second never runs on
// the thread that draws. It reads the daemon's event stream (NDJSON),
// turns each event into a small row (no headers or bodies: the detail
// panel fetches an event by seq), keeps per-edge statistics for the map,
// and posts both to the page in batches, at most ten times a second.
"use strict";

const CALLS = {
  "request.completed": "request",
  "grpc.call.completed": "grpc_call",
  "kafka.request.completed": "kafka_request",
  "postgres.query.completed": "query",
  "redis.command.completed": "command",
};
const ENVELOPE = new Set(["seq", "type", "timestamp", "environment", "service"]);
const FLUSH_MS = 100;
const RETRY_MS = 1000;
const STATS_HISTORY = 50000;

let env = null;
let generation = 0;
let pending = [];
let received = 0;
let dropped = 0;
let lastSeq = 0;
let streaming = false;
let refused = null;
// Every stream of the current filter: aborted when the filter changes, so
// that no old stream holds one of the browser's few connections a host.
let aborter = new AbortController();
const edges = new Map(); // "a->b" -> {buckets: Map(sec -> {n, err, lat: []}), total, errors}

function payloadOf(e) {
  for (const k in e) if (!ENVELOPE.has(k)) return [k, e[k]];
  return [null, null];
}

function q(s) { return JSON.stringify(String(s)); }

function size(n) {
  if (n == null) return "";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function failed(type, p) {
  switch (type) {
    case "request.completed": return p.status_code == null || p.status_code >= 500 || !!p.error;
    case "grpc.call.completed": return p.grpc_status !== 0 || !!p.error;
    case "kafka.request.completed": return p.error_code != null && p.error_code !== 0;
    case "postgres.query.completed": return !!p.error;
    case "redis.command.completed": return !!p.error;
  }
  return false;
}

// The columns of one event, and the clause a click on each adds.
function describe(e, type, key, p) {
  const r = { what: "", wc: "", status: "", sc: "", lat: "", size: "", err: false };
  if (!p || typeof p !== "object") return r;
  switch (type) {
    case "request.completed":
      r.what = (p.method || "") + " " + (p.path || "");
      r.wc = "http.path == " + q(p.path || "");
      r.status = p.status_code == null ? (p.error || "no response") : String(p.status_code);
      if (p.status_code != null) r.sc = "http.status == " + p.status_code;
      break;
    case "grpc.call.completed":
      r.what = (p.service || "") + "/" + (p.method || "");
      r.wc = "grpc.method == " + q(p.method || "");
      r.status = p.grpc_status_name || (p.grpc_status == null ? "no status" : String(p.grpc_status));
      if (p.grpc_status != null) r.sc = "grpc.status == " + p.grpc_status;
      break;
    case "kafka.request.completed": {
      const topics = Array.isArray(p.topics) ? [...new Set(p.topics.map((t) => t && t.topic))].join(",") : "";
      r.what = (p.api_name || "api " + p.api_key) + " v" + p.api_version + (topics ? " " + topics : "");
      r.wc = "kafka.api == " + q(p.api_name || "");
      r.status = p.error_code ? "error " + p.error_code : "ok";
      if (p.error_code != null) r.sc = "kafka.error_code == " + p.error_code;
      break;
    }
    case "postgres.query.completed":
      r.what = p.sql || "";
      r.wc = "sql.command == " + q(p.command || "");
      r.status = p.error ? (p.error.code || "error") : (p.rows != null ? p.rows + " rows" : (p.command || ""));
      break;
    case "redis.command.completed":
      r.what = (p.command || "") + (Array.isArray(p.args) && p.args.length ? " " + p.args.slice(0, 4).join(" ") : "");
      r.wc = "redis.command == " + q(p.command || "");
      r.status = p.error ? (p.error.code || "error") : (p.reply && p.reply.type) || "";
      break;
    case "service.log":
      r.what = p.line || "";
      break;
    case "test.note":
      r.what = p.text || "";
      break;
    case "decode.error":
      r.what = (p.protocol || "") + ": " + (p.message || p.error || "");
      break;
    case "connection.opened":
    case "connection.closed":
      r.what = "conn " + p.id + (p.client_addr ? " from " + p.client_addr : "");
      if (type === "connection.closed") r.size = size((p.bytes_in || 0) + (p.bytes_out || 0));
      break;
    case "events.dropped":
      r.what = JSON.stringify(p);
      break;
    default:
      if (key === "lifecycle") {
        r.what = p.reason || "";
        r.status = p.state || "";
      } else {
        r.what = JSON.stringify(p).slice(0, 200);
      }
  }
  if (p.latency_ms != null) r.lat = p.latency_ms.toFixed(p.latency_ms < 10 ? 2 : 1) + " ms";
  if (p.request_size != null || p.response_size != null) r.size = size((p.request_size || 0) + (p.response_size || 0));
  if (CALLS[type]) r.err = failed(type, p);
  return r;
}

function row(e) {
  const [key, p] = payloadOf(e);
  const d = describe(e, e.type, key, p);
  let edge = "";
  if (p && p.source != null && p.target != null) edge = p.source + "->" + p.target;
  else if (e.service) edge = e.service;
  const ts = e.timestamp || "";
  return {
    seq: e.seq, type: e.type, time: ts.slice(11, 23), edge,
    what: d.what.length > 300 ? d.what.slice(0, 300) + "…" : d.what, wc: d.wc,
    status: d.status, sc: d.sc, lat: d.lat, size: d.size, err: d.err,
    life: key === "lifecycle" || e.type === "service.log",
  };
}

function count(e) {
  const key = CALLS[e.type];
  if (!key) return;
  const p = e[key];
  if (!p || p.source == null) return;
  // One edge a service pair: a Kafka cluster's other brokers
  // ("broker/broker-1") count on their service's edge.
  const raw = p.source + "->" + p.target;
  const slash = raw.indexOf("/", raw.indexOf("->"));
  const name = slash < 0 ? raw : raw.slice(0, slash);
  let s = edges.get(name);
  if (!s) { s = { buckets: new Map(), total: 0, errors: 0, subs: new Set() }; edges.set(name, s); }
  s.subs.add(raw);
  const sec = Math.floor(Date.parse(e.timestamp) / 1000);
  let b = s.buckets.get(sec);
  if (!b) { b = { n: 0, err: 0, lat: [] }; s.buckets.set(sec, b); }
  b.n++;
  s.total++;
  if (failed(e.type, p)) { b.err++; s.errors++; }
  if (p.latency_ms != null) {
    // At most 500 samples a second an edge: a fair sample for p99.
    if (b.lat.length < 500) b.lat.push(p.latency_ms);
    else { const i = Math.floor(Math.random() * b.n); if (i < 500) b.lat[i] = p.latency_ms; }
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
  pending = [];
  received = 0;
  dropped = 0;
  lastSeq = 0;
  const base = "/environments/" + encodeURIComponent(env) + "/events?format=ndjson";
  const filtered = msg.q && msg.q.trim() !== "";
  read(base + (filtered ? "&q=" + encodeURIComponent(msg.q) : ""), gen, signal, (e) => {
    received++;
    if (e.seq > lastSeq) lastSeq = e.seq;
    if (e.type === "events.dropped") dropped++;
    pending.push(row(e));
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
    read(base + "&type=" + Object.keys(CALLS).join(","), gen, signal, count, () => {}, Math.max(0, known - STATS_HISTORY));
  }
}

setInterval(() => {
  const rows = pending;
  pending = [];
  postMessage({ kind: "batch", gen: generation, rows, stats: { received, dropped, lastSeq, streaming: streaming && !refused, error: refused } });
}, FLUSH_MS);

setInterval(() => postMessage({ kind: "edges", gen: generation, edges: edgeStats() }), 1000);

onmessage = (m) => {
  if (m.data && m.data.cmd === "start") start(m.data);
  else if (m.data && m.data.cmd === "stop") { generation = -1; aborter.abort(); }
};
