"""The web view (the page ``tapmesh serve`` and ``tapmesh up`` serve), in a
real headless Chromium: the example shop's map, live list, filter, gRPC
detail and HAR export; hostile markup in traffic shown as text; and the
page under 20,000 events a second.

The page's contract (URLs, DOM hooks, ``window.tapmeshView``) is
/work/notes/web-contract.md; the helpers are in conftest.py."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from conftest import (
    OUT,
    REPO,
    SPECS,
    WebView,
    cli_events,
    http_get,
    http_json,
    percentile,
    wait_until,
)
from loadgen import PingLoad
from tapmesh import Daemon, Environment

SHOP = REPO / "examples" / "shop" / "shop.yaml"

# examples/shop/shop.yaml, read by hand (the venv has no YAML parser): its
# services, and its egress edges as SOURCE->TARGET. Hard-coded so that a
# topology the daemon gets wrong cannot make the page's map look right.
SHOP_SERVICES = {"db", "cache", "broker", "inventory", "orders", "front", "load"}
SHOP_EDGES = {
    "orders->inventory",
    "orders->broker",
    "orders->db",
    "orders->cache",
    "front->orders",
    "load->front",
}
NODE_STATES = {"starting", "ready", "failed", "completed", "stopped", "restarting", "waiting"}


def _spec_egress_edges(path: Any) -> Set[str]:
    """SOURCE->TARGET for every egress of a spec written as the shop's is
    (``egresses:`` blocks of ``name: { service: target }`` lines, or a
    one-line ``egresses: { name: { service: target } }``): a rough reader,
    so that an edit of the spec that the hard-coded lists miss fails the
    test instead of passing unnoticed."""
    edges: Set[str] = set()
    service: Optional[str] = None
    in_egresses = False
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        m = re.match(r"^  (\w[\w-]*):\s*$", line)
        if indent == 2 and m:
            service, in_egresses = m.group(1), False
            continue
        if indent <= 2:
            service = None if indent == 0 else service
            in_egresses = False
            continue
        if indent == 4:
            in_egresses = line.strip().startswith("egresses:")
            for target in re.findall(r"service:\s*([\w-]+)", line):
                edges.add(f"{service}->{target}")
            continue
        if in_egresses and service:
            for target in re.findall(r"service:\s*([\w-]+)", line):
                edges.add(f"{service}->{target}")
    return edges


def _spec_services(path: Any) -> Set[str]:
    names: Set[str] = set()
    in_services = False
    for line in path.read_text().splitlines():
        if re.match(r"^services:\s*$", line):
            in_services = True
            continue
        if re.match(r"^\S", line):
            in_services = False
        m = re.match(r"^  (\w[\w-]*):\s*$", line)
        if in_services and m:
            names.add(m.group(1))
    return names


def test_the_hard_coded_shop_matches_its_spec() -> None:
    assert _spec_services(SHOP) == SHOP_SERVICES
    assert _spec_egress_edges(SHOP) == SHOP_EDGES


# -- the example shop -----------------------------------------------------------


@pytest.fixture(scope="class")
def shop(daemon: Daemon) -> Iterator[Environment]:
    """The whole example shop, its `load` loop included (a few requests a
    second through the front); downed after the class's tests."""
    with Environment.up(SHOP, daemon=daemon, timeout=900) as env:
        yield env


def _edge_attrs(view: WebView) -> Dict[str, Dict[str, str]]:
    return view.js(
        """
        const out = {};
        for (const g of document.querySelectorAll('#map svg g.edge')) {
          out[g.getAttribute('data-edge')] = {rate: g.getAttribute('data-rate'),
            errors: g.getAttribute('data-errors'), p99: g.getAttribute('data-p99')};
        }
        return out;
        """
    )


def _node_states(view: WebView) -> Dict[str, str]:
    return view.js(
        """
        const out = {};
        for (const g of document.querySelectorAll('#map svg g.node'))
          out[g.getAttribute('data-service')] = g.getAttribute('data-state');
        return out;
        """
    )


