"""An environment run by the daemon, for a test: up, endpoints, events,
assertions over them, notes, down."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, NoReturn, Optional, Sequence, Union

from ._http import Answer, HttpClient, Params
from .daemon import Daemon
from .errors import (
    FaultError,
    DaemonError,
    ExpectationFailed,
    NoEndpoint,
    QueryError,
    SpecError,
    SpecProblem,
    StartError,
    WaitTimeout,
)
from .events import Event, parse_event

__all__ = ["Environment", "Endpoint", "Expectation", "Explanation"]

#: How long :meth:`Environment.up` waits for an environment by default: a
#: first build of ``cargo`` services can take minutes.
DEFAULT_UP_TIMEOUT = 600.0


class Endpoint(NamedTuple):
    """Where a service's ingress is reached: a ``(host, port)`` tuple (what
    :func:`socket.create_connection` and :class:`http.client.HTTPConnection`
    take), whose ``str()`` is ``host:port`` and ``url`` is
    ``http://host:port``."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self}"

    @classmethod
    def parse(cls, address: str) -> "Endpoint":
        """From ``host:port`` or ``[v6]:port``."""
        host, _, port = address.rpartition(":")
        return cls(host.strip("[]"), int(port))


@dataclass(frozen=True)
class Explanation:
    """The daemon's explanation of a query over an environment's events
    (``GET /environments/{id}/explain``): how many events match, and the
    text (matching events, the nearest non-matching ones on the same edge,
    the environment's errors, and the command to see more)."""

    matching: int
    text: str

    def __str__(self) -> str:
        return self.text


def _ttl_text(ttl: Union[str, float, int, timedelta, None]) -> Optional[str]:
    if ttl is None or isinstance(ttl, str):
        return ttl
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError("ttl must be more than zero")
    return f"{int(seconds * 1000)}ms"


def _selection(
    query: Optional[str],
    types: Optional[Sequence[str]],
    source: Optional[str],
    target: Optional[str],
) -> str:
    """How a headline names what was looked for."""
    parts = []
    if query:
        parts.append(repr(query))
    if types:
        parts.append("type " + "|".join(types))
    if source:
        parts.append(f"source {source}")
    if target:
        parts.append(f"target {target}")
    return " and ".join(parts) if parts else "anything"


def _events_word(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def _spec_name(text: str) -> Optional[str]:
    """The spec's top-level ``name`` (YAML or JSON), read roughly: only to
    find an environment whose start this package gave up on."""
    m = re.search(r'^name:\s*["\']?([\w.-]+)', text, re.M) or re.search(
        r'"name"\s*:\s*"([^"]+)"', text
    )
    return m.group(1) if m else None


def _parse_time(text: str) -> Optional[datetime]:
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", text or "")
    if not m:
        return None
    micros = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}.{micros}").replace(tzinfo=timezone.utc)


