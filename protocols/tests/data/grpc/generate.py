"""Makes the protoc-side fixtures of the gRPC decoding tests.

An independent toolchain (protoc from grpcio-tools, Python protobuf) writes:
- inventory.protoset: the FileDescriptorSet of shop/inventory.proto with its
  imports, as `protoc --descriptor_set_out --include_imports` writes it;
- item.bin: a shop.inventory.v1.Item encoded by Python protobuf from
  item.input.json;
- item.json: Python protobuf's own JSON mapping of that message.

The Rust tests decode item.bin with the protoc descriptor set and compare the
result with item.json. Run from this directory, after
`python3 -m venv .venv && .venv/bin/pip install grpcio-tools`:

    python generate.py
"""

import importlib.resources
import json
import os

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    protoset = os.path.join(HERE, "inventory.protoset")
    status = protoc.main(
        [
            "protoc",
            f"--proto_path={HERE}",
            # The well-known types (google/protobuf/*.proto) ship with grpc_tools.
            f"--proto_path={importlib.resources.files('grpc_tools') / '_proto'}",
            f"--descriptor_set_out={protoset}",
            "--include_imports",
            "shop/inventory.proto",
        ]
    )
    if status != 0:
        raise SystemExit(f"protoc failed: {status}")

    files = descriptor_pb2.FileDescriptorSet()
    with open(protoset, "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    item_type = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("shop.inventory.v1.Item")
    )

    with open(os.path.join(HERE, "item.input.json")) as f:
        item = json_format.Parse(f.read(), item_type())
    with open(os.path.join(HERE, "item.bin"), "wb") as f:
        f.write(item.SerializeToString(deterministic=True))
    with open(os.path.join(HERE, "item.json"), "w") as f:
        json.dump(json_format.MessageToDict(item), f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
