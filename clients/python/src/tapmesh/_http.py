"""A small HTTP client for the daemon's API, on :mod:`http.client`.

The daemon refuses what a web page could send (see the README's Security
section): this client sends no ``Origin`` and no ``Sec-Fetch-Site``, names
the host by its IP address, and posts with a JSON or YAML content type.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlencode, urlsplit

from .errors import DaemonError

Params = Mapping[str, Union[str, int, float, bool, None]]


@dataclass
class Answer:
    """An answer: its status, headers and body."""

    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (``None`` if it is empty or not JSON)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def error_text(self) -> str:
        """The daemon's ``error`` if the body has one, else the body (or
        the status's name when the body is empty: a route the daemon does
        not have)."""
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])
        text = self.body.decode("utf-8", "replace").strip()
        if text:
            return text
        try:
            return f"{HTTPStatus(self.status).phrase} (no body)"
        except ValueError:
            return "(no body)"


def _query_string(params: Optional[Params]) -> str:
    if not params:
        return ""
    pairs: List[Tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


class HttpClient:
    """Requests to one daemon (``http://host:port``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the daemon's address must be http://HOST:PORT, not {url!r}")
        self.host: str = parts.hostname
        self.port: int = parts.port or 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=max(timeout, 0.001))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Params] = None,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        accept: str = "application/json",
        timeout: float = 30.0,
    ) -> Answer:
        """One request; the whole answer is read. ``timeout`` bounds each
        socket operation (connecting, each read). Raises
        :class:`DaemonError` when the daemon cannot be reached."""
        target = path + _query_string(params)
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        conn = self._connect(timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return Answer(
                response.status, {k.lower(): v for k, v in response.getheaders()}, data
            )
        except (OSError, http.client.HTTPException) as e:
            raise DaemonError(f"{method} {self.url}{target}: {e}") from e
        finally:
            conn.close()

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Params] = None,
        payload: Any = None,
        timeout: float = 30.0,
        ok: Tuple[int, ...] = (200,),
    ) -> Any:
        """A request whose answer must have one of the ``ok`` statuses; its
        JSON. Anything else is a :class:`DaemonError` with the daemon's
        ``error``."""
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        answer = self.request(
            method,
            path,
            params=params,
            body=body,
            content_type="application/json" if body is not None else None,
            timeout=timeout,
        )
        if answer.status not in ok:
            raise DaemonError(
                f"{method} {path} answered {answer.status}: {answer.error_text()}",
                answer.status,
                answer.json(),
            )
        return answer.json()

    def healthy(self, timeout: float = 1.0) -> bool:
        """Whether a tapmesh daemon answers ``GET /health`` here."""
        try:
            answer = self.request("GET", "/health", timeout=timeout)
        except DaemonError:
            return False
        data = answer.json()
        return answer.status == 200 and isinstance(data, dict) and data.get("status") == "ok"

    def stream_lines(
        self,
        path: str,
        *,
        params: Optional[Params] = None,
        accept: str = "application/x-ndjson",
        deadline: Optional[float] = None,
        on_error: Any = None,
    ) -> Iterator[bytes]:
        """The answer's lines as they arrive, until it ends or the
        ``deadline`` (a :func:`time.monotonic` value) passes, when the
        iterator raises :class:`TimeoutError`. The connection is closed
        whichever way the iteration ends (also when the caller stops early).

        A status other than 200 calls ``on_error(answer)`` (which should
        raise), else raises :class:`DaemonError`."""
        target = path + _query_string(params)

        def remaining() -> float:
            if deadline is None:
                return 3600.0
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"GET {target}: the deadline passed")
            return left

        conn = self._connect(remaining())
        response: Optional[http.client.HTTPResponse] = None
        try:
            try:
                conn.request("GET", target, headers={"Accept": accept})
                # Kept: the connection lets go of its socket when the
                # answer says it will close, the answer reads on.
                sock = conn.sock
                response = conn.getresponse()
            except socket.timeout as e:
                raise TimeoutError(f"GET {target}: no answer in time") from e
            except (OSError, http.client.HTTPException) as e:
                raise DaemonError(f"GET {self.url}{target}: {e}") from e
            if response.status != 200:
                answer = Answer(
                    response.status,
                    {k.lower(): v for k, v in response.getheaders()},
                    response.read(),
                )
                if on_error is not None:
                    on_error(answer)
                raise DaemonError(
                    f"GET {target} answered {answer.status}: {answer.error_text()}",
                    answer.status,
                    answer.json(),
                )
            while True:
                if sock is not None:
                    sock.settimeout(remaining())
                try:
                    line = response.readline()
                except socket.timeout as e:
                    raise TimeoutError(f"GET {target}: the deadline passed") from e
                except (OSError, http.client.HTTPException) as e:
                    raise DaemonError(f"GET {self.url}{target}: {e}") from e
                if not line:
                    return
                yield line
        finally:
            if response is not None:
                response.close()
            conn.close()