class Environment:
    """An environment the daemon runs, from a spec.

    Bring one up with :meth:`up`, preferably as a context manager, which
    downs it on exit::

        with Environment.up("examples/shop/shop.yaml", only=["front"]) as env:
            front = env.endpoint("front")          # Endpoint(host, port)
            urllib.request.urlopen(f"{front.url}/api/items/sku-1")
            env.wait_for('grpc.method == "GetItem"', timeout=10)
            env.expect("http.status >= 500").none()
    """

    def __init__(
        self,
        daemon: Daemon,
        info: Dict[str, Any],
        *,
        spec_path: Optional[Path] = None,
        owns_daemon: bool = False,
    ) -> None:
        self.daemon = daemon
        self._http: HttpClient = daemon.http
        #: What the daemon answered to the POST (``id``, ``name``,
        #: ``state``, ``dir``, ``services``, ``endpoints`` …).
        self.info = info
        #: The environment's id on the daemon.
        self.id: str = str(info["id"])
        #: The spec's name.
        self.name: str = str(info.get("name", self.id))
        #: Its directory (``events.jsonl``, ``logs/``, ``summary.json``).
        self.dir: Optional[Path] = Path(info["dir"]) if info.get("dir") else None
        self.spec_path = spec_path
        self._owns_daemon = owns_daemon
        self._endpoints: Optional[Dict[str, Any]] = info.get("endpoints") or None
        self._summary: Optional[Dict[str, Any]] = None
        self._down = False
        #: The last query an assertion or a read used (for an explanation
        #: of a failed test).
        self.last_query: Optional[str] = None

    def __repr__(self) -> str:
        return f"Environment(id={self.id!r}, daemon={self.daemon.url!r})"

    @property
    def path(self) -> str:
        """The environment's route, ``/environments/{id}``."""
        return f"/environments/{self.id}"

    @property
    def url(self) -> str:
        """``http://daemon/environments/{id}``, what ``tapmesh events`` and
        ``tapmesh traffic`` read."""
        return f"{self.daemon.url}{self.path}"

    @property
    def events_file(self) -> Optional[Path]:
        """``events.jsonl`` in the environment's directory."""
        return self.dir / "events.jsonl" if self.dir else None

    # -- up and down ------------------------------------------------------

    @classmethod
    def up(
        cls,
        spec_path: Union[str, Path],
        *,
        daemon: Union[Daemon, str, None] = None,
        only: Union[Iterable[str], str, None] = None,
        ttl: Union[str, float, int, timedelta, None] = None,
        timeout: float = DEFAULT_UP_TIMEOUT,
    ) -> "Environment":
        """Posts the spec to the daemon and returns once the environment is
        up.

        ``daemon``: a :class:`Daemon`, or the address of one; by default
        ``$TAPMESH_DAEMON``, else ``http://127.0.0.1:7411``. When no daemon
        answers at that address, ``tapmesh serve`` is started on a free port
        (the binary from ``$TAPMESH_BIN``, else ``tapmesh`` on ``PATH``,
        else ``target/debug/tapmesh`` of the repository around the current
        directory or the spec) and stopped again by :meth:`down`.

        Relative paths in the spec start at the spec's directory
        (``base_dir``). ``only`` starts those services and what they depend
        on. ``ttl`` (``"10m"``, seconds, a :class:`~datetime.timedelta`)
        has the daemon stop it after that long. ``timeout`` bounds the
        wait (seconds); an environment not up by then is stopped.

        Raises :class:`~tapmesh.SpecError` (every problem of the spec),
        :class:`~tapmesh.StartError` (the failing service and its log
        tail), :class:`~tapmesh.DaemonStartError` or
        :class:`~tapmesh.DaemonError`.
        """
        path = Path(spec_path).resolve()
        body = path.read_bytes()
        if isinstance(daemon, Daemon):
            chosen, owns = daemon, False
        else:
            chosen = Daemon.ensure(daemon, search_from=[path.parent])
            owns = chosen.started
        try:
            info = _create(chosen, path, body, only, ttl, timeout)
        except BaseException:
            if owns:
                chosen.stop()
            raise
        return cls(chosen, info, spec_path=path, owns_daemon=owns)

    @classmethod
    def attach(cls, daemon: Union[Daemon, str, None], environment: str) -> "Environment":
        """An environment already running on a daemon, by id (or by name
        when only one has it): one another process started, or one a Rust
        test serves. Its queries, assertions and notes work as for one
        :meth:`up` started; :meth:`down` stops it.

        Raises :class:`~tapmesh.DaemonStartError` when no daemon answers,
        :class:`~tapmesh.DaemonError` when it has no such environment.
        """
        chosen = daemon if isinstance(daemon, Daemon) else Daemon.connect(daemon)
        answer = chosen.http.request("GET", f"/environments/{environment}")
        if answer.status != 200:
            raise DaemonError(
                f"GET /environments/{environment} answered {answer.status}: "
                f"{answer.error_text()}",
                answer.status,
                answer.json(),
            )
        info = answer.json()
        assert isinstance(info, dict)
        return cls(chosen, info)

    def down(self, timeout: float = 120.0) -> Optional[Dict[str, Any]]:
        """Stops the environment gracefully (``DELETE``) and returns its
        summary (``summary.json``: outcome, services, per-edge calls, errors
        and latencies). A daemon :meth:`up` started is stopped too. Calling
        it again returns the same summary."""
        if self._down:
            return self._summary
        try:
            answer = self._http.request("DELETE", self.path, timeout=timeout)
            if answer.status == 200:
                data = answer.json() or {}
                self._summary = data.get("summary")
            elif answer.status != 404:
                raise DaemonError(
                    f"DELETE {self.path} answered {answer.status}: {answer.error_text()}",
                    answer.status,
                    answer.json(),
                )
            self._down = True
        finally:
            if self._owns_daemon:
                self._owns_daemon = False
                self.daemon.stop()
                self._down = True
        return self._summary

    @property
    def is_down(self) -> bool:
        """Whether :meth:`down` has run."""
        return self._down

    def __enter__(self) -> "Environment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- state ------------------------------------------------------------

    def describe(self) -> Dict[str, Any]:
        """``GET /environments/{id}``: ``state``, ``services`` (each one's
        ``state``, ``pid``, ``restarts`` …), ``endpoints``, ``last_seq``,
        ``error``, and ``summary`` once down."""
        data = self._http.json("GET", self.path)
        assert isinstance(data, dict)
        return data

    def state(self) -> str:
        """``starting``, ``up``, ``stopping``, ``down``, ``failed`` or
        ``expired``."""
        return str(self.describe().get("state"))

    def last_seq(self) -> int:
        """The seq of the newest event: pass it as ``since`` to look only at
        what happens after now."""
        return int(self.describe().get("last_seq") or 0)

    def endpoints(self) -> Dict[str, Dict[str, Dict[str, Optional[str]]]]:
        """Every service's ingresses: ``{service: {ingress: {"address": …,
        "observed": …}}}`` (``observed``: through the ``~test`` proxy)."""
        if self._endpoints is None:
            self._endpoints = self.describe().get("endpoints") or None
        return dict(self._endpoints or {})

    def endpoint(
        self, service: str, ingress: Optional[str] = None, *, observed: bool = True
    ) -> Endpoint:
        """Where to call ``service``: an :class:`Endpoint` ``(host, port)``
        tuple; ``str(endpoint)`` is ``"host:port"``, ``endpoint.url`` is
        ``"http://host:port"``.

        By default the ``~test`` proxy's address (``observed``), so the
        test's own calls are events too, as with Rust's
        ``env.endpoint(…)``; ``observed=False`` gives where the service
        itself listens. ``ingress`` defaults to ``default`` (or the
        service's only ingress). Raises :class:`~tapmesh.NoEndpoint`
        naming the services or ingresses there are."""
        endpoints = self.endpoints()
        ingresses = endpoints.get(service)
        if ingresses is None:
            known = ", ".join(sorted(endpoints)) or "none"
            raise NoEndpoint(
                f"{self.name} has no service {service!r} with an ingress (those with one: {known})"
            )
        if ingress is None:
            ingress = "default" if "default" in ingresses or len(ingresses) != 1 else next(iter(ingresses))
        found = ingresses.get(ingress)
        if found is None:
            raise NoEndpoint(
                f"{service} has no ingress {ingress!r} (it has: {', '.join(sorted(ingresses))})"
            )
        address = (found.get("observed") if observed else None) or found.get("address")
        if not address:
            raise NoEndpoint(f"{service}.{ingress} has no address yet")
        return Endpoint.parse(str(address))

    def log(self, service: Optional[str] = None, tail: int = 200, timeout: float = 30.0) -> str:
        """The last ``tail`` lines of one service's log (or of every
        service's, as ``service | line``)."""
        params: Params = {"service": service, "tail": tail}
        answer = self._http.request("GET", f"{self.path}/log", params=params, timeout=timeout)
        if answer.status != 200:
            raise DaemonError(
                f"GET {self.path}/log answered {answer.status}: {answer.error_text()}",
                answer.status,
                answer.json(),
            )
        return answer.body.decode("utf-8", "replace")

    # -- events -----------------------------------------------------------

    def _params(
        self,
        query: Optional[str],
        types: Optional[Sequence[str]],
        source: Optional[str],
        target: Optional[str],
        since: Optional[int],
    ) -> Dict[str, Union[str, int, None]]:
        if isinstance(types, str):
            types = [types]
        return {
            "q": query,
            "type": ",".join(types) if types else None,
            "source": source,
            "target": target,
            "since": since,
        }

    def _query_failed(self, query: Optional[str], answer: Answer) -> NoReturn:
        """Raises for a refused event or explain request: a
        :class:`QueryError` for a ``400`` about the query."""
        data = answer.json()
        if (
            answer.status == 400
            and isinstance(data, dict)
            and (query is not None or "position" in data)
        ):
            position = data.get("position") or {}
            raise QueryError(
                query or "",
                str(data.get("error", answer.error_text())),
                position.get("line"),
                position.get("column"),
            )
        raise DaemonError(
            f"{self.path}: the daemon answered {answer.status}: {answer.error_text()}",
            answer.status,
            data,
        )

    def events(
        self,
        query: Optional[str] = None,
        *,
        types: Optional[Sequence[str]] = None,
        source: Optional[str] = None,
        target: Optional[str] = None,
        since: Optional[int] = None,
        timeout: float = 60.0,
    ) -> List[Event]:
        """The events logged so far that match ``query`` (a CEL expression
        such as ``http.status >= 500`` or ``edge == "orders->inventory"``;
        ``None``: every event), in seq order. ``types`` (``connection.*``
        for a family), ``source``, ``target`` and ``since`` (only events
        after that seq) narrow it further, as the daemon's route does.

        Raises :class:`~tapmesh.QueryError` with the daemon's message and
        position for a query that does not compile."""
        if query is not None:
            self.last_query = query
        params: Params = {**self._params(query, types, source, target, since), "follow": False}
        deadline = time.monotonic() + timeout
        try:
            return [
                parse_event(line)
                for line in self._http.stream_lines(
                    f"{self.path}/events",
                    params=params,
                    deadline=deadline,
                    on_error=lambda answer: self._query_failed(query, answer),
                )
                if line.strip()
            ]
        except TimeoutError as e:
            raise DaemonError(f"reading the events of {self.id} took over {timeout}s") from e

    def wait_for(
        self,
        query: Optional[str],
        timeout: float = 10.0,
        *,
        since: Optional[int] = None,
        types: Optional[Sequence[str]] = None,
        source: Optional[str] = None,
        target: Optional[str] = None,
    ) -> Event:
        """The first event matching ``query`` (and the other filters), among
        those logged already (after ``since``, if given) and those to come,
        waiting at most ``timeout`` seconds. The stream is closed once it
        returns.

        Raises :class:`~tapmesh.WaitTimeout` (an :class:`AssertionError`)
        when no event matched in time, or the environment went down first;
        its message says so in one line, then the daemon's explanation."""
        __tracebackhide__ = True  # pytest: the failure is the caller's line
        if query is not None:
            self.last_query = query
        params: Params = self._params(query, types, source, target, since)
        started = time.monotonic()
        deadline = started + timeout
        wanted = _selection(query, types, source, target)
        skip_dropped = not (types and any(t.startswith("events.") for t in types))
        try:
            for line in self._http.stream_lines(
                f"{self.path}/events",
                params=params,
                deadline=deadline,
                on_error=lambda answer: self._query_failed(query, answer),
            ):
                if not line.strip():
                    continue
                event = parse_event(line)
                if skip_dropped and event.type == "events.dropped":
                    continue
                return event
        except TimeoutError:
            headline = f"no event matched {wanted} within {timeout:g}s"
        else:
            elapsed = time.monotonic() - started
            headline = (
                f"no event matched {wanted}: the environment's events ended after "
                f"{elapsed:.1f}s (it is {self._state_or_unknown()})"
            )
        raise WaitTimeout(headline, self._explanation_text(query), query)

    def expect(self, query: str) -> "Expectation":
        """An expectation over the events logged so far that match
        ``query``: ``.count(n)``, ``.none()``, ``.at_least(n)``."""
        return Expectation(self, query)

    def explain(self, query: Optional[str] = None, timeout: float = 30.0) -> Explanation:
        """The daemon's explanation of ``query`` over the events so far
        (``GET /environments/{id}/explain``): the matching events, the
        nearest non-matching ones, the environment's errors and the commands
        to see more. Without a query, only what went wrong."""
        answer = self._http.request(
            "GET", f"{self.path}/explain", params={"q": query}, timeout=timeout
        )
        if answer.status != 200:
            self._query_failed(query, answer)
        data = answer.json()
        if not isinstance(data, dict):
            raise DaemonError(f"GET {self.path}/explain answered no JSON object", 200, data)
        return Explanation(int(data.get("matching") or 0), str(data.get("text") or ""))

    def _explanation_text(self, query: Optional[str]) -> str:
        """The explanation for a failure message: the daemon's text, or why
        there is none."""
        try:
            return self.explain(query).text
        except (DaemonError, QueryError) as e:
            return f"(no explanation from the daemon: {e})"

    def _state_or_unknown(self) -> str:
        try:
            return self.state()
        except DaemonError:
            return "gone"

    def note(self, text: str) -> int:
        """Writes a ``test.note`` event (``{"note": {"text": …}}``) into the
        environment's timeline, so the events show the test's own steps;
        returns its seq."""
        data = self._http.json(
            "POST", f"{self.path}/notes", payload={"text": text}, ok=(200, 201)
        )
        return int((data or {}).get("seq") or 0)


    # -- faults -----------------------------------------------------------

    def fault(
        self,
        edge: str,
        type: str,
        *,
        name: Optional[str] = None,
        match: Optional[str] = None,
        first: Optional[int] = None,
        every: Optional[int] = None,
        toxicity: Optional[float] = None,
        stream: Optional[str] = None,
        **attributes: Any,
    ) -> "Fault":
        """Adds a fault to ``edge`` (``"orders->inventory"``); the
        :class:`Fault` returned removes it when its ``with`` block ends (or
        on :meth:`Fault.remove`). ``type`` and the attributes are
        Toxiproxy's where it has them::

            with env.fault("~test->front", "abort", http_status=503,
                           match='http.path == "/hello"', first=2):
                ...  # the first two calls get 503, the rest go through
            env.fault("orders->inventory", "latency", latency=100, jitter=10)

        Raises :class:`FaultError` with every problem (and its path) for a
        fault the daemon refuses."""
        body: Dict[str, Any] = {"edge": edge, "type": type, "attributes": attributes}
        for key, value in (
            ("name", name),
            ("match", match),
            ("first", first),
            ("every", every),
            ("toxicity", toxicity),
            ("stream", stream),
        ):
            if value is not None:
                body[key] = value
        answer = self._http.request(
            "POST",
            f"{self.path}/faults",
            body=json.dumps(body).encode("utf-8"),
            content_type="application/json",
        )
        if answer.status != 201:
            detail = answer.json() if answer.status in (400, 404, 409) else None
            if isinstance(detail, dict) and "error" in detail:
                raise FaultError(str(detail["error"]), detail.get("problems") or ())
            raise DaemonError(
                f"POST {self.path}/faults answered {answer.status}: {answer.error_text()}",
                answer.status,
                answer.json(),
            )
        return Fault(self, edge, answer.json())

    def faults(self) -> Dict[str, List[Dict[str, Any]]]:
        """Every observed edge's faults, as the daemon lists them."""
        return self._http.json("GET", f"{self.path}/faults") or {}

    def clear_faults(self, edge: Optional[str] = None) -> int:
        """Removes every fault (of ``edge`` only, if given); how many."""
        params = {"edge": edge} if edge is not None else None
        data = self._http.json("DELETE", f"{self.path}/faults", params=params)
        return int((data or {}).get("removed") or 0)


