"""Events read back typed after real traffic through the proxies; queries
(the daemon's ``?q=``) compared with the CLI's ``-q`` on the same file;
notes; a query that does not compile."""

from __future__ import annotations

import json
import subprocess
import time
from typing import List

import pytest

from support import drive
from tapmesh import (
    Connection,
    Environment,
    Event,
    Lifecycle,
    Note,
    QueryError,
    Request,
)


def drive_chain(env: Environment) -> bytes:
    """GET /chain on front (front calls backend's /item); returns once the
    front → backend connection's close is logged too."""
    since = env.last_seq()
    status, body = drive(env, "/chain")
    assert status == 200, body
    env.wait_for(None, 10, since=since, types=["connection.closed"], target="backend")
    return body


def test_events_are_typed_field_by_field(web: Environment) -> None:
    body = drive_chain(web)
    assert json.loads(body) == {"sku": "A-7", "qty": 3}

    events = web.events()
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), "seq 1, 2, 3 … with no gaps"
    for event in events:
        assert isinstance(event, Event)
        assert event.environment == "pyweb"
        assert event.time.year >= 2024
        assert event.raw["seq"] == event.seq and event.raw["type"] == event.type

    # The test's own request (~test → front) and front → backend. Each edge
    # has its own proxy: which of the two is logged first is not fixed.
    requests = sorted(
        (e for e in events if e.type == "request.completed"), key=lambda e: str(e.edge)
    )
    assert [(e.request.source, e.request.target) for e in requests if e.request] == [
        ("front", "backend"),
        ("~test", "front"),
    ]
    inner, outer = requests
    assert inner.payload_name == "request" and inner.payload is inner.request
    assert inner.service is None
    assert inner.edge == "front->backend"
    call = outer.request
    assert isinstance(call, Request)
    assert call.edge == "~test->front"
    assert call.ingress == "default"
    assert call.method == "GET"
    assert call.path == "/chain"
    assert call.version == "HTTP/1.1"
    assert call.status_code == 200
    assert isinstance(call.connection, int)
    assert isinstance(call.latency_ms, float) and call.latency_ms > 0
    assert call.request_size == 0
    assert call.response_size == len(body)
    assert call.request_headers["host"].startswith("127.0.0.1:")
    assert call.response_headers["content-type"] == "application/json"
    assert call.response_headers["x-served-by"] == "front"
    assert call.response_body == body.decode()
    assert call.response_body_encoding == "utf8"
    assert call.response_body_truncated is False
    assert call.response_bytes() == body
    assert call.response_json() == {"sku": "A-7", "qty": 3}
    assert call.error is None
    assert inner.request is not None
    assert inner.request.path == "/item"
    assert inner.request.response_headers["x-served-by"] == "backend"
    # Every field stays reachable, known to this package or not.
    assert call.get("status_code") == 200 and call.raw["path"] == "/chain"

    # The connection of the test's request, opened and closed.
    conns = [e for e in events if e.connection and e.connection.id == call.connection]
    assert [e.type for e in conns] == ["connection.opened", "connection.closed"]
    closed = conns[1].connection
    assert isinstance(closed, Connection)
    assert (closed.source, closed.target, closed.ingress) == ("~test", "front", "default")
    assert closed.client_addr and closed.client_addr.startswith("127.0.0.1:")
    assert closed.bytes_in and closed.bytes_in > 0
    assert closed.bytes_out and closed.bytes_out > len(body)
    assert closed.duration_ms is not None and closed.duration_ms > 0

    # Lifecycle events carry the service in the envelope.
    ready = [e for e in events if e.type == "service.ready"]
    assert sorted(e.service for e in ready if e.service) == ["backend", "front"]
    lifecycle = ready[0].lifecycle
    assert isinstance(lifecycle, Lifecycle)
    assert lifecycle.state == "ready"
    assert isinstance(lifecycle.pid, int)
    up = [e for e in events if e.type == "environment.up"]
    assert len(up) == 1 and up[0].lifecycle is not None
    endpoints = up[0].lifecycle.endpoints or {}
    assert endpoints["front"]["default"]["observed"] == str(web.endpoint("front"))
    starting = [e for e in events if e.type == "service.starting" and e.service == "front"]
    assert starting and starting[0].lifecycle and "app.py front" in (starting[0].lifecycle.reason or "")


