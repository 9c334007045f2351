"""The example shop (examples/shop), as a user's Python test would drive
it: an order through the front, then assertions on what crossed the edges
inside it, over HTTP, gRPC, PostgreSQL, Redis and Kafka.

Its cargo services must be built (scripts/test.sh builds them into the
default cache directory first; otherwise the first run builds them, which
takes minutes and is allowed by the up timeout)."""

from __future__ import annotations

import pytest

from support import REPO, post_json, get
from tapmesh import Daemon, Environment, GrpcCall

SHOP = REPO / "examples" / "shop" / "shop.yaml"


@pytest.fixture(scope="module")
def shop(daemon: Daemon):  # type: ignore[no-untyped-def]
    # Everything the front needs, but not the `load` loop: this test's
    # traffic is all there is.
    with Environment.up(SHOP, daemon=daemon, only=["front"], timeout=900) as env:
        yield env


def test_an_order_through_the_front_reserves_stock_over_grpc(shop: Environment) -> None:
    assert "load" not in shop.describe()["services"]
    front = shop.endpoint("front")

    shop.note("placing an order")
    status, order = post_json(front, "/api/orders", {"sku": "sku-2", "quantity": 1})
    assert status == 201, order
    order_id = order["order_id"]

    # orders → inventory, two hops away, decoded with the spec's .proto.
    event = shop.wait_for(f'grpc.method == "Reserve" && grpc.request.orderId == "{order_id}"', 20)
    call = event.grpc_call
    assert isinstance(call, GrpcCall)
    assert (call.source, call.target) == ("orders", "inventory")
    assert call.service == "shop.Inventory"
    assert call.method == "Reserve"
    assert call.grpc_status == 0 and call.grpc_status_name == "OK"
    assert call.decoded_with == "descriptor_set"
    assert call.request_body_decoded == [{"sku": "sku-2", "quantity": 1, "orderId": order_id}]
    assert call.response_body_decoded[0]["reserved"] == 1
    assert call.request_messages == 1 and call.response_messages == 1
    assert isinstance(call.latency_ms, float)

    reserve = shop.expect('grpc.method == "Reserve"').count(1)
    assert reserve[0].seq == event.seq
    shop.expect("http.status >= 500").none()
    shop.expect('type == "test.note"').count(1)

    # The order's row (PostgreSQL), and its message (Kafka).
    inserts = shop.expect('sql.command == "INSERT"').at_least(1)
    query = inserts[0].query
    assert query is not None
    assert query.sql and query.sql.startswith("INSERT INTO orders")
    assert (query.source, query.target, query.database, query.user) == ("orders", "db", "shop", "shop")
    assert query.rows == 1 and query.error is None
    produced = shop.wait_for('kafka.api == "Produce"', 20)
    kafka = produced.kafka_request
    assert kafka is not None and kafka.source == "orders"
    assert [t["topic"] for t in kafka.topics] == ["orders"]
    assert kafka.error_code in (None, 0)

    # An item lookup: a Redis miss, then the item from inventory, cached.
    status, body = get(front, "/api/items/sku-3")
    assert status == 200, body
    command = shop.wait_for('redis.command == "SETEX"', 20).command
    assert command is not None
    assert (command.source, command.target) == ("orders", "cache")
    assert command.args[0] == "item:sku-3"
    assert command.error is None

    # The test's own request, on the ~test → front edge.
    mine = shop.expect('edge == "~test->front" && http.path == "/api/orders"').count(1)[0]
    assert mine.request is not None and mine.request.status_code == 201
