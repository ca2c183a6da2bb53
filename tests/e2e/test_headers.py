"""Header blocks of any size (issue 15): what a gRPC backend takes directly, it takes through
h2steer (max_header_list defaults to grpc-go's 16 MiB); a block over the limit fails only its
own stream, with a status, at once, in either direction, and is counted.

Bulk metadata goes in fields of at most 16 KiB: libnghttp2 decodes no single HPACK string over
64 KiB (NGHTTP2_HD_MAX_NV), a connection error of the library's that h2steer cannot turn into a
stream's (README, max_header_list).
"""
import json
import time

import h2slab
from h2slab import metric

TOO_LARGE = "h2steer_header_list_too_large_total"


def test_grpcio_metadata_of_70kb_and_200kb_reaches_the_backend(lab):
    # Before: 70 KB was refused upstream 5 times (UNAVAILABLE, nghttp2 sends no block above
    # 64 KiB); 200 KB ran into libnghttp2's 8 CONTINUATION frames and lost the connection.
    be = lab.backends(1)[0]
    vip = lab.vip()
    lab.daemon(services={vip: [be.addr]})
    for size in (70000, 200000):
        r = lab.pyclient("pyclient.py", vip, "metadata", size, 16384)
        assert r["big"]["code"] == "OK", (size, r)
        assert r["big"]["fill_bytes"] == str(size), (size, r)  # all of it reached the backend
        assert r["other"]["code"] == "OK", (size, r)


def test_grpc_go_metadata_of_70kb_and_200kb_reaches_the_backend(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    lab.daemon(services={vip: [be.addr]})
    for size in (70000, 200000):
        # -fill: the backend answers x-fill-bytes, checked on every call; echo checked too.
        r = lab.client(vip, "unary", "-n", 20, "-c", 2, "-fill", size)
        assert r["ok"] == 20 and r["dials"] == 1, (size, r)


def test_request_headers_over_the_limit_fail_alone_with_resource_exhausted(lab):
    """grpcio sends what the limit it was told forbids (grpc-go checks it itself, and fails
    such a call INTERNAL without sending it): only that call fails, no backend sees it, and
    the call in flight beside it on the same connection completes."""
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]}, extra=["--set", "max_header_list=16384"])
    r = lab.pyclient("pyclient.py", vip, "metadata", 20000, 4096)
    assert r["big"]["code"] == "RESOURCE_EXHAUSTED", r
    assert "over 16384 bytes (max_header_list)" in r["big"]["details"], r
    assert r["big"]["seconds"] < 1, r  # answered at once, not after the call beside it
    assert r["other"]["code"] == "OK", r
    # The warm-up and the call beside it: the oversized one was neither sent nor replayed.
    assert be.stats(lab)["rpcs"] == 2
    m = d.scrape()
    assert metric(m, TOO_LARGE, **{"from": "client"}) == 1
    assert metric(m, "h2steer_rpcs_total", service=vip, backend="none", grpc_status=8) == 1
    assert metric(m, "h2steer_retries_total") == 0
    assert "<4>client " in d.proc.text() and "request headers over max_header_list" in \
        d.proc.text()
    # Within the limit, the same channel's calls still work.
    r = lab.pyclient("pyclient.py", vip, "metadata", 8000, 4096)
    assert r["big"]["code"] == "OK" and r["big"]["fill_bytes"] == "8000", r


def test_response_headers_over_the_limit_fail_the_call_at_once(lab):
    """Before, a backend's response headers over 64 KiB were never sent on (nghttp2 refused
    the block and said nothing): the call hung until its deadline. Now it fails INTERNAL at
    once, and the other calls on that backend connection go on."""
    raw = h2slab.Backend(lab, "raw", raw=True)
    vip = lab.vip()
    d = lab.daemon(services={vip: [raw.addr]}, extra=["--set", "max_header_list=65536"])
    steady = lab.client_async(vip, "unary", "-n", 300, "-c", 2, "-interval-us", 5000)
    time.sleep(0.3)
    t0 = time.monotonic()
    r = lab.client(vip, "unary", "-n", 1, "-meta", "x-response-header-bytes=100000",
                   "-rpc-timeout", "30s", check=False)
    took = time.monotonic() - t0
    assert r["errors"] == {"Internal": 1}, r
    assert "response header list from backend" in r["failures"][0], r
    assert took < 5, f"the call took {took:.1f} s (deadline 30 s)"
    assert steady.p.wait(60) == 0, steady.tail()
    s = json.loads(steady.text().strip().splitlines()[-1])
    assert s["ok"] == 300 and s["dials"] == 1, s
    m = d.scrape()
    assert metric(m, TOO_LARGE, **{"from": "backend"}) == 1
    # The backend connection carried on: the oversized stream was reset, not the connection.
    assert metric(m, "h2steer_upstream_connections_opened_total", backend=raw.addr) == 1
