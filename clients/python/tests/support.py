"""What the tests share: where the specs are, and traffic through an
environment's endpoints (urllib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional, Tuple

from tapmesh import Endpoint, Environment

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
#: The repository's root (clients/python/tests → ../../..).
REPO = HERE.parents[2]


def get(endpoint: Endpoint, path: str, timeout: float = 5.0) -> Tuple[int, bytes]:
    """GET through an endpoint: the status and the body (errors included)."""
    try:
        with urllib.request.urlopen(f"{endpoint.url}{path}", timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_json(endpoint: Endpoint, path: str, body: Any, timeout: float = 10.0) -> Tuple[int, Any]:
    """POST a JSON body; the status and the JSON answer."""
    request = urllib.request.Request(
        f"{endpoint.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        data: Optional[bytes] = e.read()
        return e.code, json.loads(data) if data else None


def drive(env: Environment, path: str) -> Tuple[int, bytes]:
    """GET `path` on front through its observed endpoint; returns once the
    exchange and its connection's close are logged, so that what is read
    next sees all of it."""
    since = env.last_seq()
    answer = get(env.endpoint("front"), path)
    env.wait_for(None, 10, since=since, types=["request.completed"], source="~test")
    env.wait_for(None, 10, since=since, types=["connection.closed"], source="~test")
    return answer
