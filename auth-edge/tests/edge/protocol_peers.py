"""Real WebSocket and gRPC peers for the sidecar tests (PyPI `websockets`, `grpcio`).

ws-server PORT    WebSocket server: sends the identity headers it received (JSON) as its first
                  message, then echoes; prints "closed CODE REASON" when a connection ends.
grpc-server PORT  gRPC server (no .proto: raw bytes): /test.Echo/Who answers the identity
                  metadata it received (JSON); /test.Echo/Count streams N messages.
grpc-call ADDR [TOKEN]
                  Calls Who, then Count(3), through ADDR with a spoofed x-user-id and TOKEN as a
                  bearer; prints {"code", "details", "reply", "stream"} as JSON.
"""

import asyncio
import json
import sys
from concurrent import futures

IDENTITY = ("x-user-id", "x-session-id", "x-user-role", "x_user_id")


def ws_server(port):
    from websockets.asyncio.server import serve

    async def handler(ws):
        headers = {k: ws.request.headers.get(k) for k in IDENTITY}
        await ws.send(json.dumps(headers))
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            print("closed", ws.close_code, ws.close_reason, flush=True)

    async def main():
        async with serve(handler, "127.0.0.1", port) as server:
            print("listening", flush=True)
            await server.serve_forever()

    asyncio.run(main())


def grpc_server(port):
    import grpc

    def who(_request, context):
        metadata = dict(context.invocation_metadata())
        return json.dumps({k: metadata.get(k) for k in IDENTITY}).encode()

    def count(request, _context):
        for i in range(int(request.decode() or "0")):
            yield str(i).encode()

    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Who": grpc.unary_unary_rpc_method_handler(who),
            "Count": grpc.unary_stream_rpc_method_handler(count),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("listening", flush=True)
    server.wait_for_termination()


def grpc_call(addr, token):
    import grpc

    metadata = [("x-user-id", "admin")]
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    out = {"code": "OK", "details": None, "reply": None, "stream": None}
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = channel.unary_unary("/test.Echo/Who")(b"", metadata=metadata, timeout=10)
            out["reply"] = json.loads(reply)
            stream = channel.unary_stream("/test.Echo/Count")(b"3", metadata=metadata, timeout=10)
            out["stream"] = [m.decode() for m in stream]
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["details"] = e.details()
    print(json.dumps(out))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "ws-server":
        ws_server(int(args[0]))
    elif command == "grpc-server":
        grpc_server(int(args[0]))
    elif command == "grpc-call":
        grpc_call(args[0], args[1] if len(args) > 1 else "")
    else:
        sys.exit(f"unknown command {command}")