class TestShop:
    def test_map_shows_every_service_and_edge(
        self, shop: Environment, view: WebView, daemon: Daemon
    ) -> None:
        # The daemon's topology: the spec's services and egress edges.
        topology = http_json(f"{daemon.url}{shop.path}").get("topology")
        assert topology, f"GET {shop.path} has no topology"
        assert {s["name"] for s in topology["services"]} == SHOP_SERVICES
        assert {f"{e['source']}->{e['target']}" for e in topology["edges"]} == SHOP_EDGES

        # Kafka traffic has started (through the broker's per-broker
        # listeners too), and the shop's first connections' setup (ApiVersions,
        # Metadata …) is over 5 s old: the map shows steady traffic only.
        shop.wait_for('kafka.api == "Produce"', 30)
        time.sleep(6)
        view.open(shop.id)
        assert "shop" in (view.text("#env-name") or "")
        wait_until("#env-state says up", lambda: (view.text("#env-state") or "").strip() == "up", 20)

        nodes = wait_until(
            "a map node per service, each ready",
            lambda: (lambda n: n if set(n) >= SHOP_SERVICES and all(n[s] == "ready" for s in SHOP_SERVICES) else None)(
                _node_states(view)
            ),
            20,
        )
        assert set(nodes) - SHOP_SERVICES <= {"~test"}, f"nodes that are not services: {nodes}"
        assert set(nodes.values()) <= NODE_STATES, nodes

        edges = _edge_attrs(view)
        assert set(edges) >= SHOP_EDGES, f"edges missing from the map: {SHOP_EDGES - set(edges)}"
        assert set(edges) - SHOP_EDGES <= {e for e in edges if e.startswith("~test->")}, edges

        # Every edge carries the load's traffic: a rate, an error rate, a p99.
        def all_busy() -> Optional[Dict[str, Dict[str, str]]]:
            now = _edge_attrs(view)
            busy = all(
                float(now[e]["rate"] or 0) > 0 and now[e]["p99"] not in (None, "") for e in SHOP_EDGES
            )
            return now if busy else None

        edges = wait_until("a rate and a p99 on every edge", all_busy, 30, interval=0.5)
        # Still one node per service, one edge per egress (traffic to a
        # Kafka broker's own listener is the broker's).
        nodes = _node_states(view)
        assert set(nodes) - SHOP_SERVICES <= {"~test"}, f"nodes that are not services: {nodes}"
        assert set(edges) - SHOP_EDGES <= {e for e in edges if e.startswith("~test->")}, edges
        for name in SHOP_EDGES:
            errors = float(edges[name]["errors"])
            assert 0.0 <= errors <= 1.0, (name, edges[name])
            assert float(edges[name]["p99"]) >= 0, (name, edges[name])
        # The load orders the nearly sold-out sku-5 and asks for a missing
        # item: some calls fail, and an edge's error rate says so.
        wait_until(
            "an error rate above 0 on some edge",
            lambda: any(float(a["errors"] or 0) > 0 for a in _edge_attrs(view).values()),
            30,
            interval=0.5,
        )

        # Test traffic adds the ~test node and its edge.
        status, _, _ = http_get(f"{shop.endpoint('front').url}/api/items/sku-1")
        assert status == 200
        wait_until(
            "the ~test node and the ~test->front edge",
            lambda: "~test" in _node_states(view) and "~test->front" in _edge_attrs(view),
            15,
        )

        # The services panel: one entry per service, the load's log tail.
        services = view.js(
            """
            const out = {};
            for (const s of document.querySelectorAll('#services .svc'))
              out[s.dataset.service] = s.dataset.state;
            return out;
            """
        )
        assert set(services) == SHOP_SERVICES, services
        wait_until(
            "the load's log tail in #services",
            lambda: "load: " in (view.text('#services .svc[data-service="load"] pre.log') or ""),
            15,
        )

        # Clicking an edge filters to it.
        view.click_edge("orders->inventory")
        wait_until(
            "the filter set by clicking the orders->inventory edge",
            lambda: view.stats().get("filter") == 'edge == "orders->inventory"',
            10,
        )
        assert view.find("#filter").get_attribute("value") == 'edge == "orders->inventory"'
        view.assert_no_page_errors()

    def test_the_list_fills_with_live_events(self, shop: Environment, view: WebView) -> None:
        view.open(shop.id)
        first = wait_until("events in the list", lambda: view.count() > 0 and view.count(), 20)
        rows = wait_until("rows in #list", view.rows, 10)
        assert all(r["seq"] > 0 and r["type"] for r in rows), rows[:5]
        # The load keeps adding events: the count grows, live.
        later = wait_until("the count growing", lambda: (lambda c: c if c > first else 0)(view.count()), 20)
        stats = view.stats()
        assert stats["loaded"] >= later, stats
        assert stats["received"] > 0 and stats["streaming"], stats
        # The newest event the daemon logged is soon in the page too.
        target = shop.last_seq()
        wait_until(
            f"the page holding seq {target}",
            lambda: view.stats()["lastSeq"] >= target,
            15,
        )
        seqs, loaded = view.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            " window.tapmeshView.seqs().then((s) => done([s, window.tapmeshView.stats().loaded]));"
        )
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "seqs() not ascending and unique"
        assert len(seqs) == loaded, (len(seqs), loaded)
        view.assert_no_page_errors()

    def test_a_typed_filter_matches_the_cli(
        self, shop: Environment, view: WebView, tapmesh_bin: str
    ) -> None:
        view.open(shop.id)
        # The load's lookups of a missing item: a 404 on front->orders one
        # request in five.
        query = 'edge == "front->orders" && http.status >= 400'
        view.filter_to(query)
        wait_until("matching events", lambda: view.stats()["loaded"] > 0, 20)
        assert view.url_query() == {"env": shop.id, "q": query}

        # #count, stats().loaded and seqs() agree (once a frame has drawn).
        def agree() -> Optional[Tuple[int, List[int]]]:
            seqs = view.seqs()
            stats = view.stats()
            return (view.count(), seqs) if view.count() == stats["loaded"] == len(seqs) else None

        _, page = wait_until("#count == stats().loaded == len(seqs())", agree, 10)
        cli = [e["seq"] for e in cli_events(tapmesh_bin, shop.url, query)]
        assert cli, f"the CLI found nothing for {query!r}"
        bound = min(max(page), max(cli))
        assert [s for s in page if s <= bound] == sorted(s for s in cli if s <= bound), (
            f"the page's events for {query!r} differ from the CLI's (seq <= {bound})"
        )
        rows = view.rows()
        assert rows, "no rows shown"
        for row in rows:
            assert row["type"] == "request.completed", row
            assert row["seq"] in cli or row["seq"] > bound, row
            status_text = view.text(f'#list div.row[data-seq="{row["seq"]}"] .c-status') or ""
            codes = [int(c) for c in re.findall(r"\b[1-5]\d\d\b", status_text)]
            assert codes and codes[0] >= 400, f"row {row['seq']}: .c-status says {status_text!r}"

        # Back to everything: more rows again.
        view.filter_to("")
        wait_until("the unfiltered list", lambda: view.stats()["loaded"] > len(page), 20)
        view.assert_no_page_errors()

    def test_a_bad_filter_shows_where(self, shop: Environment, view: WebView) -> None:
        view.open(shop.id)
        assert view.hidden("#filter-error"), "#filter-error shown before any filter"
        bad = 'http.status >= 500 && http.pathh == "/x"'
        # What the daemon says about it.
        status, _, body = http_get(f"{shop.url}/events?follow=false&q={urllib.parse.quote(bad)}")
        assert status == 400, body[:300]
        refused = json.loads(body)
        view.type_filter(bad)
        view.wait_filter_error()
        error = view.find("#filter-error")
        assert error.get_attribute("data-line") == str(refused["position"]["line"])
        assert error.get_attribute("data-column") == str(refused["position"]["column"])
        assert refused["position"]["column"] > 1
        text = view.text("#filter-error") or ""
        assert "pathh" in text, text
        # A good filter hides it again.
        view.filter_to('type == "grpc.call.completed"')
        wait_until("#filter-error hidden again", lambda: view.hidden("#filter-error"), 10)
        view.assert_no_page_errors()

    def test_a_grpc_call_shows_its_decoded_messages(
        self, shop: Environment, view: WebView, daemon: Daemon
    ) -> None:
        view.open(shop.id, q='grpc.method == "Reserve"')
        assert view.find("#filter").get_attribute("value") == 'grpc.method == "Reserve"'
        wait_until("Reserve calls in the list", lambda: view.stats()["loaded"] > 0 and view.rows(), 30)
        row = view.rows()[0]
        opened = view.open_detail(row["seq"])
        assert "error" not in opened, opened
        # What the daemon has for that event.
        stored = http_json(f"{daemon.url}{shop.path}/events/{row['seq']}")
        call = stored["event"]["grpc_call"]
        assert call["method"] == "Reserve"
        sent = call["request_body_decoded"][0]

        request = view.detail_part("request-decoded") or ""
        assert sent["sku"] in request and sent["orderId"] in request, request
        assert json.loads(request) in (call["request_body_decoded"], sent), request
        response = view.detail_part("response-decoded") or ""
        assert "reserved" in response, response
        assert "descriptor_set" in (view.detail_part("decoded-with") or "")
        raw = view.raw_event()
        assert raw["seq"] == row["seq"] and raw["grpc_call"]["request_body_decoded"][0] == sent
        command = view.find("#copy-command").get_attribute("data-command") or ""
        assert command.startswith("grpcurl") and "shop.Inventory/Reserve" in command, command
        assert sent["orderId"] in command, command
        view.screenshot("shop-grpc")

        view.find("#detail-close").click()
        wait_until("#detail closed", lambda: view.hidden("#detail"), 5)
        view.assert_no_page_errors()

    def test_har_and_jsonl_exports_follow_the_filter(
        self, shop: Environment, view: WebView, tapmesh_bin: str
    ) -> None:
        view.open(shop.id)
        query = 'edge == "front->orders"'
        view.filter_to(query)
        wait_until("front->orders events", lambda: view.stats()["loaded"] > 0, 20)
        har_href = view.find("#export-har").get_attribute("href") or ""
        params = urllib.parse.parse_qs(urllib.parse.urlparse(har_href).query)
        assert urllib.parse.urlparse(har_href).path == f"{shop.path}/har", har_href
        assert params.get("q") == [query], har_href
        har = view.js_async(
            """
            const [href, done] = arguments;
            fetch(href).then(async (r) => {
              const text = await r.text();
              let log;
              try { log = JSON.parse(text).log; } catch (e) { done({status: r.status, error: String(e), head: text.slice(0, 300)}); return; }
              done({status: r.status, version: log && log.version,
                    entries: Array.isArray(log && log.entries) ? log.entries.map(e => ({
                      method: e.request && e.request.method, url: e.request && e.request.url,
                      status: e.response && e.response.status})) : null});
            }, (e) => done({error: String(e)}));
            """,
            har_href,
        )
        assert har.get("status") == 200 and "error" not in har, har
        assert har["version"] == "1.2", har.get("version")
        entries = har["entries"]
        assert isinstance(entries, list) and entries, har
        # Every entry is one of the edge's HTTP exchanges, as the CLI has them
        # (read after the HAR, so it has every exchange the HAR can have).
        logged = cli_events(tapmesh_bin, shop.url, f'{query} && type == "request.completed"')
        exchanges = {
            (e["request"]["method"], e["request"]["path"], e["request"]["status_code"]) for e in logged
        }
        assert len(entries) <= len(logged), (len(entries), len(logged))
        for entry in entries:
            assert isinstance(entry["url"], str), entry
            url = urllib.parse.urlparse(entry["url"])
            assert url.scheme == "http" and url.hostname == "127.0.0.1", entry
            path = url.path + (f"?{url.query}" if url.query else "")
            assert (entry["method"], path, entry["status"]) in exchanges, (
                f"a HAR entry that is no front->orders exchange: {entry}"
            )
        jsonl_href = view.find("#export-jsonl").get_attribute("href") or ""
        assert urllib.parse.parse_qs(urllib.parse.urlparse(jsonl_href).query).get("q") == [query]
        lines = view.js_async(
            """
            const [href, done] = arguments;
            fetch(href).then(r => r.text()).then(t => done(t.split('\\n').filter(l => l.trim())),
                                                  e => done(['error: ' + e]));
            """,
            jsonl_href,
        )
        assert lines, "the JSONL export is empty"
        for line in lines:
            event = json.loads(line)
            payload = event.get("request") or event.get("connection")
            assert payload and (payload["source"], payload["target"]) == ("front", "orders"), event
        view.assert_no_page_errors()

    def test_screenshot_of_the_shop(self, shop: Environment, view: WebView) -> None:
        """shop.png, for the README: everything, paused, a gRPC call open."""
        view.open(shop.id)
        wait_until("a full list", lambda: view.stats()["loaded"] > 40, 30)
        time.sleep(2)  # rates on every edge of the map
        view.find("#pause").click()
        wait_until("paused", lambda: view.stats().get("paused"), 5)
        rows = view.rows()
        pick = next((r for r in rows if "Reserve" in (r["what"] or "")), None) or next(
            (r for r in rows if r["type"] == "grpc.call.completed"), None
        ) or (rows[0] if rows else None)
        assert pick, "no rows to select"
        opened = view.open_detail(pick["seq"])
        assert "error" not in opened, opened
        path = view.screenshot("shop")
        assert path.stat().st_size > 10_000
        view.assert_no_page_errors()


