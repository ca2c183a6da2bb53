"""A gRPC peer over TLS (python grpcio), for the tests of connections h2steer cannot parse.

  tls_peer.py server --listen ADDR:PORT --id NAME --cert PEM --key PEM
      serves /h2steer.test.Echo/Unary (raw bytes echoed) with response header x-backend-id;
      prints READY once listening
  tls_peer.py client --target ADDR:PORT --ca PEM --name SNI [--channels N] [--rpcs M]
      N channels, each its own connection, kept open together; M RPCs on each; prints
      {"channels": [[backend id per RPC], ...], "errors": [...]}
"""
import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/h2steer.test.Echo/Unary"


def serve(a):
    def unary(req, ctx):
        ctx.send_initial_metadata((("x-backend-id", a.id),))
        return req

    with open(a.cert, "rb") as f:
        cert = f.read()
    with open(a.key, "rb") as f:
        key = f.read()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "h2steer.test.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(unary)}),))
    server.add_secure_port(a.listen, grpc.ssl_server_credentials(((key, cert),)))
    server.start()
    print("READY", a.listen, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(1).wait()
    return 0


def client(a):
    with open(a.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    # A subchannel pool of its own per channel: otherwise grpcio shares one connection
    # between channels to the same target.
    opts = [("grpc.ssl_target_name_override", a.name), ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.secure_channel(a.target, creds, options=opts) for _ in range(a.channels)]
    out, errors = [], []
    for ch in channels:
        call = ch.unary_unary(METHOD)
        seen = []
        for i in range(a.rpcs):
            try:
                resp, c = call.with_call(b"ping %d" % i, timeout=10)
                assert resp == b"ping %d" % i
                seen.append(dict(c.initial_metadata()).get("x-backend-id", "?"))
            except Exception as e:  # every failure is reported, none hidden
                errors.append(str(e)[:200])
        out.append(seen)
    for ch in channels:
        ch.close()
    print(json.dumps({"channels": out, "errors": errors}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", required=True)
    s.add_argument("--id", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--ca", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--channels", type=int, default=1)
    c.add_argument("--rpcs", type=int, default=5)
    a = p.parse_args()
    return serve(a) if a.mode == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main())
