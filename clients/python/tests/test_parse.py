"""Events parsed from JSON lines as the daemon writes them (the README's
examples), without a daemon: every payload's typed class, unknown fields
and unknown types kept."""

from __future__ import annotations

import json
from datetime import timezone

from tapmesh import (
    Event,
    KafkaRequest,
    Lifecycle,
    Log,
    Query,
    RedisCommand,
    parse_event,
    parse_ndjson,
)

KAFKA = (
    '{"seq":9,"type":"kafka.request.completed","timestamp":"2026-11-23T04:14:24.25Z","environment":"proxy",'
    '"kafka_request":{"connection":2,"source":"client","target":"127.0.0.1:9092","ingress":"default",'
    '"api_key":0,"api_name":"Produce","api_version":9,"correlation_id":4,"client_id":"rdkafka",'
    '"latency_ms":0.412,"request_size":181,"response_size":63,"error_code":null,'
    '"topics":[{"topic":"orders","partition":0,"records":1,"bytes":74,"error_code":0}]}}'
)
POSTGRES = (
    '{"seq":12,"type":"postgres.query.completed","timestamp":"2026-12-02T16:30:11.2Z","environment":"proxy",'
    '"query":{"connection":3,"source":"api","target":"db","ingress":"default","database":"postgres","user":"tapmesh",'
    '"protocol":"simple","sql":"UPDATE stock SET qty = qty - 1 WHERE sku = \'A-7\'","statement":null,'
    '"command":"UPDATE","rows":1,"error":null,"transaction":"in_transaction","latency_ms":0.412,'
    '"request_size":86,"response_size":17}}'
)
REDIS = (
    '{"seq":7,"type":"redis.command.completed","timestamp":"2026-12-03T07:10:02.1Z","environment":"proxy",'
    '"command":{"connection":2,"source":"client","target":"127.0.0.1:6379","ingress":"default",'
    '"command":"SET","args":["item:A-7","anvil"],"arg_count":2,'
    '"reply":{"type":"simple_string","value":"\\"OK\\""},"error":null,'
    '"latency_ms":0.09,"request_size":39,"response_size":5}}'
)
FAILED = json.dumps(
    {
        "seq": 30,
        "type": "service.failed",
        "timestamp": "2026-12-03T07:10:02.123456789Z",
        "environment": "shop",
        "service": "orders",
        "lifecycle": {
            "state": "failed",
            "reason": "orders exited with status 3",
            "exit_code": 3,
            "restarts": 3,
            "pid": 4242,
            "log_tail": ["starting", "no DATABASE_URL"],
        },
    }
)
LOG = '{"seq":31,"type":"service.log","timestamp":"2026-12-03T07:10:02Z","environment":"shop","service":"orders","log":{"stream":"stderr","line":"boom"}}'
FUTURE = '{"seq":32,"type":"chaos.injected","timestamp":"2026-12-03T07:10:03Z","environment":"shop","chaos":{"source":"orders","target":"db","kind":"delay","ms":50}}'


def test_kafka_request() -> None:
    event = parse_event(KAFKA)
    kafka = event.kafka_request
    assert isinstance(kafka, KafkaRequest) and event.payload is kafka
    assert (event.seq, event.type, event.environment, event.service) == (
        9,
        "kafka.request.completed",
        "proxy",
        None,
    )
    assert (kafka.api_key, kafka.api_name, kafka.api_version, kafka.correlation_id) == (0, "Produce", 9, 4)
    assert kafka.client_id == "rdkafka" and kafka.latency_ms == 0.412
    assert kafka.error_code is None
    assert kafka.topics == [{"topic": "orders", "partition": 0, "records": 1, "bytes": 74, "error_code": 0}]
    assert event.edge == "client->127.0.0.1:9092" == kafka.edge
    assert event.time.isoformat() == "2026-11-23T04:14:24.250000+00:00"
    # The other payload attributes stay empty.
    assert event.request is None and event.query is None and event.command is None


def test_postgres_query() -> None:
    query = parse_event(POSTGRES).query
    assert isinstance(query, Query)
    assert (query.database, query.user, query.protocol, query.command, query.rows) == (
        "postgres",
        "tapmesh",
        "simple",
        "UPDATE",
        1,
    )
    assert query.sql == "UPDATE stock SET qty = qty - 1 WHERE sku = 'A-7'"
    assert query.statement is None and query.error is None
    assert query.transaction == "in_transaction"


def test_redis_command_is_named_command() -> None:
    event = parse_event(REDIS)
    assert event.payload_name == "command"
    command = event.command
    assert isinstance(command, RedisCommand)
    assert command.command == "SET" and command.args == ["item:A-7", "anvil"]
    assert command.arg_count == 2
    assert command.reply == {"type": "simple_string", "value": '"OK"'}


def test_lifecycle_and_log() -> None:
    failed, log = parse_ndjson("\n".join([FAILED, "", LOG]) + "\n")
    assert failed.service == "orders" and failed.edge is None
    lifecycle = failed.lifecycle
    assert isinstance(lifecycle, Lifecycle)
    assert (lifecycle.state, lifecycle.exit_code, lifecycle.restarts, lifecycle.pid) == ("failed", 3, 3, 4242)
    assert lifecycle.log_tail == ["starting", "no DATABASE_URL"]
    assert lifecycle.waiting == [] and lifecycle.signal is None
    assert failed.time.tzinfo == timezone.utc and failed.time.microsecond == 123456
    assert isinstance(log.log, Log) and (log.log.stream, log.log.line) == ("stderr", "boom")


def test_unknown_fields_and_types_are_kept() -> None:
    line = json.loads(REDIS)
    line["command"]["cluster_slot"] = 1234
    line = {"trace_id": "abc", **line}  # a new envelope field, before the payload
    event = Event.from_json(line)
    assert event.payload_name == "command"
    assert event.command is not None and event.command.get("cluster_slot") == 1234
    assert event.command.raw["cluster_slot"] == 1234
    assert event.raw["trace_id"] == "abc"

    future = parse_event(FUTURE)
    assert future.type == "chaos.injected"
    assert future.payload_name == "chaos"
    assert future.payload == {"source": "orders", "target": "db", "kind": "delay", "ms": 50}
    assert future.edge == "orders->db"
    assert future.raw["chaos"]["ms"] == 50
