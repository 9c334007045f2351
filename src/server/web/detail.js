// tapmesh web view: the detail panel. An event is fetched whole, by seq
// (the list holds rows only), with its HTTP bodies decompressed by the
// daemon; each side is shown with its headers, bodies and decoded messages.

import { $, el, value, quote, view, apiBase } from "./dom.js";

export async function openDetail(seq) {
  view.selected = seq;
  for (const n of document.querySelectorAll("#list .row")) n.classList.toggle("sel", n.dataset.seq === String(seq));
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

