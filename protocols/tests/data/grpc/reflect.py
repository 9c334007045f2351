"""Records a real gRPC server reflection answer for the decoding tests.

A Python grpcio server with grpcio-reflection serves the descriptors of
inventory.protoset (see generate.py) on a loopback port; a client asks it,
over the real reflection protocol, for the file containing
`shop.inventory.v1.Inventory`. Each FileDescriptorProto of the answer is
written, in the order the server sent it, as reflection/NN.bin. Run from this
directory after generate.py, with grpcio-tools and grpcio-reflection
installed:

    python reflect.py
"""

import os
import shutil
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = "shop.inventory.v1.Inventory"


def main():
    files = descriptor_pb2.FileDescriptorSet()
    with open(os.path.join(HERE, "inventory.protoset"), "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    reflection.enable_server_reflection([SERVICE, reflection.SERVICE_NAME], server, pool=pool)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
            answers = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
    finally:
        server.stop(None)

    protos = answers[0].file_descriptor_response.file_descriptor_proto
    if not protos:
        raise SystemExit(f"no descriptors in the answer: {answers[0]}")
    out = os.path.join(HERE, "reflection")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for i, proto in enumerate(protos):
        with open(os.path.join(out, f"{i:02}.bin"), "wb") as f:
            f.write(proto)
        print(f"{i:02}.bin", descriptor_pb2.FileDescriptorProto.FromString(proto).name)


if __name__ == "__main__":
    main()
