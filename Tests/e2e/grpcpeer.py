"""gRPC peers for the h2c tests, on Debian's python3-grpcio (run with /usr/bin/python3).
Messages are raw bytes (no protobuf): the handlers take and return them as they are.

    grpcpeer.py server PORT           fastgw.Test/Unary (echo reversed; b"fail" aborts with
                                      INVALID_ARGUMENT), fastgw.Test/Stream (N messages),
                                      fastgw.Test/Upload (client stream: count and size);
                                      "ready" once listening (h2c, prior knowledge)
    grpcpeer.py client PORT HOST CAFILE
                                      calls each over TLS with HOST as SNI and authority;
                                      prints JSON with what came back
"""
import hashlib
import json
import os
import sys
from concurrent import futures

import grpc


def serve(port):
    def unary(request, context):
        if request == b"fail":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "fail was asked for")
        return request[::-1]

    def stream(request, context):
        for i in range(int(request)):
            yield b"%d:" % i + b"x" * 1000

    def upload(requests, context):
        h = hashlib.sha256()
        n = 0
        for r in requests:
            h.update(r)
            n += 1
        return json.dumps({"messages": n, "sha256": h.hexdigest()}).encode()

    handlers = grpc.method_handlers_generic_handler("fastgw.Test", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handlers,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def client(port, host, cafile):
    creds = grpc.ssl_channel_credentials(root_certificates=open(cafile, "rb").read())
    channel = grpc.secure_channel(f"127.0.0.1:{port}", creds, options=[
        ("grpc.ssl_target_name_override", host), ("grpc.default_authority", host)])
    out = {}
    unary = channel.unary_unary("/fastgw.Test/Unary")
    out["unary"] = unary(b"hello", timeout=20).decode()
    big = os.urandom(3 << 20)
    out["unary_big_ok"] = unary(big, timeout=60) == big[::-1]
    try:
        unary(b"fail", timeout=20)
        out["error"] = None
    except grpc.RpcError as e:
        out["error"] = [e.code().name, e.details()]
    try:
        channel.unary_unary("/fastgw.Test/Missing")(b"x", timeout=20)
        out["missing"] = None
    except grpc.RpcError as e:
        out["missing"] = e.code().name
    messages = list(channel.unary_stream("/fastgw.Test/Stream")(b"2000", timeout=60))
    out["stream"] = [len(messages), messages[0][:2].decode(), messages[-1][:5].decode()]
    chunks = [os.urandom(64 << 10) for _ in range(64)]
    reply = channel.stream_unary("/fastgw.Test/Upload")(iter(chunks), timeout=60)
    out["upload"] = json.loads(reply) == {"messages": 64, "sha256": hashlib.sha256(b"".join(chunks)).hexdigest()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]), sys.argv[3], sys.argv[4])
