"""A gRPC client on python3-grpcio (gRPC C-core): a second, independent HTTP/2 client stack for
the end-to-end tests. C-core dials IPv4 targets from dual-stack IPv6 sockets (v4-mapped), which
exercises the connect6 capture path.

usage: pyclient.py TARGET unary N   -> one JSON line: ok, errors, by_backend
       pyclient.py TARGET metadata BYTES FIELD_BYTES
           on one channel, a call that sleeps 1.5 s on the backend (x-sleep-ms), then while
           it is in flight a call with BYTES of request metadata in x-fill-* keys of at most
           FIELD_BYTES each; one JSON line: for "big" and "other", their code, details and
           seconds, and for "big" the x-fill-bytes the backend answered
"""
import collections
import json
import sys
import threading
import time

import grpc


def call_outcome(call, body, metadata):
    t0 = time.monotonic()
    try:
        _, c = call.with_call(body, timeout=20, metadata=metadata)
        out = {"code": "OK", "details": "",
               "fill_bytes": dict(c.initial_metadata()).get("x-fill-bytes")}
    except grpc.RpcError as e:
        out = {"code": e.code().name, "details": e.details()}
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out


def metadata_mode(target, size, field):
    fill = [(f"x-fill-{i}", "x" * min(field, size - i * field))
            for i in range((size + field - 1) // field)]
    out = {"mode": "metadata"}
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/h2steer.test.Echo/Unary")
        call.with_call(b"warm-up", timeout=10)  # the channel is up, the other call is not first
        other = threading.Thread(target=lambda: out.__setitem__(
            "other", call_outcome(call, b"other", [("x-sleep-ms", "1500")])))
        other.start()
        time.sleep(0.3)
        out["big"] = call_outcome(call, b"big", fill)
        other.join()
    print(json.dumps(out))
    return 0


def main():
    target, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "metadata":
        return metadata_mode(target, n, int(sys.argv[4]))
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