# -- hostile markup -------------------------------------------------------------

SCRIPT = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror="window.__xss=2">'
SVG = '<svg onload="window.__xss=3">'
IFRAME = "'><iframe srcdoc=\"<script>parent.__xss=4</script>\"></iframe>"
PRE = "</pre><img src=x onerror=window.__xss=5>"
TEMPLATE = "{{constructor.constructor('window.__xss=6')()}}${window.__xss=7}"
LINK = "javascript:window.__xss=8"
# In the echo service's own output (echo.py) and its answers' X-Reply header.
LOGGED = '<img src=x onerror="window.__xss=12">'
REPLY_HEADER = '<svg onload="window.__xss=13">'

# (method, path, X-Note header, body, content type): paths without spaces,
# as a request line needs, but with quotes and angle brackets.
XSS_REQUESTS = [
    ("GET", "/a/<script>window.__xss=1</script>", IMG, None, None),
    ("POST", '/b/"><img/src=x/onerror=window.__xss=2>', SVG, SCRIPT + PRE, "text/plain"),
    ("POST", "/c/<svg/onload=window.__xss=3>", TEMPLATE, json.dumps({"note": IMG, "x": IFRAME}), "application/json"),
    ("GET", "/d/</pre><img/src=x/onerror=window.__xss=5>", LINK, None, None),
    ("PUT", "/e/'><iframe/srcdoc=<script>parent.__xss=4</script>>", IFRAME, TEMPLATE, "text/html"),
]

