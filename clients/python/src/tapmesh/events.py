"""Typed events, as the daemon sends them (one JSON object per event).

Every event has the envelope ``seq``, ``type``, ``timestamp``,
``environment`` and, on a service's lifecycle events, ``service``; and one
payload object, named after what it describes. :class:`Event` keeps the
envelope as attributes and the payload both typed, under the payload's own
JSON name (``event.request``, ``event.grpc_call``, ``event.kafka_request``,
``event.query``, ``event.command`` for a Redis command, ``event.connection``,
``event.lifecycle``, ``event.log``, ``event.note`` …) and as it came
(``event.payload_raw``). The whole event as parsed is ``event.raw``: a field
this version of the package does not know is still there, and an event of a
type it does not know is kept with ``payload`` set to its JSON.

Field names are the JSON names the README's event table documents.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Type, TypeVar, Union

__all__ = [
    "Event",
    "Payload",
    "Connection",
    "Request",
    "GrpcCall",
    "KafkaRequest",
    "Query",
    "Notification",
    "RedisCommand",
    "RedisPush",
    "DecodeError",
    "Dropped",
    "Lifecycle",
    "Log",
    "Note",
    "parse_event",
    "parse_ndjson",
]

_P = TypeVar("_P", bound="_PayloadBase")


@dataclass
class _PayloadBase:
    """Fields every payload class shares: ``raw``, the payload's JSON
    object as received (unknown fields included)."""

    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: Type[_P], obj: Dict[str, Any]) -> _P:
        """The payload from its JSON object; missing fields are ``None``
        (or the field's default), unknown ones stay in ``raw``."""
        kwargs: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw":
                continue
            if f.name in obj and obj[f.name] is not None:
                kwargs[f.name] = obj[f.name]
        return cls(raw=obj, **kwargs)

    def get(self, name: str, default: Any = None) -> Any:
        """Any field of the payload by its JSON name, known or not."""
        return self.raw.get(name, default)


@dataclass
class _Edge(_PayloadBase):
    """An edge's names: who called (``source``), whom (``target``), on which
    of the target's ingresses."""

    source: Optional[str] = None
    target: Optional[str] = None
    ingress: Optional[str] = None

    @property
    def edge(self) -> str:
        """``source->target``, as ``--edge`` and queries write it."""
        return f"{self.source}->{self.target}"


@dataclass
class Connection(_Edge):
    """``connection.opened`` / ``connection.closed``: one TCP connection
    across an edge."""

    id: Optional[int] = None
    client_addr: Optional[str] = None
    bytes_in: Optional[int] = None
    bytes_out: Optional[int] = None
    duration_ms: Optional[float] = None
    error: Optional[str] = None


def _body(text: Optional[str], encoding: Optional[str]) -> Optional[bytes]:
    if text is None:
        return None
    if encoding == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


@dataclass
class Request(_Edge):
    """``request.completed``: one HTTP/1.x or HTTP/2 exchange."""

    connection: Optional[int] = None
    version: Optional[str] = None
    method: Optional[str] = None
    path: Optional[str] = None
    status_code: Optional[int] = None
    latency_ms: Optional[float] = None
    request_size: Optional[int] = None
    response_size: Optional[int] = None
    request_headers: Dict[str, str] = field(default_factory=dict)
    response_headers: Dict[str, str] = field(default_factory=dict)
    request_trailers: Optional[Dict[str, str]] = None
    response_trailers: Optional[Dict[str, str]] = None
    request_body: Optional[str] = None
    response_body: Optional[str] = None
    request_body_encoding: Optional[str] = None
    response_body_encoding: Optional[str] = None
    request_body_truncated: bool = False
    response_body_truncated: bool = False
    warnings: List[str] = field(default_factory=list)
    error: Optional[str] = None
    #: The fault that acted on this exchange (its name), if one did.
    fault: Optional[str] = None

    def request_bytes(self) -> Optional[bytes]:
        """The captured request body as bytes (base64 undone), as sent
        (a compressed body stays compressed)."""
        return _body(self.request_body, self.request_body_encoding)

    def response_bytes(self) -> Optional[bytes]:
        """The captured response body as bytes (base64 undone)."""
        return _body(self.response_body, self.response_body_encoding)

    def response_json(self) -> Any:
        """The captured response body parsed as JSON."""
        data = self.response_bytes()
        if data is None:
            raise ValueError("the exchange has no captured response body")
        return json.loads(data)


@dataclass
class GrpcCall(_Edge):
    """``grpc.call.completed``: one gRPC call, its messages decoded."""

    connection: Optional[int] = None
    service: Optional[str] = None
    method: Optional[str] = None
    path: Optional[str] = None
    grpc_status: Optional[int] = None
    grpc_status_name: Optional[str] = None
    grpc_message: Optional[str] = None
    http_status: Optional[int] = None
    latency_ms: Optional[float] = None
    request_size: Optional[int] = None
    response_size: Optional[int] = None
    request_messages: Optional[int] = None
    response_messages: Optional[int] = None
    request_metadata: Dict[str, str] = field(default_factory=dict)
    response_metadata: Dict[str, str] = field(default_factory=dict)
    request_body_decoded: List[Any] = field(default_factory=list)
    response_body_decoded: List[Any] = field(default_factory=list)
    request_body_truncated: bool = False
    response_body_truncated: bool = False
    decoded_with: Optional[str] = None
    health_check: bool = False
    error: Optional[str] = None


@dataclass
class KafkaRequest(_Edge):
    """``kafka.request.completed``: one Kafka request and its response."""

    connection: Optional[int] = None
    api_key: Optional[int] = None
    api_name: Optional[str] = None
    api_version: Optional[int] = None
    correlation_id: Optional[int] = None
    client_id: Optional[str] = None
    latency_ms: Optional[float] = None
    request_size: Optional[int] = None
    response_size: Optional[int] = None
    error_code: Optional[int] = None
    topics: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Query(_Edge):
    """``postgres.query.completed``: one SQL statement."""

    connection: Optional[int] = None
    database: Optional[str] = None
    user: Optional[str] = None
    protocol: Optional[str] = None
    sql: Optional[str] = None
    params: Optional[List[Any]] = None
    statement: Optional[str] = None
    command: Optional[str] = None
    rows: Optional[int] = None
    error: Optional[Dict[str, Any]] = None
    transaction: Optional[str] = None
    latency_ms: Optional[float] = None
    request_size: Optional[int] = None
    response_size: Optional[int] = None


@dataclass
class Notification(_Edge):
    """``postgres.notification``: a ``NOTIFY`` delivered to a client."""

    connection: Optional[int] = None
    channel: Optional[str] = None
    payload: Optional[str] = None
    pid: Optional[int] = None


@dataclass
class RedisCommand(_Edge):
    """``redis.command.completed`` (its payload is named ``command``): one
    Redis command and its reply."""

    connection: Optional[int] = None
    command: Optional[str] = None
    args: List[Any] = field(default_factory=list)
    arg_count: Optional[int] = None
    reply: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    transaction: bool = False
    latency_ms: Optional[float] = None
    request_size: Optional[int] = None
    response_size: Optional[int] = None


@dataclass
class RedisPush(_Edge):
    """``redis.push`` (its payload is named ``push``): what a Redis server
    sent unasked (pub/sub messages, invalidations)."""

    connection: Optional[int] = None
    kind: Optional[str] = None
    channel: Optional[str] = None
    pattern: Optional[str] = None
    payload: Optional[str] = None
    size: Optional[int] = None


@dataclass
class DecodeError(_Edge):
    """``decode.error``: a decoder gave up on a connection (its bytes still
    flow)."""

    connection: Optional[int] = None
    protocol: Optional[str] = None
    direction: Optional[str] = None
    offset: Optional[int] = None
    kind: Optional[str] = None
    reason: Optional[str] = None


@dataclass
class Dropped(_PayloadBase):
    """``events.dropped``: a live reader fell behind and skipped ahead."""

    subscriber: Optional[str] = None
    subscriber_id: Optional[int] = None
    count: Optional[int] = None
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None


@dataclass
class Lifecycle(_PayloadBase):
    """A service's or the environment's change of state (``service.*``,
    ``environment.*``, ``progress.stall``, ``build.progress``,
    ``health.check_failed``)."""

    state: Optional[str] = None
    reason: Optional[str] = None
    pid: Optional[int] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    restarts: Optional[int] = None
    log_tail: List[str] = field(default_factory=list)
    endpoints: Optional[Dict[str, Any]] = None
    waiting: List[str] = field(default_factory=list)
    build: Optional[Dict[str, Any]] = None
    failures: Optional[int] = None
    failure_threshold: Optional[int] = None
    redeployed: List[str] = field(default_factory=list)


@dataclass
class Log(_PayloadBase):
    """``service.log``: one line a service wrote."""

    stream: Optional[str] = None
    line: Optional[str] = None


@dataclass
class Note(_PayloadBase):
    """``test.note``: a step a test wrote into the timeline
    (:meth:`tapmesh.Environment.note`)."""

    text: Optional[str] = None


@dataclass
class FaultInjected(_Edge):
    """``fault.injected``: a fault acted on an edge (JSON name ``fault``)."""

    fault: Optional[str] = None
    #: Its type (``abort``, ``latency`` …); the JSON name is ``type``.
    kind: Optional[str] = None
    connection: Optional[int] = None
    #: The seq of the request or call it acted on, if it acted on one.
    request_seq: Optional[int] = None
    detail: Optional[str] = None

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "FaultInjected":
        made = super().from_json(obj)
        made.kind = obj.get("type")
        return made


Payload = Union[
    Connection,
    Request,
    GrpcCall,
    KafkaRequest,
    Query,
    Notification,
    RedisCommand,
    RedisPush,
    DecodeError,
    Dropped,
    Lifecycle,
    Log,
    Note,
    FaultInjected,
]

#: The payload classes by the payload's JSON name.
PAYLOADS: Dict[str, Type[Any]] = {
    "connection": Connection,
    "request": Request,
    "grpc_call": GrpcCall,
    "kafka_request": KafkaRequest,
    "query": Query,
    "notification": Notification,
    "command": RedisCommand,
    "push": RedisPush,
    "decode_error": DecodeError,
    "dropped": Dropped,
    "lifecycle": Lifecycle,
    "log": Log,
    "note": Note,
    "fault": FaultInjected,
}

_ENVELOPE = ("seq", "type", "timestamp", "environment", "service")


@dataclass
class Event:
    """One event: the envelope, and its payload typed under its JSON name.

    Exactly one of the payload attributes is set (none for a payload this
    version does not know: then ``payload`` is its JSON object)."""

    seq: int
    type: str
    timestamp: str
    environment: str
    service: Optional[str] = None
    #: The payload's JSON name (``request``, ``grpc_call`` …), if any.
    payload_name: Optional[str] = None
    #: The typed payload (one of the classes above), or the JSON object of
    #: a payload this version does not know.
    payload: Union[Payload, Dict[str, Any], None] = None
    connection: Optional[Connection] = None
    request: Optional[Request] = None
    grpc_call: Optional[GrpcCall] = None
    kafka_request: Optional[KafkaRequest] = None
    query: Optional[Query] = None
    notification: Optional[Notification] = None
    #: A Redis command (``redis.command.completed``; the JSON name is
    #: ``command``).
    command: Optional[RedisCommand] = None
    push: Optional[RedisPush] = None
    decode_error: Optional[DecodeError] = None
    dropped: Optional[Dropped] = None
    lifecycle: Optional[Lifecycle] = None
    log: Optional[Log] = None
    note: Optional[Note] = None
    fault: Optional[FaultInjected] = None
    #: The whole event as received.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "Event":
        """The event from its JSON object (one line of ``events.jsonl`` or
        of an NDJSON stream, parsed)."""
        others = [k for k in obj if k not in _ENVELOPE]
        event = cls(
            seq=int(obj["seq"]),
            type=str(obj["type"]),
            timestamp=str(obj.get("timestamp", "")),
            environment=str(obj.get("environment", "")),
            service=obj.get("service"),
            raw=obj,
        )
        if others:
            # The payload: a name this version knows, else the first object
            # (a new envelope field would be a plain value).
            name = next(
                (k for k in others if k in PAYLOADS),
                next((k for k in others if isinstance(obj[k], dict)), others[0]),
            )
            event.payload_name = name
            body = obj[name]
            kind = PAYLOADS.get(name)
            if kind is not None and isinstance(body, dict):
                typed = kind.from_json(body)
                setattr(event, name, typed)
                event.payload = typed
            else:
                event.payload = body
        return event

    @property
    def payload_raw(self) -> Any:
        """The payload's JSON as received."""
        return self.raw.get(self.payload_name) if self.payload_name else None

    @property
    def time(self) -> datetime:
        """``timestamp`` as an aware :class:`datetime` (UTC; nanoseconds cut
        to microseconds)."""
        text = self.timestamp.rstrip("Z")
        if "." in text:
            whole, frac = text.split(".", 1)
            digits = "".join(c for c in frac if c.isdigit())
            text = f"{whole}.{digits[:6].ljust(6, '0')}"
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)

    def _edge_body(self) -> Optional[Dict[str, Any]]:
        body = self.raw.get(self.payload_name) if self.payload_name else None
        if isinstance(body, dict) and "source" in body and "target" in body:
            return body
        return None

    @property
    def source(self) -> Optional[str]:
        """The calling side of a traffic event's edge."""
        body = self._edge_body()
        return None if body is None else str(body["source"])

    @property
    def target(self) -> Optional[str]:
        """The called side of a traffic event's edge."""
        body = self._edge_body()
        return None if body is None else str(body["target"])

    @property
    def edge(self) -> Optional[str]:
        """``source->target`` for a traffic event, else ``None``."""
        body = self._edge_body()
        return None if body is None else f"{body['source']}->{body['target']}"

    def __repr__(self) -> str:
        service = f", service={self.service!r}" if self.service else ""
        payload = f", {self.payload_name}={self.payload!r}" if self.payload_name else ""
        return f"Event(seq={self.seq}, type={self.type!r}{service}{payload})"

    def __str__(self) -> str:
        what = self.edge or self.service or ""
        return f"#{self.seq} {self.type} {what}".rstrip()


def parse_event(line: Union[str, bytes]) -> Event:
    """One event from one line of JSON."""
    return Event.from_json(json.loads(line))


def parse_ndjson(text: Union[str, bytes]) -> List[Event]:
    """Every event of a JSON Lines text (blank lines skipped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return [parse_event(line) for line in text.splitlines() if line.strip()]
