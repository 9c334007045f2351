"""wait_for and expect: passing, and failing with the daemon's explanation."""

from __future__ import annotations

import threading
import time

import pytest

from support import drive, get
from tapmesh import Environment, ExpectationFailed, WaitTimeout


def later(seconds: float, env: Environment, path: str) -> threading.Thread:
    """GET `path` on front after `seconds`, in the background."""

    def run() -> None:
        time.sleep(seconds)
        get(env.endpoint("front"), path)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_for_returns_the_first_match_as_it_happens(web: Environment) -> None:
    since = web.last_seq()
    sender = later(0.5, web, "/hello")
    started = time.monotonic()
    event = web.wait_for('http.path == "/hello"', timeout=10, since=since)
    waited = time.monotonic() - started
    sender.join(5)
    assert event.type == "request.completed"
    assert event.seq > since
    assert event.request is not None and event.request.path == "/hello"
    assert event.request.status_code == 200
    assert 0.3 < waited < 10
    # From the start (no `since`): the same event, at once.
    again = web.wait_for('http.path == "/hello"', timeout=5)
    assert again.seq == event.seq


def test_wait_for_with_the_route_filters(web: Environment) -> None:
    since = web.last_seq()
    sender = later(0.3, web, "/chain")
    event = web.wait_for(None, 10, since=since, types=["request.completed"], source="front")
    sender.join(5)
    assert event.request is not None
    assert (event.request.source, event.request.target, event.request.path) == ("front", "backend", "/item")


def test_wait_for_times_out_with_the_explanation(web: Environment) -> None:
    assert drive(web, "/fail")[0] == 500
    query = 'http.status == 503'
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as timed_out:
        web.wait_for(query, timeout=1.5)
    waited = time.monotonic() - started
    assert 1.4 < waited < 6, waited
    error = timed_out.value
    assert isinstance(error, AssertionError)
    message = str(error)
    headline, _, rest = message.partition("\n")
    assert headline == "no event matched 'http.status == 503' within 1.5s"
    assert error.explanation == web.explain(query).text
    assert rest == error.explanation.rstrip()
    # The environment's errors: the 500 on ~test->front.
    assert "500" in error.explanation and "/fail" in error.explanation
    assert "tapmesh traffic" in error.explanation


def test_wait_for_times_out_on_route_filters_too(web: Environment) -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as timed_out:
        web.wait_for(None, 0.5, types=["grpc.call.completed"])
    assert time.monotonic() - started < 5
    assert str(timed_out.value).startswith(
        "no event matched type grpc.call.completed within 0.5s\n"
    )


def test_expect_passes_and_returns_the_matching_events(web: Environment) -> None:
    for path in ("/hello", "/hello", "/fail"):
        drive(web, path)
    hello = web.expect('http.path == "/hello"').count(2)
    assert [e.request.path for e in hello if e.request] == ["/hello", "/hello"]
    assert len(web.expect("http.status >= 500").count(1)) == 1
    assert web.expect("http.status == 404").none() == []
    assert len(web.expect('edge == "~test->front"').at_least(3)) >= 3


def test_expect_fails_with_what_was_expected_and_the_explanation(web: Environment) -> None:
    drive(web, "/hello")
    drive(web, "/fail")

    query = "http.status >= 500"
    with pytest.raises(ExpectationFailed) as none_failed:
        web.expect(query).none()
    error = none_failed.value
    assert isinstance(error, AssertionError)
    headline, _, rest = str(error).partition("\n")
    assert headline == "expected no event matching 'http.status >= 500', found 1"
    assert error.explanation == web.explain(query).text
    assert rest == error.explanation.rstrip()
    assert [e.request.path for e in error.events if e.request] == ["/fail"]
    assert "/fail" in error.explanation

    with pytest.raises(ExpectationFailed) as count_failed:
        web.expect('http.path == "/hello"').count(3)
    assert str(count_failed.value).startswith(
        "expected 3 events matching 'http.path == \"/hello\"', found 1\n"
    )

    with pytest.raises(ExpectationFailed) as at_least_failed:
        web.expect('grpc.method == "Reserve"').at_least(1)
    assert str(at_least_failed.value).startswith(
        "expected at least 1 event matching 'grpc.method == \"Reserve\"', found 0\n"
    )
    assert web.explain('grpc.method == "Reserve"').matching == 0
    assert web.explain(query).matching == 1