class Fault:
    """A fault :meth:`Environment.fault` added; a context manager that
    removes it on exit. ``spec`` is the fault as the daemon holds it."""

    def __init__(self, env: Environment, edge: str, spec: Dict[str, Any]) -> None:
        self.env = env
        self.edge = edge
        self.spec = spec
        self.name: str = spec["name"]
        self._removed = False

    def __repr__(self) -> str:
        return f"<Fault {self.name} ({self.spec.get('type')}) on {self.edge}>"

    def remove(self) -> None:
        """Removes the fault (once; later calls do nothing)."""
        if self._removed or self.env.is_down:
            return
        self._removed = True
        self.env._http.json(
            "DELETE",
            f"{self.env.path}/faults",
            params={"edge": self.edge, "name": self.name},
            ok=(200, 404),
        )

    def __enter__(self) -> "Fault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Expectation:
    """What :meth:`Environment.expect` returns: assertions over the events
    logged so far that match a query. Each returns the matching events when
    it holds, and raises :class:`~tapmesh.ExpectationFailed` (an
    :class:`AssertionError`) with the expected and found counts and the
    daemon's explanation when it does not."""

    def __init__(self, env: Environment, query: str) -> None:
        self.env = env
        self.query = query

    def __repr__(self) -> str:
        return f"Expectation({self.query!r})"

    def _check(self, holds: bool, expected: str, events: List[Event]) -> List[Event]:
        __tracebackhide__ = True
        if holds:
            return events
        headline = f"expected {expected} matching {self.query!r}, found {len(events)}"
        raise ExpectationFailed(
            headline, self.env._explanation_text(self.query), self.query, events
        )

    def count(self, n: int) -> List[Event]:
        """Exactly ``n`` matching events."""
        __tracebackhide__ = True
        events = self.env.events(self.query)
        return self._check(len(events) == n, _events_word(n), events)

    def none(self) -> List[Event]:
        """No matching event (returns the empty list)."""
        __tracebackhide__ = True
        events = self.env.events(self.query)
        return self._check(not events, "no event", events)

    def at_least(self, n: int) -> List[Event]:
        """``n`` or more matching events."""
        __tracebackhide__ = True
        events = self.env.events(self.query)
        return self._check(len(events) >= n, f"at least {_events_word(n)}", events)