# Whole-document checks, in the page: nothing of the payloads became markup.
XSS_PROBE = r"""
const all = Array.from(document.querySelectorAll('*'));
const containers = ['#list', '#detail', '#filter-error', '#services', '#env-name']
  .map(s => document.querySelector(s)).filter(Boolean);
const inside = (sel) => containers.flatMap(c => Array.from(c.querySelectorAll(sel)));
return {
  xss: typeof window.__xss === 'undefined' ? null : String(window.__xss),
  parentXss: typeof window.parent.__xss === 'undefined' ? null : String(window.parent.__xss),
  imgX: document.querySelectorAll('img[src="x"]').length,
  handlers: all.filter(e => e.getAttributeNames().some(n => n.toLowerCase().startsWith('on')))
               .map(e => e.outerHTML.slice(0, 200)),
  scriptsInside: inside('script').length,
  foreignScripts: Array.from(document.scripts).filter(s => !s.src || !new URL(s.src).pathname.startsWith('/ui/'))
                    .map(s => s.outerHTML.slice(0, 200)),
  iframes: document.querySelectorAll('iframe').length,
  svgInjected: inside('svg').filter(s => s.outerHTML.includes('__xss')).length,
  jsLinks: Array.from(document.querySelectorAll('a[href]')).filter(a => /^\s*javascript:/i.test(a.getAttribute('href'))).length,
};
"""


