"""What an operator sees: /metrics (values that move with the traffic, and pass promtool's
lint), /healthz and /readyz, and every CLI command that asks the daemon (conn, stream, stats,
status), in table and JSON form, with its errors."""
import json
import os
import socket
import subprocess
import time

import h2slab
from h2slab import metric

PROMTOOL = os.path.join(h2slab.BUILD, "deps", "promtool")


def total(scraped, name, **labels):
    """Sum of every sample of name whose labels include these."""
    want = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and want <= ls)


def test_metrics_move_with_rpcs_and_pass_promtool_lint(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    before = d.scrape()
    assert total(before, "h2steer_rpcs_total") == 0
    r = lab.client(vip, "unary", "-n", 300, "-c", 3, "-size", 1000)
    assert r["ok"] == 300
    lab.client(vip, "status", "-code", 14)  # one RPC ending UNAVAILABLE, from a backend
    after = d.scrape()
    # RPCs by service, backend and grpc-status.
    for b in bes:
        assert total(after, "h2steer_rpcs_total", service=vip, backend=b.addr,
                     grpc_status="0") == 100, b.addr
    assert total(after, "h2steer_rpcs_total", service=vip, grpc_status="14") == 1
    # The latency histogram counts every RPC; its buckets are cumulative.
    count = metric(after, "h2steer_rpc_duration_seconds_count", service=vip)
    assert count == 301
    assert metric(after, "h2steer_rpc_duration_seconds_bucket", service=vip, le="+Inf") == count
    assert metric(after, "h2steer_rpc_duration_seconds_sum", service=vip) > 0
    # Bytes both ways: 300 requests and 300 responses of 1000 bytes, plus gRPC framing.
    for direction in ("request", "response"):
        got = metric(after, "h2steer_relayed_bytes_total", service=vip, direction=direction)
        assert got >= 300 * 1000, (direction, got)
    assert total(after, "h2steer_client_connections_accepted_total") == 2
    assert total(after, "h2steer_kernel_connects_total", result="captured") >= 2
    assert total(after, "h2steer_upstream_connections_opened_total") >= 3
    for b in bes:
        assert metric(after, "h2steer_streams_in_flight", backend=b.addr) == 0
    # Prometheus' own linter finds nothing to say about names, units, help or types.
    status, text = d.http("/metrics")
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "" and lint.stderr.strip() == "", lint.stdout + lint.stderr


def test_ejections_retries_and_drains_are_counted(lab):
    refusing = h2slab.Backend(lab, "refusing", raw=True, extra=["--refuse-every", "2"])
    good = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [refusing.addr] + [b.addr for b in good]})
    r = lab.client(vip, "unary", "-n", 120, "-c", 2)
    assert r["ok"] == 120
    assert total(d.scrape(), "h2steer_retries_total") >= 1
    lab.cli(d, "backend", "drain", vip, good[0].addr)
    deadline = time.monotonic() + 2  # the daemon sees map changes within 200 ms
    while total(d.scrape(), "h2steer_drains_total") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert total(d.scrape(), "h2steer_drains_total") == 1
    # Connect failures eject: a backend nobody listens on.
    dead = f"127.0.0.1:{h2slab.free_port()}"
    lab.cli(d, "backend", "add", vip, dead)
    lab.client(vip, "unary", "-n", 30, "-c", 1)
    m = d.scrape()
    assert metric(m, "h2steer_ejections_total", backend=dead, reason="connect") >= 1
    assert metric(m, "h2steer_backend_connect_failures_total", backend=dead) >= 1


def test_healthz_and_readyz(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]})
    assert d.http("/healthz")[0] == 200
    status, text = d.http("/readyz")
    assert status == 200, text
    assert d.http("/nothing")[0] == 404
    # A DNS server that never answers: until its resolver's first lookup ends (c-ares gives
    # up after 2 tries, about 6 s) the daemon is not ready, and says why.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    d2 = lab.daemon(extra=["--dns-server", "127.0.0.1:%d" % silent.getsockname()[1]])
    assert d2.http("/readyz")[0] == 200
    lab.cli(d2, "service", "add", lab.vip(), "resolver", "dns", "nowhere.test:80")
    status, text = wait_readyz(d2, 503, 3)
    assert status == 503 and "resolver" in text, (status, text)
    assert d2.http("/healthz")[0] == 200  # alive all the same
    # A lookup that failed is an answer too (the service just has no backends yet).
    status, text = wait_readyz(d2, 200, 15)
    assert status == 200, text
    silent.close()


