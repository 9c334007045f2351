"""Shared fixtures: one real daemon for the session (``$TAPMESH_BIN``, else
the repository's ``target/debug/tapmesh``), with its own state directory,
and the small two-service environment most tests use."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from support import REPO, SPECS
from tapmesh import Daemon, Environment, find_binary

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def tapmesh_bin() -> str:
    """The tapmesh binary the tests run."""
    return os.environ.get("TAPMESH_BIN") or find_binary([REPO])


@pytest.fixture(scope="session")
def daemon(tapmesh_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon of the tests' own, on a free port, with a temporary state
    directory (builds are cached in the default cache directory, where
    scripts/test.sh builds the example shop's services)."""
    state = tmp_path_factory.mktemp("state")
    with Daemon.start(binary=tapmesh_bin, state_dir=state) as started:
        yield started


@pytest.fixture
def web(daemon: Daemon) -> Iterator[Environment]:
    """specs/web.yaml: ``front`` (calls ``backend`` on ``/chain``) and
    ``backend``; downed after the test."""
    with Environment.up(SPECS / "web.yaml", daemon=daemon, timeout=60) as env:
        yield env
