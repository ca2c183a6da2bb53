"""A gRPC client on python3-grpcio (gRPC C-core): a second, independent HTTP/2 client stack for
the end-to-end tests. C-core dials IPv4 targets from dual-stack IPv6 sockets (v4-mapped), which
exercises the connect6 capture path.

usage: pyclient.py TARGET unary N   -> one JSON line: ok, errors, by_backend
"""
import collections
import json
import sys

import grpc


def main():
    target, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode != "unary":
        print(json.dumps({"error": f"unknown mode {mode}"}))
        return 2
    # One channel = one HTTP/2 connection (pick_first over a single address).
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/h2steer.test.Echo/Unary")
        by_backend, errors, ok = collections.Counter(), collections.Counter(), 0
        for i in range(n):
            body = b"py-%d" % i
            try:
                resp, c = call.with_call(body, timeout=10)
            except grpc.RpcError as e:
                errors[e.code().name] += 1
                continue
            md = dict(c.initial_metadata())
            if resp == body:
                ok += 1
                by_backend[md.get("x-backend-id", "?")] += 1
            else:
                errors["BAD_ECHO"] += 1
    print(json.dumps({"mode": mode, "ok": ok, "errors": dict(errors),
                      "by_backend": dict(by_backend), "pass": ok == n}))
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