def wait_readyz(d, want, timeout):
    deadline = time.monotonic() + timeout
    while True:
        status, text = d.http("/readyz")
        if status == want or time.monotonic() > deadline:
            return status, text
        time.sleep(0.1)


def test_conn_and_stream_list_show_live_traffic(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    c = lab.client_async(vip, "concurrent", "-streams", 4, "-sleep-ms", 4000)
    streams = lab.wait_streams(d, 4)
    assert len(streams) == 4, streams
    assert {s["backend"] for s in streams} == {b.addr for b in bes}
    assert all(s["method"].startswith("/") and s["service"] == vip for s in streams)
    assert all(s["age_s"] >= 0 and s["state"] in ("sent", "responding") for s in streams)
    conns = lab.cli(d, "conn", "list", json_out=True).json
    assert len(conns) == 1 and conns[0]["service"] == vip, conns
    assert conns[0]["streams_open"] == 4 and conns[0]["pid"] == c.pid
    # Tables, and prefix-matched verbs.
    table = lab.cli(d, "conn", "li").stdout
    assert "PEER" in table and vip in table, table
    table = lab.cli(d, "str", "l").stdout
    assert streams[0]["method"] in table and "BACKEND" in table, table
    assert c.p.wait(30) == 0, c.tail()
    assert lab.cli(d, "stream", "list", json_out=True).json == []


def test_stats_and_status(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    lab.client(vip, "unary", "-n", 40, "-c", 2)
    st = lab.cli(d, "stats", json_out=True).json
    (svc,) = st["services"]
    assert svc["service"] == vip
    assert {b["backend"]: b["rpcs"]["0"] for b in svc["backends"]} == {
        b.addr: 20 for b in bes}
    assert st["kernel"]["captured"] >= 1
    table = lab.cli(d, "stats").stdout
    assert vip in table and bes[0].addr in table
    s = lab.cli(d, "status", json_out=True).json
    assert s["daemon"]["pid"] == d.proc.pid and s["daemon"]["ready"] is True
    assert s["capture"] is True
    assert {l["link"] for l in s["links"]} >= {"h2s_connect4", "h2s_connect6", "h2s_sockops"}
    assert {m["map"] for m in s["maps"]} >= {"h2s_ctl", "h2s_services", "h2s_lb"}
    assert s["versions"]["kernel"] == os.uname().release
    text = lab.cli(d, "-p", "status", json_out=True).stdout
    assert text.startswith("{\n"), text  # -p: pretty-printed
    table = lab.cli(d, "status").stdout
    assert "ready" in table and "capture   on" in table, table


def test_cli_errors_in_json_mode(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]})
    cases = [
        (("conn", "list", "extra"), 2),
        (("stream", "frobnicate"), 2),
        (("backend", "set", vip, bes[0].addr, "weight", "0"), 2),
        (("backend", "set", vip, "127.0.0.1:1", "weight", "2"), 1),
        (("nosuchobject",), 2),
    ]
    for args, code in cases:
        r = lab.cli(d, *args, json_out=True, check=False)
        assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
        err = json.loads(r.stdout)
        assert list(err) == ["error"] and err["error"], (args, err)
    # With the daemon gone, the commands that need it say so.
    d.stop()
    r = lab.cli(d, "conn", "list", json_out=True, check=False)
    assert r.returncode == 1 and "error" in json.loads(r.stdout), r.stdout


def test_a_listen_address_the_host_lacks_is_bound_and_warned_about(lab):
    """A pods' gateway may not exist until the first pod (so listeners bind with IP_FREEBIND),
    but a mistyped address would then bind silently: the daemon says which one is not on the
    host. In a namespace of the test's own, where only loopback exists; nothing is sent."""
    ns = lab.netns()
    port = h2slab.free_port()
    absent = f"10.255.77.1:{port}"
    d = lab.daemon(wrap=h2slab.in_netns(ns), listen=[f"127.0.0.1:{port}", f"[::1]:{port}", absent])
    text = d.proc.text()
    assert f"listening on {absent}" in text, text[-3000:]
    assert f"{absent} is not an address of this host (yet)" in text, text[-3000:]
    assert text.count("is not an address of this host") == 1, text[-3000:]