def _assert_inert(view: WebView, when: str) -> None:
    found = view.js(XSS_PROBE)
    clean = {
        "xss": None,
        "parentXss": None,
        "imgX": 0,
        "handlers": [],
        "scriptsInside": 0,
        "foreignScripts": [],
        "iframes": 0,
        "svgInjected": 0,
        "jsLinks": 0,
    }
    assert found == clean, f"{when}: markup from the traffic became live: {found}"
    view.assert_no_page_errors()


def _send(endpoint: Any, method: str, path: str, note: str, body: Optional[str], ctype: Optional[str]) -> int:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    try:
        headers = {"X-Note": note}
        data = body.encode("utf-8") if body is not None else None
        if ctype:
            headers["Content-Type"] = ctype
        connection.request(method, path, body=data, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


REQUESTS_QUERY = 'edge == "~test->echo" && type == "request.completed"'


@pytest.fixture(scope="class")
def xss_env(daemon: Daemon) -> Iterator[Environment]:
    """specs/xss.yaml, with every hostile request of XSS_REQUESTS sent once
    through the echo service's observed endpoint and logged."""
    with Environment.up(SPECS / "xss.yaml", daemon=daemon, timeout=60) as env:
        echo = env.endpoint("echo")
        for method, path, note, body, ctype in XSS_REQUESTS:
            assert _send(echo, method, path, note, body, ctype) == 200, (method, path)
        wait_until(
            "the daemon logging every hostile request",
            lambda: len(env.events(REQUESTS_QUERY)) == len(XSS_REQUESTS),
            15,
        )
        yield env


class TestHostileMarkup:
    """Markup in paths, headers, bodies, log lines and the filter is shown as
    text and never runs. Each test has a browser of its own and changes the
    filter at most once (see test_a_quiet_environment_survives_filter_changes)."""

    def test_the_page_has_a_csp(self, xss_env: Environment, view: WebView) -> None:
        status, headers, _ = http_get(view.url(xss_env.id))
        assert status == 200, status
        csp = headers.get("content-security-policy", "")
        assert "script-src" in csp or "default-src" in csp, f"no CSP on the page: {headers}"
        directive = "script-src" if "script-src" in csp else "default-src"
        scripts = csp.split(directive, 1)[1].split(";")[0]
        assert "unsafe-inline" not in scripts and "unsafe-eval" not in scripts, csp

    def test_requests_stay_text_in_the_list_and_the_detail(
        self, xss_env: Environment, view: WebView
    ) -> None:
        env = xss_env
        events = {e.raw["request"]["path"]: e.raw for e in env.events(REQUESTS_QUERY)}
        assert set(events) == {r[1] for r in XSS_REQUESTS}, sorted(events)

        view.open(env.id, q=REQUESTS_QUERY)
        assert view.find("#filter").get_attribute("value") == REQUESTS_QUERY
        wait_until("every hostile request in the list", lambda: view.stats()["loaded"] == len(XSS_REQUESTS), 20)
        _assert_inert(view, "the list")
        rows = {r["seq"]: r for r in view.rows()}

        for method, path, note, body, _ctype in XSS_REQUESTS:
            stored = events[path]
            seq = stored["seq"]
            assert seq in rows, f"no row for {method} {path} (seq {seq}): {sorted(rows)}"
            assert path in (rows[seq]["what"] or ""), f"the row's .c-what does not show {path!r}: {rows[seq]}"
            opened = view.open_detail(seq)
            assert "error" not in opened, opened
            raw = view.raw_event()
            assert raw["request"]["path"] == path
            assert raw["request"]["request_headers"]["x-note"] == note
            assert raw["request"]["response_headers"]["x-reply"] == REPLY_HEADER
            assert note in (view.detail_part("request-headers") or ""), f"{method} {path}: X-Note not shown as text"
            assert REPLY_HEADER in (view.detail_part("response-headers") or "")
            if body is not None:
                shown = view.detail_part("request-body") or ""
                assert body in shown or _pretty_json_equal(body, shown), (
                    f"{method} {path}: the body not shown as text: {shown[:300]!r}"
                )
            assert path in (view.detail_part("response-body") or ""), "the echoed page not shown as text"
            assert path in (view.detail_part("summary") or "") + (view.detail_part("request") or "")
            command = view.find("#copy-command").get_attribute("data-command") or ""
            assert command.startswith("curl"), command
            _assert_inert(view, f"the detail of {method} {path}")
        view.screenshot("xss")

        # The echo service's first line is hostile: in #services' log tail
        # (its last 20 lines; the echo service prints one per request).
        first_request = f"echo: {XSS_REQUESTS[0][0]} {XSS_REQUESTS[0][1]}"
        wait_until(
            "the hostile log lines in #services",
            lambda: all(
                line in (view.text('#services .svc[data-service="echo"] pre.log') or "")
                for line in (LOGGED, first_request)
            ),
            10,
        )
        _assert_inert(view, "#services")

    def test_a_log_line_stays_text(self, xss_env: Environment, view: WebView) -> None:
        view.open(xss_env.id, q='type == "service.log" && service == "echo" && log.line.contains("listening;")')
        wait_until("the echo service's first log line", lambda: view.stats()["loaded"] == 1 and view.rows(), 15)
        whats = " ".join(r["what"] or "" for r in view.rows())
        assert LOGGED in whats, f"the log line not shown as text in .c-what: {whats[:500]!r}"
        opened = view.open_detail(None)
        assert "error" not in opened, opened
        assert view.raw_event()["log"]["line"].endswith(LOGGED)
        _assert_inert(view, "a service.log row and its detail")

    def test_a_filter_stays_text(self, xss_env: Environment, view: WebView) -> None:
        # Markup in the filter, from the URL.
        hostile_query = f'http.path.contains("{SCRIPT}")'
        view.open(xss_env.id, q=hostile_query)
        assert view.find("#filter").get_attribute("value") == hostile_query
        wait_until("the one matching row", lambda: view.stats()["loaded"] == 1, 15)
        _assert_inert(view, "a filter with markup")
        # Refused, with the query quoted in the message.
        bad = f"{IMG} {SVG}"
        view.type_filter(bad)
        message = view.wait_filter_error()
        assert "<img" in message or "<svg" in message or '">' in message, (
            f"the error does not show the query as text: {message!r}"
        )
        _assert_inert(view, "#filter-error")

    def test_a_gzip_body_is_shown_decompressed(self, xss_env: Environment, view: WebView) -> None:
        path = "/gz/<svg/onload=window.__xss=14>"
        since = xss_env.last_seq()
        assert _send(xss_env.endpoint("echo"), "GET", path, SCRIPT, None, None) == 200
        event = xss_env.wait_for(f'http.path == "{path}"', 10, since=since)
        assert event.raw["request"]["response_headers"]["content-encoding"] == "gzip"
        view.open(xss_env.id, q='http.path.startsWith("/gz/")')
        wait_until("the gzip exchange in the list", lambda: event.seq in [r["seq"] for r in view.rows()], 15)
        opened = view.open_detail(event.seq)
        assert "error" not in opened, opened
        shown = wait_until(
            "the decompressed body",
            lambda: (lambda t: t if "path=" in t else None)(view.detail_part("response-body") or ""),
            10,
        )
        assert f"path={path} note={SCRIPT}" in shown, shown[:300]
        _assert_inert(view, "a decompressed body")

    def test_a_quiet_environment_survives_filter_changes(
        self, xss_env: Environment, view: WebView
    ) -> None:
        """Five filter changes with no new traffic, then a refused one: its
        error still shows, and the log tail still updates. (Each change
        must end the previous query's streams; a browser opens at most 6
        connections to the daemon.)"""
        view.open(xss_env.id)
        for changes, query in enumerate((
            'type == "service.ready"',
            'type == "service.starting"',
            REQUESTS_QUERY,
            'http.method == "POST"',
            'type == "request.completed"',
        ), start=1):
            view.filter_to(query)
            wait_until(
                f"rows under {query!r} (filter change {changes} with no new traffic:"
                " are the earlier queries' streams still open?)",
                lambda: view.stats()["loaded"] > 0,
                10,
            )
        view.type_filter("http.pathh == 1")
        assert "pathh" in view.wait_filter_error()
        # A new log line (a request the echo service prints) reaches #services.
        marker = f"/quiet-{time.monotonic_ns()}"
        assert _send(xss_env.endpoint("echo"), "GET", marker, "x", None, None) == 200
        wait_until(
            "the new log line in #services",
            lambda: marker in (view.text('#services .svc[data-service="echo"] pre.log') or ""),
            10,
        )


def _pretty_json_equal(body: str, shown: str) -> bool:
    try:
        return json.loads(body) == json.loads(shown)
    except ValueError:
        return False


# -- load -------------------------------------------------------------------------

LOAD_SECONDS = 30.0
#: The contract: the page keeps at most this many rows.
MAX_ROWS = 200_000
BATCH = 200
INTERVAL = 0.010


@pytest.fixture
def redis_env(daemon: Daemon) -> Iterator[Environment]:
    with Environment.up(SPECS / "redis.yaml", daemon=daemon, timeout=60) as env:
        yield env


def _frame_figures(frames: List[float]) -> Dict[str, Any]:
    return {
        "count": len(frames),
        "p50": percentile(frames, 50),
        "p95": percentile(frames, 95),
        "p99": percentile(frames, 99),
        "max": max(frames) if frames else None,
    }


def _task_figures(tasks: List[Dict[str, float]]) -> Dict[str, Any]:
    durations = [float(t["duration"]) for t in tasks]
    return {
        "count": len(durations),
        "total_ms": round(sum(durations), 1),
        "max_ms": max(durations) if durations else None,
    }


def test_the_page_under_20000_events_a_second(
    redis_env: Environment, view: WebView, tapmesh_bin: str
) -> None:
    env = redis_env
    cache = env.endpoint("cache")
    view.open(env.id)
    time.sleep(3)  # a baseline of frames with nothing happening
    before = view.perf()
    load_start_page = view.now()
    frames_before = len(before["frames"])
    received_before = view.stats()["received"]
    seq_before = env.last_seq()

    load = PingLoad((cache.host, cache.port), batch=BATCH, interval=INTERVAL, duration=LOAD_SECONDS).start()
    samples: List[Dict[str, Any]] = []
    clicks_during: List[Dict[str, Any]] = []
    mid_seq: Optional[int] = None
    started = time.monotonic()
    next_click = 8.0
    while True:
        elapsed = time.monotonic() - started
        if elapsed > LOAD_SECONDS + 1 or (elapsed > LOAD_SECONDS and load.sending_done()):
            break
        stats = view.stats()
        samples.append({"t": round(time.monotonic() - started, 2), "received": stats["received"],
                        "loaded": stats["loaded"], "dropped": stats.get("dropped"),
                        "sent": load.sent(), "replies": load.replies()})
        if mid_seq is None and elapsed > LOAD_SECONDS / 3:
            mid_seq = env.last_seq()
        if elapsed >= next_click and len(clicks_during) < 3:
            clicks_during.append(view.open_detail(None, timeout_ms=15000))
            next_click += 7.0
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started - elapsed)))
    result = load.join()
    generated = result.replies
    end_seq = env.last_seq()

    # Until the page has read what was logged (bounded), or stops reading.
    def settled() -> bool:
        s = view.stats()
        samples.append({"t": round(time.monotonic() - started, 2), "received": s["received"],
                        "loaded": s["loaded"], "dropped": s.get("dropped"),
                        "sent": result.sent, "replies": result.replies})
        if s["lastSeq"] >= end_seq:
            return True
        recent = [x["received"] for x in samples[-4:]]
        return len(recent) == 4 and len(set(recent)) == 1

    try:
        wait_until("the page catching up with the log", settled, 30, interval=1.0)
    except AssertionError:
        pass  # reported below, as figures
    after_stats = view.stats()
    after = view.perf()
    click_after = view.open_detail(None, timeout_ms=15000)

    # -- figures (reported, not asserted) --
    tasks = after["longTasks"]
    frames_during = after["frames"][frames_before:] if len(after["frames"]) < 10000 else after["frames"]
    figures = {
        "planned_commands": result.planned,
        "load": result.as_dict(),
        "events_generated": generated,
        "events_logged": end_seq - seq_before,
        "page_received": after_stats["received"] - received_before,
        "page_loaded": after_stats["loaded"],
        "page_dropped": after_stats.get("dropped"),
        "long_tasks_before": _task_figures([t for t in tasks if t["start"] < load_start_page]),
        "long_tasks_during": _task_figures([t for t in tasks if t["start"] >= load_start_page]),
        "frames_before_ms": _frame_figures(before["frames"]),
        "frames_during_ms": _frame_figures(frames_during),
        "click_to_detail_ms_during": [c.get("ms") for c in clicks_during],
        "click_to_detail_ms_after": click_after.get("ms"),
        "clicks": clicks_during + [click_after],
        "samples": samples,
    }

    # -- functional checks, after the load --
    # A filter typed now is applied, and the count reflects it: a closed
    # range of seqs logged during the load, compared with the CLI.
    assert mid_seq is not None
    low, high = mid_seq, mid_seq + 5000
    query = f'type == "redis.command.completed" && seq > {low} && seq <= {high}'
    t0 = time.monotonic()
    view.filter_to(query, timeout=60)
    expected = len(cli_events(tapmesh_bin, env.url, query))
    wait_until(f"{expected} events under {query!r}", lambda: view.stats()["loaded"] == expected, 60)
    wait_until("#count saying so", lambda: view.count() == expected, 10)
    figures["filter_applied_s"] = round(time.monotonic() - t0, 2)
    opened = view.open_detail(None, timeout_ms=15000)
    figures["click_to_detail_ms_filtered"] = opened.get("ms")
    view.screenshot("load")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    summary = {k: v for k, v in figures.items() if k not in ("samples", "clicks")}
    print("web view under load:\n" + json.dumps(summary, indent=2))

    assert expected > 4000, f"only {expected} PINGs logged in {low}..{high}"
    assert "error" not in opened, opened
    raw = view.raw_event()
    assert raw["type"] == "redis.command.completed" and raw["command"]["command"] == "PING", raw
    assert low < raw["seq"] <= high
    assert "error" not in click_after, click_after
    assert all("error" not in c for c in clicks_during), clicks_during
    # The generator did its part.
    assert not result.errors, result.errors
    assert result.sent >= 0.9 * result.planned, (
        f"the generator sent {result.sent} of {result.planned} planned PINGs"
    )
    # The page received events throughout: more in every 5 s of the load.
    during = [s for s in samples if s["t"] <= LOAD_SECONDS]
    for start in range(0, int(LOAD_SECONDS) - 4, 5):
        window = [s["received"] for s in during if start <= s["t"] <= start + 6]
        assert len(window) >= 2 and window[-1] > window[0], (
            f"the page received nothing between {start} s and {start + 6} s of the load: {window}"
        )
    assert figures["page_received"] > 0
    # The contract's bound on what the page keeps.
    peak = max(x["loaded"] for x in samples)
    assert peak <= MAX_ROWS, f"the page held {peak} rows, over the contract's {MAX_ROWS}"
    view.assert_no_page_errors()