def _create(
    daemon: Daemon,
    path: Path,
    body: bytes,
    only: Union[Iterable[str], str, None],
    ttl: Union[str, float, int, timedelta, None],
    timeout: float,
) -> Dict[str, Any]:
    """``POST /environments?wait=true``: the environment once it is up."""
    if only is not None and not isinstance(only, str):
        only = ",".join(only)
    params: Params = {
        "wait": True,
        "base_dir": str(path.parent),
        "only": only or None,
        "ttl": _ttl_text(ttl),
    }
    asked_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    try:
        answer = daemon.http.request(
            "POST",
            "/environments",
            params=params,
            body=body,
            content_type="application/yaml",
            timeout=timeout,
        )
    except DaemonError as e:
        if not isinstance(e.__cause__, (socket.timeout, TimeoutError)):
            raise
        stopped = _stop_abandoned(daemon, body, asked_at)
        raise StartError(
            str(path),
            None,
            f"not up within {timeout:g}s; {stopped}",
            [],
        ) from e
    data = answer.json()
    if answer.status == 201 and isinstance(data, dict):
        return data
    if answer.status == 422 and isinstance(data, dict) and "problems" in data:
        problems = [
            SpecProblem(str(p.get("path", "")), str(p.get("message", "")))
            if isinstance(p, dict)
            else SpecProblem("", str(p))
            for p in data["problems"]
        ]
        raise SpecError(str(path), problems)
    if answer.status == 500 and isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            service = error.get("service")
            reason = str(error.get("message") or "")
            tail = [str(line) for line in error.get("log_tail") or []]
        else:
            service, reason, tail = None, str(error or answer.error_text()), []
        if data.get("dir"):
            reason += f"\n  its events and logs: {data['dir']}"
        if data.get("id"):
            # Stopped already; forget it on the daemon (its files stay).
            try:
                daemon.http.request("DELETE", f"/environments/{data['id']}", timeout=30)
            except DaemonError:
                pass
        raise StartError(str(path), service, reason, tail, data)
    raise DaemonError(
        f"POST /environments answered {answer.status}: {answer.error_text()}",
        answer.status,
        data,
    )


def _stop_abandoned(daemon: Daemon, body: bytes, asked_at: datetime) -> str:
    """After a POST timed out: stops the environment it was starting (by the
    spec's name, still starting, created since the POST); says what it did."""
    name = _spec_name(body.decode("utf-8", "replace"))
    if name is None:
        return "could not tell which environment to stop (the spec's name is unreadable)"
    try:
        listed = daemon.http.json("GET", "/environments", timeout=10)
    except DaemonError as e:
        return f"could not list the daemon's environments to stop it: {e}"
    stopped = []
    for env in listed or []:
        created = _parse_time(str(env.get("created_at", "")))
        if (
            env.get("name") == name
            and env.get("state") == "starting"
            and created is not None
            and created >= asked_at
        ):
            try:
                daemon.http.request("DELETE", f"/environments/{env['id']}", timeout=60)
                stopped.append(str(env["id"]))
            except DaemonError:
                pass
    return f"stopped {', '.join(stopped)}" if stopped else "found nothing to stop"
