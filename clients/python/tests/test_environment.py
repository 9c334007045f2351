"""Up, endpoints, down, and how a start that fails is reported."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import SPECS, get
from tapmesh import (
    Daemon,
    DaemonError,
    Endpoint,
    Environment,
    NoEndpoint,
    SpecError,
    StartError,
    WaitTimeout,
)


def test_up_gives_endpoints_and_down_gives_the_summary(daemon: Daemon) -> None:
    env = Environment.up(SPECS / "web.yaml", daemon=daemon, timeout=60)
    try:
        assert env.name == "pyweb"
        assert env.state() == "up"
        assert env.dir is not None and env.dir.is_dir()
        assert env.url == f"{daemon.url}/environments/{env.id}"

        front = env.endpoint("front")
        assert isinstance(front, Endpoint)
        host, port = front  # a (host, port) tuple
        assert host == "127.0.0.1" and port > 0
        assert str(front) == f"127.0.0.1:{port}"
        assert front.url == f"http://127.0.0.1:{port}"
        # By default the ~test proxy's address, so the test's calls are observed.
        listed = env.endpoints()["front"]["default"]
        assert str(front) == listed["observed"]
        assert str(env.endpoint("front", observed=False)) == listed["address"]
        assert env.endpoint("front", "default") == front
        assert get(front, "/hello") == (200, b"hello")

        with pytest.raises(NoEndpoint) as no_service:
            env.endpoint("nope")
        assert "no service 'nope'" in str(no_service.value)
        assert "backend, front" in str(no_service.value)
        with pytest.raises(NoEndpoint) as no_ingress:
            env.endpoint("front", "admin")
        assert "no ingress 'admin' (it has: default)" in str(no_ingress.value)
    finally:
        summary = env.down()

    assert summary is not None
    assert summary["outcome"] == "stopped"
    assert summary["id"] == env.id
    assert env.is_down
    assert env.down() is summary  # again: the same summary, no request
    assert (env.dir / "summary.json").is_file()
    with pytest.raises(DaemonError) as gone:
        env.describe()
    assert gone.value.status == 404


def test_the_context_manager_downs_the_environment(daemon: Daemon) -> None:
    with Environment.up(SPECS / "web.yaml", daemon=daemon, only=["backend"], timeout=60) as env:
        # `only`: backend and what it depends on (nothing), not front.
        assert sorted(env.endpoints()) == ["backend"]
        assert sorted(env.describe()["services"]) == ["backend"]
    assert env.is_down
    listed = daemon.http.json("GET", "/environments")
    assert env.id not in [e["id"] for e in listed]


def test_up_starts_a_daemon_when_none_answers_and_down_stops_it(tapmesh_bin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPMESH_BIN", tapmesh_bin)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    # A port nothing listens on: up starts `tapmesh serve` on another one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = Environment.up(SPECS / "web.yaml", daemon=free, timeout=60)
    process = env.daemon.process
    try:
        assert env.daemon.started and process is not None and process.poll() is None
        assert env.daemon.url != free
        assert env.daemon.healthy()
        assert env.dir is not None and tmp_path in env.dir.parents
    finally:
        env.down()
    assert process.wait(timeout=10) == 0
    assert not env.daemon.healthy()


def test_the_default_daemon_address_comes_from_the_environment(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPMESH_DAEMON", daemon.url)
    with Environment.up(SPECS / "web.yaml", only="backend", timeout=60) as env:
        assert env.daemon.url == daemon.url
        assert not env.daemon.started


def test_an_invalid_spec_raises_with_every_problem(daemon: Daemon) -> None:
    with pytest.raises(SpecError) as refused:
        Environment.up(SPECS / "invalid.yaml", daemon=daemon, timeout=30)
    error = refused.value
    paths = sorted(p.path for p in error.problems)
    assert len(paths) == 2, error.problems
    assert any("protocol" in p for p in paths), paths
    assert any("egresses.db" in p for p in paths), paths
    message = str(error)
    assert message.startswith(f"the spec {SPECS / 'invalid.yaml'} has 2 problems:")
    for problem in error.problems:
        assert f"  {problem.path}: {problem.message}" in message
    assert "smtp" in message and "nowhere" in message


def test_a_service_that_fails_to_start_raises_with_its_log_tail(daemon: Daemon) -> None:
    with pytest.raises(StartError) as failed:
        Environment.up(SPECS / "broken.yaml", daemon=daemon, timeout=60)
    error = failed.value
    assert error.service == "crashy"
    assert any("DATABASE_URL is not set" in line for line in error.log_tail), error.log_tail
    message = str(error)
    assert "service crashy failed" in message
    assert "| crashy: loading settings" in message
    assert "DATABASE_URL is not set" in message
    # Forgotten on the daemon (its files stay): nothing left running.
    listed = daemon.http.json("GET", "/environments")
    assert not [e for e in listed if e["name"] == "pybroken"]


def test_the_package_installs_with_no_dependencies_and_is_typed() -> None:
    import tapmesh

    root = Path(tapmesh.__file__).parent
    assert (root / "py.typed").is_file()
    # Only the standard library (pytest for the plugin, which pytest loads).
    code = (
        "import sys, tapmesh; "
        "mods = [m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')]; "
        "print(len(mods))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout) == 0


def test_up_gives_up_at_its_timeout_and_stops_what_it_started(daemon: Daemon) -> None:
    started = time.monotonic()
    with pytest.raises(StartError) as late:
        Environment.up(SPECS / "slow.yaml", daemon=daemon, timeout=2)
    assert time.monotonic() - started < 15
    message = str(late.value)
    assert "not up within 2s; stopped pyslow-" in message, message
    listed = daemon.http.json("GET", "/environments")
    assert [e["state"] for e in listed if e["name"] == "pyslow"] == []


def test_wait_for_ends_when_the_environment_goes_down(daemon: Daemon) -> None:
    with Environment.up(SPECS / "web.yaml", daemon=daemon, only="backend", ttl=1.5, timeout=60) as env:
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as ended:
            env.wait_for(None, 30, types=["grpc.call.completed"])
        assert time.monotonic() - started < 10
        headline = str(ended.value).split("\n", 1)[0]
        assert headline.startswith(
            "no event matched type grpc.call.completed: the environment's events ended after"
        ), headline
        assert headline.endswith("(it is expired)"), headline
        assert env.describe()["summary"]["outcome"] == "expired"


def test_attach_reaches_an_environment_another_process_started(daemon: Daemon) -> None:
    owner = Environment.up(SPECS / "web.yaml", daemon=daemon, only=["backend"], timeout=60)
    try:
        # By id, and by the spec's name (only one environment has it).
        for key in (owner.id, owner.name):
            other = Environment.attach(daemon.url, key)
            assert other.id == owner.id and other.dir == owner.dir
            assert other.endpoint("backend", observed=False) == owner.endpoint("backend", observed=False)
        seq = other.note("from another process")
        assert [e.seq for e in owner.events('note.text == "from another process"')] == [seq]
        with pytest.raises(DaemonError) as missing:
            Environment.attach(daemon, "no-such-environment")
        assert missing.value.status == 404
        assert "no environment" in str(missing.value)
    finally:
        owner.down()
