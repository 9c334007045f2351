"""The exceptions the package raises.

Two families:

* :class:`TapmeshError` and its subclasses: something did not work (the
  daemon could not be started or reached, the spec is invalid, a service
  did not start, a query does not compile). Each message says everything
  the daemon said: every problem of a spec, a failing service's log tail,
  a query error's caret.
* :class:`ExpectationFailed` (an :class:`AssertionError`, so pytest reports
  it as a failed assertion) and :class:`WaitTimeout`: the system did not do
  what the test expected. The message is one line saying what was expected
  and what happened, then the daemon's explanation of the environment's
  events (``GET /environments/{id}/explain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

__all__ = [
    "TapmeshError",
    "DaemonError",
    "DaemonStartError",
    "SpecError",
    "SpecProblem",
    "StartError",
    "QueryError",
    "NoEndpoint",
    "FaultError",
    "ExpectationFailed",
    "WaitTimeout",
]


class TapmeshError(Exception):
    """Base class of every error of this package except the assertion ones."""


class DaemonError(TapmeshError):
    """The daemon answered something this package did not expect, or could
    not be reached.

    ``status`` is the HTTP status (``None`` when there was no answer) and
    ``body`` the answer's parsed JSON (or text)."""

    def __init__(self, message: str, status: Optional[int] = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class FaultError(TapmeshError):
    """A fault was refused: not valid (``problems`` lists each with its
    ``path`` and ``message``), an edge the environment does not have, or a
    name its edge already has."""

    def __init__(self, message: str, problems: Sequence[Dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class DaemonStartError(TapmeshError):
    """``tapmesh serve`` could not be found or did not start; the message
    has the command and the last lines it wrote."""


@dataclass(frozen=True)
class SpecProblem:
    """One problem of a spec, with its path in the file
    (``services.api.egresses.db.service``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(TapmeshError):
    """The daemon refused the spec (``422``): ``problems`` lists every one,
    and the message shows them all, one per line."""

    def __init__(self, spec: str, problems: Sequence[SpecProblem]) -> None:
        self.spec = spec
        self.problems: List[SpecProblem] = list(problems)
        count = len(self.problems)
        lines = [f"the spec {spec} has {count} problem{'' if count == 1 else 's'}:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class StartError(TapmeshError):
    """The environment did not start (``500`` from ``POST
    /environments?wait=true``): ``service`` is the one that failed (if one
    did), ``reason`` the daemon's message and ``log_tail`` the service's
    last log lines, all in the message."""

    def __init__(
        self,
        spec: str,
        service: Optional[str],
        reason: str,
        log_tail: Sequence[str],
        environment: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.spec = spec
        self.service = service
        self.reason = reason
        self.log_tail: List[str] = list(log_tail)
        self.environment = environment
        head = f"the environment of {spec} did not start"
        if service:
            head += f": service {service} failed"
        lines = [head, f"  {reason}" if reason else "  (the daemon gave no reason)"]
        if self.log_tail:
            lines.append(f"  last lines of {service or 'its'} log:")
            lines += [f"    | {line}" for line in self.log_tail]
        super().__init__("\n".join(lines))


class QueryError(TapmeshError, ValueError):
    """The daemon could not compile a query (``400`` before any event was
    read). The message is the daemon's text, with the line, the column and a
    caret under the position; ``line`` and ``column`` are 1-based, or
    ``None`` if the daemon gave no position."""

    def __init__(
        self,
        query: str,
        message: str,
        line: Optional[int] = None,
        column: Optional[int] = None,
    ) -> None:
        self.query = query
        self.line = line
        self.column = column
        super().__init__(message)


class NoEndpoint(TapmeshError, LookupError):
    """The environment has no such service with an ingress, or the service
    no such ingress; the message names the ones there are."""


class ExpectationFailed(AssertionError):
    """An expectation over the environment's events did not hold.

    ``str(error)`` is the headline (what was expected, what was found) and
    the daemon's explanation below it. ``events`` holds the events that did
    match, ``explanation`` the daemon's text alone."""

    def __init__(
        self,
        headline: str,
        explanation: str,
        query: Optional[str] = None,
        events: Sequence[Any] = (),
    ) -> None:
        self.headline = headline
        self.explanation = explanation
        self.query = query
        self.events: List[Any] = list(events)
        text = headline if not explanation else f"{headline}\n{explanation.rstrip()}"
        super().__init__(text)


class WaitTimeout(ExpectationFailed):
    """:meth:`tapmesh.Environment.wait_for` saw no matching event within its
    timeout (or the environment went down first)."""
