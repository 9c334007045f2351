// tapmesh web view: the service map and the services pane, both drawn from
// the environment's description (polled) and the worker's edge statistics.

import { $, el, svg, quote, view } from "./dom.js";

export function topology() {
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

export function drawMap() {
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
export function edgeClause(edge) {
  const s = view.edgeStats[edge];
  const others = s ? s.subs.filter((x) => x !== edge) : [];
  const exact = "edge == " + quote(edge);
  return others.length ? "(" + exact + " || edge.startsWith(" + quote(edge + "/") + "))" : exact;
}


export function drawServices() {
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

