"""Faults from Python: a scoped fault on the front->backend edge (the
service's own calls, the ones a test wants to fail) and on the test's own
edge, what the events say of them, and a fault the daemon refuses."""

from __future__ import annotations

import time

import pytest

from support import get
from tapmesh import Environment, FaultError


def test_a_scoped_abort_fails_the_first_call_then_goes_away(web: Environment) -> None:
    front = web.endpoint("front")
    since = web.last_seq()
    with web.fault(
        "front->backend",
        "abort",
        http_status=503,
        body="backend down for the test",
        match='http.path == "/item"',
        first=1,
        name="backend-down",
    ) as fault:
        assert fault.name == "backend-down"
        assert web.faults()["front->backend"][0]["attributes"]["http_status"] == 503
        # front does not retry: its own call fails, the next one passes.
        assert get(front, "/chain") == (502, b"backend down for the test")
        assert get(front, "/chain") == (200, b'{"sku": "A-7", "qty": 3}')
    assert web.faults()["front->backend"] == []

    calls = web.wait_for(
        'edge == "front->backend" && http.path == "/item" && http.status == 200',
        timeout=10,
        since=since,
    )
    assert calls.request is not None and calls.request.fault is None
    failed = web.expect('edge == "front->backend" && http.status == 503').count(1)[0]
    assert failed.request is not None
    assert failed.request.fault == "backend-down"
    assert failed.request.response_body == "backend down for the test"
    injected = web.wait_for('fault.fault == "backend-down"', timeout=10, since=since)
    assert injected.type == "fault.injected"
    assert injected.fault is not None
    assert injected.fault.kind == "abort"
    assert injected.fault.request_seq == failed.seq
    assert injected.fault.edge == "front->backend"


def test_latency_on_the_test_edge_and_a_refused_fault(web: Environment) -> None:
    front = web.endpoint("front")
    with web.fault("~test->front", "latency", latency=150):
        started = time.monotonic()
        assert get(front, "/hello") == (200, b"hello")
        assert time.monotonic() - started >= 0.14
    with pytest.raises(FaultError) as refused:
        web.fault("~test->front", "latency", latency="soon", colour=1)
    paths = {p["path"] for p in refused.value.problems}
    assert paths == {"attributes.latency", "attributes.colour"}, refused.value.problems
    with pytest.raises(FaultError) as no_edge:
        web.fault("front->nowhere", "down")
    assert "no observed edge" in str(no_edge.value)
    assert web.clear_faults() == 0