def test_events_filters_of_the_route(web: Environment) -> None:
    drive_chain(web)
    requests = web.events(types=["request.completed"])
    assert sorted(str(e.request.path) for e in requests if e.request) == ["/chain", "/item"]
    assert [e.request.path for e in web.events(types=["request.completed"], source="front") if e.request] == ["/item"]
    assert [e.type for e in web.events(types=["connection.*"], target="backend")] == [
        "connection.opened",
        "connection.closed",
    ]
    last = requests[0].seq
    assert [e.seq for e in web.events(types=["request.completed"], since=last)] == [requests[1].seq]


def cli_seqs(tapmesh_bin: str, env: Environment, query: str) -> List[int]:
    """`tapmesh events FILE -q QUERY --json` on the environment's
    events.jsonl, once the file has every event logged so far."""
    assert env.events_file is not None
    last = env.last_seq()
    deadline = time.monotonic() + 10
    while sum(1 for _ in env.events_file.open("rb")) < last:
        assert time.monotonic() < deadline, f"events.jsonl never reached seq {last}"
        time.sleep(0.05)
    out = subprocess.run(
        [tapmesh_bin, "events", str(env.events_file), "-q", query, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["seq"] for line in out.stdout.splitlines() if line.strip()]


QUERIES = [
    'http.status >= 500',
    'http.status == 200 && edge == "~test->front"',
    'edge == "front->backend"',
    'type == "connection.closed" && connection.bytes_out > 0',
    'request.path.startsWith("/ch") || request.path == "/fail"',
    'http.request.headers["host"] != "" && latency > duration("0ms")',
    'type in ["service.ready", "environment.up"]',
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_query_gives_the_same_events_as_the_cli(web: Environment, tapmesh_bin: str, query: str) -> None:
    drive_chain(web)
    assert drive(web, "/fail")[0] == 500
    events = web.events(query)
    assert events, f"{query} matched nothing"
    assert [e.seq for e in events] == cli_seqs(tapmesh_bin, web, query)


def test_a_query_selects_by_payload_fields(web: Environment) -> None:
    drive_chain(web)
    assert drive(web, "/fail")[0] == 500
    failed = web.events("http.status >= 500")
    assert [(e.request.path, e.request.status_code) for e in failed if e.request] == [("/fail", 500)]
    inner = web.events('edge == "front->backend"')
    assert {e.type for e in inner} >= {"request.completed", "connection.opened", "connection.closed"}
    assert all(e.edge == "front->backend" for e in inner)


def test_note_adds_a_test_note_event(web: Environment) -> None:
    seq = web.note("placing an order")
    assert seq > 0
    notes = web.events(types=["test.note"])
    assert [e.seq for e in notes] == [seq]
    note = notes[0]
    assert note.type == "test.note"
    assert note.payload_name == "note"
    assert isinstance(note.note, Note)
    assert note.note.text == "placing an order"
    assert note.environment == "pyweb"
    # Queries see it too.
    assert [e.seq for e in web.events('note.text == "placing an order"')] == [seq]


def test_a_bad_query_raises_query_error_with_its_position(web: Environment) -> None:
    query = 'http.status >= 500 &&'
    with pytest.raises(QueryError) as bad:
        web.events(query)
    error = bad.value
    assert error.query == query
    assert error.line == 1
    assert isinstance(error.column, int) and 1 <= error.column <= len(query) + 1
    message = str(error)
    assert f"1:{error.column}" in message
    assert "^" in message
    # The same from every reader of a query.
    with pytest.raises(QueryError):
        web.wait_for(query, 2)
    with pytest.raises(QueryError):
        web.expect(query).count(1)
    with pytest.raises(QueryError):
        web.explain(query)
