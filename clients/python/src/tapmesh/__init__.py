"""tapmesh's Python test API, over the daemon's HTTP API (``tapmesh serve``).

Bring an environment up from its spec, call its services through the
endpoints tapmesh gives (so the test's own calls are observed too), and
assert on the events its proxies decoded::

    from tapmesh import Environment

    with Environment.up("examples/shop/shop.yaml", only=["front"]) as env:
        env.note("placing an order")
        ...  # call env.endpoint("front")
        call = env.wait_for('grpc.method == "Reserve"', timeout=10)
        assert call.grpc_call.grpc_status_name == "OK"
        env.expect("http.status >= 500").none()

With pytest, the plugin this package registers gives ``tapmesh_env`` (an
environment per test, from ``@pytest.mark.tapmesh_spec(PATH)``) and
``tapmesh_up`` (a factory); see :mod:`tapmesh.pytest_plugin`.
"""

from .daemon import DEFAULT_DAEMON, Daemon, find_binary
from .environment import Endpoint, Environment, Expectation, Explanation, Fault
from .errors import (
    DaemonError,
    DaemonStartError,
    FaultError,
    ExpectationFailed,
    NoEndpoint,
    QueryError,
    SpecError,
    SpecProblem,
    StartError,
    TapmeshError,
    WaitTimeout,
)
from .events import (
    Connection,
    DecodeError,
    Dropped,
    Event,
    FaultInjected,
    GrpcCall,
    KafkaRequest,
    Lifecycle,
    Log,
    Note,
    Notification,
    Query,
    RedisCommand,
    RedisPush,
    Request,
    parse_event,
    parse_ndjson,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DAEMON",
    "Connection",
    "Daemon",
    "DaemonError",
    "DaemonStartError",
    "DecodeError",
    "Dropped",
    "Endpoint",
    "Environment",
    "Event",
    "Expectation",
    "ExpectationFailed",
    "Explanation",
    "Fault",
    "FaultError",
    "FaultInjected",
    "GrpcCall",
    "KafkaRequest",
    "Lifecycle",
    "Log",
    "NoEndpoint",
    "Note",
    "Notification",
    "Query",
    "QueryError",
    "RedisCommand",
    "RedisPush",
    "Request",
    "SpecError",
    "SpecProblem",
    "StartError",
    "TapmeshError",
    "WaitTimeout",
    "find_binary",
    "parse_event",
    "parse_ndjson",
]
