"""The pytest plugin, run as a user would: a small test file in a pytest
subprocess (pytester), on the session's daemon. The plugin is the one the
installed package registers (entry point ``pytest11``)."""

from __future__ import annotations

import re
import textwrap

import pytest

from support import SPECS
from tapmesh import Daemon

TESTS = textwrap.dedent(
    '''
    import urllib.request
    import pytest

    SPEC = {spec!r}

    def hello(env):
        # Returns once the exchange's connection has closed: nothing more
        # is logged after it, so an explanation read now is the final one.
        since = env.last_seq()
        with urllib.request.urlopen(env.endpoint("front").url + "/hello", timeout=5) as answer:
            body = answer.read()
        env.wait_for(None, 5, since=since, types=["connection.closed"], source="~test")
        return body

    @pytest.mark.tapmesh_spec(SPEC, only=["front"])
    def test_passes(tapmesh_env):
        assert hello(tapmesh_env) == b"hello"
        tapmesh_env.wait_for('http.path == "/hello"', 5)
        tapmesh_env.expect('http.path == "/hello"').count(1)

    @pytest.mark.tapmesh_spec(SPEC, only=["front"])
    def test_fails_on_a_plain_assert(tapmesh_env):
        hello(tapmesh_env)
        events = tapmesh_env.events('http.path == "/hello"')
        with open("plain.txt", "w") as out:
            out.write(tapmesh_env.id + "\\n" + tapmesh_env.explain('http.path == "/hello"').text)
        assert len(events) == 2, "MARK-PLAIN"

    @pytest.mark.tapmesh_spec(SPEC, only=["front"])
    def test_fails_on_an_expectation(tapmesh_env):
        hello(tapmesh_env)
        tapmesh_env.wait_for('http.path == "/hello"', 5)
        with open("expect.txt", "w") as out:
            out.write(tapmesh_env.id + "\\n" + tapmesh_env.explain('http.path == "/hello"').text)
        tapmesh_env.expect('http.path == "/hello"').count(2)

    def test_the_factory(tapmesh_up):
        first = tapmesh_up(SPEC, only="backend")
        second = tapmesh_up(SPEC, only="backend")
        assert first.id != second.id
        assert list(first.endpoints()) == ["backend"]

    def test_without_a_marker(tapmesh_env):
        pass
    '''
)


def failures_section(output: str) -> str:
    """The report up to pytest's short test summary. With ``CI`` set (as on
    CI machines) pytest prints each failure's whole message again in that
    summary, so only the part before it says what the plugin printed."""
    head, marker, _ = output.partition("short test summary info")
    assert marker, output  # -rfE asked for the summary: it must be there
    return head


def assert_once(explanation: str, env_id: str, output: str) -> None:
    """Each line of the explanation appears in the failure reports, and those
    that name the environment's files (only this environment's explanation
    has them) appear once."""
    lines = [line.strip() for line in explanation.splitlines() if line.strip()]
    assert lines and any("tapmesh traffic" in line for line in lines), explanation
    reports = failures_section(output)
    shown = [re.sub(r"^E\s+", "", line).strip() for line in reports.splitlines()]
    for line in lines:
        assert line in shown, line
        if env_id in line:
            assert shown.count(line) == 1, (line, reports)


@pytest.mark.parametrize("ci", ["", "true"], ids=["local", "on-ci"])
def test_the_plugin_gives_environments_and_prints_the_explanation_once(
    pytester: pytest.Pytester, daemon: Daemon, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    # pytest reports differently where CI is set (whole messages in the
    # short summary): the plugin must print the explanation once either way.
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_user=TESTS.format(spec=str(SPECS / "web.yaml")))
    result = pytester.runpytest_subprocess(
        "--tapmesh-daemon", daemon.url, "-rfE", timeout=120
    )
    result.assert_outcomes(passed=2, failed=2, errors=1)
    output = result.stdout.str()

    # A plain assertion: the explanation of the test's last query, once,
    # in a section named after the environment.
    env_id, plain = (pytester.path / "plain.txt").read_text().split("\n", 1)
    reports = failures_section(output)
    assert reports.count(f"tapmesh: pyweb ({env_id})") == 1, output
    assert plain in reports, output  # the section is the text as it is
    assert_once(plain, env_id, output)
    assert "MARK-PLAIN" in output

    # An expectation: its message is the explanation (each line behind
    # pytest's "E   "), not printed a second time.
    expect_id, explanation = (pytester.path / "expect.txt").read_text().split("\n", 1)
    assert "expected 2 events matching 'http.path == \"/hello\"', found 1" in output
    assert_once(explanation, expect_id, output)
    assert reports.count("tapmesh: pyweb (") == 1

    # No marker: a usage error that says what to do.
    assert "uses tapmesh_env without a spec" in output

    # Every environment the run brought up was downed.
    left = daemon.http.json("GET", "/environments")
    assert [e for e in left if e["name"] == "pyweb" and e["state"] in ("starting", "up")] == []
