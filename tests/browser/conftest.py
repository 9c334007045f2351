"""Fixtures for the web view's browser tests: a daemon of the tests' own
(``$TAPMESH_BIN``, else the repository's ``target/debug/tapmesh``), a real
headless Chromium driven by selenium (Debian's ``chromium`` and
``chromium-driver``: selenium-manager never runs, nothing is downloaded),
and :class:`WebView`, the page's contract (``/work/notes/web-contract.md``:
URLs, DOM hooks, ``window.tapmeshView``) as helpers.

Screenshots go to ``<repo>/target/web-view/``; a failed test leaves its
screenshot, the page's HTML and the browser's console there too (under
``failures/``) and prints the console with its report."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tapmesh import Daemon, find_binary

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
#: The repository's root (tests/browser → ../..).
REPO = HERE.parents[1]
#: Where screenshots and the load figures go.
OUT = REPO / "target" / "web-view"

CHROMIUM = os.environ.get("TAPMESH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TAPMESH_CHROMEDRIVER", "/usr/bin/chromedriver")

T = TypeVar("T")

# Runs in the page before its own scripts (CDP, so the page's CSP does not
# apply): records uncaught errors, rejected promises and CSP violations, so
# a test can tell that the page's own code failed or that something tried
# to run a script it should not have.
PAGE_PROBES = r"""
(() => {
  // The page records frame intervals (tapmeshView.perf().frames) when asked.
  window.tapmeshRecordFrames = true;
  window.__pageErrors = [];
  window.__cspViolations = [];
  window.addEventListener('error', (e) => {
    window.__pageErrors.push(String(e.message || e.type) + ' at ' + (e.filename || '?') + ':' + (e.lineno || 0));
  });
  window.addEventListener('unhandledrejection', (e) => {
    window.__pageErrors.push('unhandled rejection: ' + String(e.reason && (e.reason.stack || e.reason.message) || e.reason));
  });
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push({directive: e.effectiveDirective || e.violatedDirective,
                                 blocked: String(e.blockedURI || ''), sample: String(e.sample || '')});
  });
})();
"""


# -- the daemon -------------------------------------------------------------


@pytest.fixture(scope="session")
def tapmesh_bin() -> str:
    """The tapmesh binary the tests run."""
    return os.environ.get("TAPMESH_BIN") or find_binary([REPO])


@pytest.fixture(scope="session")
def daemon(tapmesh_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon of the tests' own, on a free port of 127.0.0.1, with a
    temporary state directory (builds are cached in the default cache
    directory, where scripts/test.sh builds the example shop's services)."""
    state = tmp_path_factory.mktemp("state")
    with Daemon.start(binary=tapmesh_bin, state_dir=state) as started:
        yield started


def http_get(url: str, timeout: float = 10.0) -> Tuple[int, Dict[str, str], bytes]:
    """GET: status, headers (names lower-cased), body; errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def http_json(url: str, timeout: float = 10.0) -> Any:
    status, _, body = http_get(url, timeout)
    assert status == 200, f"GET {url} answered {status}: {body[:500]!r}"
    return json.loads(body)


def cli_events(tapmesh_bin: str, env_url: str, query: str, timeout: float = 60.0) -> List[Dict[str, Any]]:
    """``tapmesh events ENV_URL -q QUERY --json``: the events logged so far
    that match, one JSON object a line."""
    done = subprocess.run(
        [tapmesh_bin, "events", env_url, "-q", query, "--json"],
        capture_output=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"tapmesh events -q {query!r} exited {done.returncode}: "
        f"{done.stderr.decode('utf-8', 'replace')[-2000:]}"
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def wait_until(what: str, check: Callable[[], T], timeout: float, interval: float = 0.2) -> T:
    """Calls ``check`` until it returns something true (returned) or
    ``timeout`` seconds pass (an AssertionError naming ``what`` and the last
    value, or the last exception ``check`` raised)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (WebDriverException, AssertionError, ValueError, KeyError, TypeError) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")
        time.sleep(interval)


