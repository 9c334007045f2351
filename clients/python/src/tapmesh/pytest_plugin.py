"""The pytest plugin (registered by ``pip install``, entry point ``pytest11``).

Fixtures:

``tapmesh_env``
    An environment for the test, from the spec its
    ``@pytest.mark.tapmesh_spec(PATH, only=…, ttl=…, timeout=…)`` marker
    names (on the test, its class or its module), downed after the test::

        @pytest.mark.tapmesh_spec("specs/shop.yaml", only=["front"])
        def test_an_order(tapmesh_env):
            front = tapmesh_env.endpoint("front")
            ...
            tapmesh_env.expect('grpc.method == "Reserve"').count(1)

``tapmesh_up``
    A factory, ``tapmesh_up(PATH, only=…, ttl=…, timeout=…)``, for tests
    that need several environments or choose the spec themselves; every
    environment it brought up is downed after the test.

``tapmesh_daemon``
    The session's daemon (:class:`tapmesh.Daemon`): the one at
    ``--tapmesh-daemon URL`` or ``$TAPMESH_DAEMON`` (default
    ``http://127.0.0.1:7411``) if it answers, else a ``tapmesh serve`` this
    plugin starts on a free port for the session and stops at its end.

A relative spec path is taken from the test file's directory, else from
pytest's rootdir.

When a test that used an environment fails, its report gets one section
per environment still up, ``tapmesh: NAME (ID)``, with the daemon's
explanation of the last query the test used (matching and nearest
non-matching events, the environment's errors, the commands to see more;
for a test that used no query, the environment's errors alone).
A failure that is already an :class:`~tapmesh.ExpectationFailed` (from
``expect`` or ``wait_for``) carries that explanation in its message, so it
is not printed a second time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Union

import pytest

from .daemon import Daemon
from .environment import DEFAULT_UP_TIMEOUT, Environment
from .errors import ExpectationFailed

__all__ = ["tapmesh_daemon", "tapmesh_up", "tapmesh_env"]

_ENVIRONMENTS = pytest.StashKey[List[Environment]]()

#: ``tapmesh_up``'s signature.
UpFactory = Callable[..., Environment]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tapmesh")
    group.addoption(
        "--tapmesh-daemon",
        default=None,
        metavar="URL",
        help="the tapmesh daemon to use (default $TAPMESH_DAEMON, else "
        "http://127.0.0.1:7411; one is started when none answers there)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tapmesh_spec(path, *, only=None, ttl=None, timeout=None): the spec the "
        "test's `tapmesh_env` environment is brought up from (relative to the "
        "test file's directory)",
    )


@pytest.fixture(scope="session")
def tapmesh_daemon(request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """The daemon every environment of the session runs on (started for the
    session if none answers at the configured address)."""
    daemon = Daemon.ensure(
        request.config.getoption("--tapmesh-daemon"),
        search_from=[request.config.rootpath],
    )
    try:
        yield daemon
    finally:
        daemon.stop()


def _resolve(request: pytest.FixtureRequest, spec: Union[str, Path]) -> Path:
    path = Path(spec)
    if path.is_absolute():
        return path
    tried = []
    for base in (Path(str(request.node.path)).parent, request.config.rootpath):
        candidate = base / path
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(f"no spec {spec}: tried {' and '.join(tried)}")


@pytest.fixture
def tapmesh_up(
    request: pytest.FixtureRequest, tapmesh_daemon: Daemon
) -> Iterator[UpFactory]:
    """A factory: ``tapmesh_up(spec_path, only=None, ttl=None,
    timeout=600)`` brings an environment up on the session's daemon; each
    is downed after the test."""
    environments: List[Environment] = []
    request.node.stash[_ENVIRONMENTS] = environments

    def up(
        spec: Union[str, Path],
        *,
        only: Union[Iterable[str], str, None] = None,
        ttl: Any = None,
        timeout: Optional[float] = None,
    ) -> Environment:
        env = Environment.up(
            _resolve(request, spec),
            daemon=tapmesh_daemon,
            only=only,
            ttl=ttl,
            timeout=DEFAULT_UP_TIMEOUT if timeout is None else timeout,
        )
        environments.append(env)
        return env

    yield up
    failures: List[BaseException] = []
    for env in reversed(environments):
        try:
            env.down()
        except Exception as e:  # noqa: BLE001 - down every one, then report
            failures.append(e)
    if failures:
        raise failures[0]


@pytest.fixture
def tapmesh_env(request: pytest.FixtureRequest, tapmesh_up: UpFactory) -> Environment:
    """The environment of the test's ``tapmesh_spec`` marker, downed after
    the test."""
    marker = request.node.get_closest_marker("tapmesh_spec")
    if marker is None:
        pytest.fail(
            f"{request.node.nodeid} uses tapmesh_env without a spec: mark it with "
            "@pytest.mark.tapmesh_spec('path/to/spec.yaml'), or use tapmesh_up(path)",
            pytrace=False,
        )
    kwargs = dict(marker.kwargs)
    spec = marker.args[0] if marker.args else kwargs.pop("path", None)
    if spec is None:
        pytest.fail("@pytest.mark.tapmesh_spec needs the spec's path", pytrace=False)
    return tapmesh_up(spec, **kwargs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    environments = item.stash.get(_ENVIRONMENTS, None)
    if not environments:
        return
    if call.excinfo is not None and call.excinfo.errisinstance(ExpectationFailed):
        # Its message is the explanation already: print it once.
        return
    for env in environments:
        if env.is_down:
            continue
        report.sections.append(
            (f"tapmesh: {env.name} ({env.id})", env._explanation_text(env.last_query))
        )
