"""`python -m bench.bare_proxy PORT TARGET`: the floor for the router benchmark.

A gRPC server that forwards each `stt.v1.Speech/Recognize` to TARGET as bytes, on the same
grpc.aio and uvloop as the router, and does nothing else: no parsing, routing, failover,
metrics, trace or request id. What it adds to a direct call is what any Python gRPC hop
costs on the machine, whatever the router does.
"""

from __future__ import annotations

import argparse

import grpc
import uvloop

METHOD = "/stt.v1.Speech/Recognize"
DEFAULT_TIMEOUT_S = 30.0


async def serve(port: int, target: str) -> None:
    channel = grpc.aio.insecure_channel(target)
    recognize = channel.unary_unary(METHOD)  # no serializers: bytes in, bytes out

    async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await recognize(request, timeout=context.time_remaining() or DEFAULT_TIMEOUT_S)

    handler = grpc.method_handlers_generic_handler(
        "stt.v1.Speech", {"Recognize": grpc.unary_unary_rpc_method_handler(forward)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_proxy", description=__doc__)
    parser.add_argument("port", type=int, help="port to listen on, on 127.0.0.1")
    parser.add_argument("target", help="where to forward, e.g. 127.0.0.1:50161")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.target))


if __name__ == "__main__":
    main()