def percentile(values: List[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (``p`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# -- the browser ------------------------------------------------------------


def _chrome() -> webdriver.Chrome:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(
                f"{path} is missing: apt-get install chromium chromium-driver "
                "(scripts/test.sh does)",
                pytrace=False,
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root in CI
        "--window-size=1600,1000",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # Headless Chromium's viewport is shorter than its window (1600x857 for
    # a 1600x1000 window), and screenshots show the window: make the page
    # as large as the window, so screenshots have no blank strip.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAGE_PROBES})
    return driver


_REPORTS = pytest.StashKey[Dict[str, pytest.TestReport]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    item.stash.setdefault(_REPORTS, {})[report.when] = report


@pytest.fixture
def driver(request: pytest.FixtureRequest) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, 1600×1000. After a failed test: its screenshot,
    HTML and console in target/web-view/failures/, and the console printed."""
    chrome = _chrome()
    try:
        yield chrome
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        if any(r.failed for r in reports.values()):
            _keep_failure(chrome, request.node.name)
        chrome.quit()


def _keep_failure(chrome: webdriver.Chrome, name: str) -> None:
    where = OUT / "failures"
    where.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", name)
    try:
        chrome.save_screenshot(str(where / f"{stem}.png"))
        (where / f"{stem}.html").write_text(chrome.page_source, "utf-8")
    except WebDriverException as e:
        print(f"(no screenshot of the failure: {e.msg})")
    try:
        console = chrome.get_log("browser")
    except WebDriverException:
        console = []
    lines = [f"{c.get('level')} {c.get('message')}" for c in console]
    try:
        probes = chrome.execute_script(
            "return {errors: window.__pageErrors || null, csp: window.__cspViolations || null,"
            " url: location.href}"
        )
        lines.append(f"page: {json.dumps(probes)}")
    except WebDriverException:
        pass
    (where / f"{stem}.console.txt").write_text("\n".join(lines) + "\n", "utf-8")
    print(f"browser console of {name} (also in {where}/{stem}.*):")
    for line in lines[-60:]:
        print(f"  | {line[:2000]}")


# -- the page ---------------------------------------------------------------


class WebView:
    """The page, through its contract's hooks."""

    def __init__(self, driver: webdriver.Chrome, daemon: Daemon) -> None:
        self.driver = driver
        self.daemon = daemon

    # Opening it.
    def url(self, env: Optional[str] = None, q: Optional[str] = None) -> str:
        params = {k: v for k, v in (("env", env), ("q", q)) if v is not None}
        return f"{self.daemon.url}/" + (f"?{urllib.parse.urlencode(params)}" if params else "")

    def open(self, env: Optional[str] = None, q: Optional[str] = None, timeout: float = 30) -> None:
        """Loads ``/?env=ENV&q=Q`` and waits until ``window.tapmeshView``
        exists and the page streams events."""
        url = self.url(env, q)
        # Asked first with urllib, so that a daemon without the page fails
        # here, saying so, rather than in a wait for a hook.
        status, headers, body = http_get(url)
        assert status == 200 and "text/html" in headers.get("content-type", ""), (
            f"GET {url} answered {status} ({headers.get('content-type')}), not the page: "
            f"{body[:300]!r}"
        )
        self.driver.get(url)
        wait_until("window.tapmeshView", lambda: self.js("return !!window.tapmeshView"), timeout)
        wait_until(
            "the page streaming (tapmeshView.stats().streaming)",
            lambda: self.stats().get("streaming"),
            timeout,
        )

    # Scripts and hooks.
    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def js_async(self, script: str, *args: Any) -> Any:
        return self.driver.execute_async_script(script, *args)

    def stats(self) -> Dict[str, Any]:
        return self.js("return window.tapmeshView.stats()")

    def seqs(self) -> List[int]:
        # seqs() is a promise: the rows live in the page's worker.
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            " window.tapmeshView.seqs().then(done, (e) => done({error: String(e)}));"
        )

    def perf(self) -> Dict[str, Any]:
        return self.js("return window.tapmeshView.perf()")

    def now(self) -> float:
        """The page's ``performance.now()``."""
        return float(self.js("return performance.now()"))

    # Elements.
    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> List[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """An element's textContent (hidden or not)."""
        return self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null", css
        )

    def hidden(self, css: str) -> bool:
        return bool(
            self.js(
                "const e = document.querySelector(arguments[0]);"
                " if (!e) throw new Error('no element ' + arguments[0]); return e.hidden",
                css,
            )
        )

    def count(self) -> int:
        """``#count``'s "N events" as a number."""
        text = self.text("#count") or ""
        m = re.match(r"^\s*([\d,.\s\u202f\u00a0]+?)\s+events?\s*$", text)
        assert m, f"#count says {text!r}, not 'N events'"
        return int(re.sub(r"\D", "", m.group(1)))

    # The filter.
    def type_filter(self, query: str, enter: bool = True) -> None:
        """Types ``query`` into ``#filter`` (replacing what is there), then
        Enter."""
        box = self.find("#filter")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)
        if query:
            box.send_keys(query)
        if enter:
            box.send_keys(Keys.ENTER)

    def filter_to(self, query: str, timeout: float = 30) -> None:
        """Types ``query`` and waits until the page runs it (``stats().filter``)
        and streams again."""
        self.type_filter(query)

        def applied() -> bool:
            s = self.stats()
            return s.get("filter") == query and bool(s.get("streaming"))

        wait_until(f"the filter {query!r} applied", applied, timeout)

    def wait_filter_error(self, timeout: float = 10) -> str:
        """Waits for ``#filter-error`` to be shown; its text."""
        try:
            wait_until("#filter-error shown", lambda: not self.hidden("#filter-error"), timeout)
        except AssertionError as e:
            state = self.js(
                "const e = document.querySelector('#filter-error');"
                " return {error: e && e.outerHTML.slice(0, 500), input: document.querySelector('#filter').value,"
                " stats: window.tapmeshView.stats(), url: location.href}"
            )
            raise AssertionError(f"{e}; the page: {state}") from None
        return self.text("#filter-error") or ""

    def url_query(self) -> Dict[str, Optional[str]]:
        return self.js(
            "const p = new URLSearchParams(location.search);"
            " return {env: p.get('env'), q: p.get('q')}"
        )

    # Rows and the detail panel.
    def rows(self) -> List[Dict[str, Any]]:
        """The rows shown (in the DOM and not ``hidden``: the page keeps a pool
        of row elements, the unused ones hidden with their last content):
        seq, type and cells' text, in the DOM's order."""
        return self.js(
            """
            return Array.from(document.querySelectorAll('#list div.row:not([hidden])')).map(r => ({
              seq: Number(r.dataset.seq), type: r.dataset.type,
              what: (r.querySelector('.c-what') || {}).textContent,
              edge: (r.querySelector('.c-edge') || {}).textContent,
            }));
            """
        )

    def open_detail(self, seq: Optional[int] = None, timeout_ms: int = 20000) -> Dict[str, Any]:
        """Clicks the row of ``seq`` (else the first row shown) and waits,
        in the page, until ``#detail`` is shown with that event in
        ``[data-part=raw]``. Returns ``{seq, ms}`` (click → detail showing it,
        measured with performance.now(), up to the next animation frame) or
        ``{error}``."""
        return self.js_async(
            r"""
            const [seq, limit, done] = arguments;
            const list = document.querySelector('#list');
            const row = seq == null ? list.querySelector('div.row:not([hidden])')
                                    : list.querySelector('div.row[data-seq="' + seq + '"]:not([hidden])');
            if (!row) { done({error: 'no row ' + (seq == null ? '' : seq) + ' in #list'}); return; }
            const want = Number(row.dataset.seq);
            const t0 = performance.now();
            let finished = false, observer = null;
            const finish = (v) => { if (!finished) { finished = true; if (observer) observer.disconnect(); done(v); } };
            const shown = () => {
              const d = document.querySelector('#detail');
              const raw = d && d.querySelector('[data-part=raw]');
              if (!d || d.hidden || !raw) return false;
              try { return JSON.parse(raw.textContent).seq === want; } catch (e) { return false; }
            };
            const check = () => {
              if (finished || !shown()) return;
              const t1 = performance.now();
              requestAnimationFrame(() => finish({seq: want, ms: performance.now() - t0, dom_ms: t1 - t0}));
            };
            observer = new MutationObserver(check);
            observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
            setTimeout(() => finish({seq: want, error: 'the detail did not show event ' + want + ' within ' + limit + ' ms'}), limit);
            row.click();
            check();
            """,
            seq,
            timeout_ms,
        )

    def click_edge(self, edge: str) -> None:
        """Clicks the map's edge ``SOURCE->TARGET`` where a user would: on
        its line (the middle of its path; its box's centre may be empty)."""
        point = self.js(
            """
            const g = document.querySelector('#map svg g.edge[data-edge="' + CSS.escape(arguments[0]) + '"]');
            if (!g) return null;
            const path = g.querySelector('path, line, polyline');
            if (!path || !path.getTotalLength) { const b = g.getBoundingClientRect(); return {x: b.x + b.width / 2, y: b.y + b.height / 2}; }
            const p = path.getPointAtLength(path.getTotalLength() / 2);
            const m = path.getScreenCTM();
            return {x: p.x * m.a + p.y * m.c + m.e, y: p.x * m.b + p.y * m.d + m.f};
            """,
            edge,
        )
        assert point, f"no g.edge[data-edge={edge!r}] in #map"
        hit = self.js(
            "const e = document.elementFromPoint(arguments[0], arguments[1]);"
            " return e && e.closest('g.edge') ? e.closest('g.edge').getAttribute('data-edge') : (e && e.outerHTML.slice(0, 120))",
            point["x"],
            point["y"],
        )
        assert hit == edge, f"the middle of edge {edge} is covered by {hit!r}"
        actions = ActionBuilder(self.driver)
        actions.pointer_action.move_to_location(int(point["x"]), int(point["y"])).click()
        actions.perform()

    def detail_part(self, part: str) -> Optional[str]:
        return self.text(f"#detail [data-part={part}]")

    def raw_event(self) -> Dict[str, Any]:
        text = self.detail_part("raw")
        assert text, "#detail [data-part=raw] is missing or empty"
        return json.loads(text)

    # Checks every test makes.
    def page_errors(self) -> Dict[str, Any]:
        return self.js("return {errors: window.__pageErrors, csp: window.__cspViolations}")

    def assert_no_page_errors(self) -> None:
        found = self.page_errors()
        assert not found["errors"], f"the page threw: {found['errors']}"
        script_csp = [v for v in found["csp"] or [] if str(v.get("directive", "")).startswith("script")]
        assert not script_csp, f"scripts the CSP refused (something tried to run one): {script_csp}"

    # Screenshots.
    def screenshot(self, name: str) -> Path:
        """The whole page (beyond the viewport if it scrolls) as
        target/web-view/NAME.png."""
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.png"
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        width = max(1600, min(int(size.get("width", 1600)), 3200))
        height = max(1000, min(int(size.get("height", 1000)), 4000))
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def view(driver: webdriver.Chrome, daemon: Daemon) -> WebView:
    return WebView(driver, daemon)
