"""An independent gRPC peer (Python grpcio) of the tapmesh.test.Inventory
service in peers/grpc-rs/proto/inventory.proto, for tapmesh's tests.

    grpc_inventory.py serve PORT     server with reflection (grpcio-reflection)
    grpc_inventory.py call ADDR      unary, server-stream (3), not-found; one
                                     JSON line per call with what the client saw
    grpc_inventory.py call-binary-metadata ADDR
                                     a unary call with trace-bin ff fe 80, sent
                                     as true binary; the server echoes it as
                                     the trailer echo-bin

Items are the same pure function of (prefix, n) as in the Rust peer.
"""

import json
import os
import sys
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection

PROTO_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "peers", "grpc-rs", "proto")
sys.path.insert(0, os.path.abspath(PROTO_DIR))
protos, services = grpc.protos_and_services("inventory.proto")


def item(prefix, n):
    return protos.Item(
        id=f"{prefix}-{n}",
        name=f"Item {n}",
        quantity=n,
        price=n + 0.25,
        tags=[f"t{n}"],
        in_stock=n % 2 == 1,
    )


class Inventory(services.InventoryServicer):
    def GetItem(self, request, context):
        # Binary metadata comes back as a trailer, for tests of how it is shown.
        echo = [v for k, v in context.invocation_metadata() if k == "trace-bin"]
        if echo:
            context.set_trailing_metadata((("echo-bin", echo[0]),))
        prefix, _, n = request.id.rpartition("-")
        if not prefix or not n.isdigit():
            context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.id}")
        return item(prefix, int(n))

    def ListItems(self, request, context):
        for n in range(1, request.count + 1):
            yield item(request.prefix, n)

    def AddItems(self, request_iterator, context):
        added = total = 0
        for it in request_iterator:
            added += 1
            total += it.quantity
        return protos.AddSummary(added=added, total_quantity=total)

    def Chat(self, request_iterator, context):
        for note in request_iterator:
            yield protos.Note(text=f"echo: {note.text}", seq=note.seq)


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    services.add_InventoryServicer_to_server(Inventory(), server)
    names = (
        protos.DESCRIPTOR.services_by_name["Inventory"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


def call(addr):
    with grpc.insecure_channel(addr) as channel:
        stub = services.InventoryStub(channel)
        reply = stub.GetItem(protos.GetItemRequest(id="py-3"), timeout=10)
        print(json.dumps({"case": "unary", "code": 0, "id": reply.id}), flush=True)
        listed = list(stub.ListItems(protos.ListItemsRequest(count=3, prefix="pylist"), timeout=10))
        print(json.dumps({"case": "server-stream", "code": 0, "received": len(listed)}), flush=True)
        try:
            stub.GetItem(protos.GetItemRequest(id="missing"), timeout=10)
            print(json.dumps({"case": "not-found", "code": 0}), flush=True)
        except grpc.RpcError as error:
            print(
                json.dumps(
                    {"case": "not-found", "code": error.code().value[0], "message": error.details()}
                ),
                flush=True,
            )


def call_binary_metadata(addr):
    # C-core peers that both allow it send -bin values as "true binary" (a
    # NUL, then the raw bytes) instead of base64.
    options = [("grpc.http2.true_binary", 1)]
    with grpc.insecure_channel(addr, options=options) as channel:
        stub = services.InventoryStub(channel)
        metadata = (("trace-bin", b"\xff\xfe\x80"),)
        _, call = stub.GetItem.with_call(protos.GetItemRequest(id="bin-1"), metadata=metadata, timeout=10)
        echo = dict(call.trailing_metadata()).get("echo-bin")
        print(json.dumps({"case": "binary-metadata", "code": 0, "echo": echo.hex()}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "call":
        call(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "call-binary-metadata":
        call_binary_metadata(sys.argv[2])
    else:
        sys.exit(__doc__)
