"""Per-RPC balancing of ONE client connection, as a client that was never told about h2steer
sees it: it dials the service address, and its RPCs spread over every backend."""
import time

import pytest

import h2slab


def shares(by_backend, total):
    return {k: v / total for k, v in by_backend.items()}


def test_3000_rpcs_one_connection_spread_over_3_backends(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    r = lab.client(vip, "unary", "-n", 3000, "-c", 8)
    assert r["dials"] == 1 and r["ok"] == 3000 and r["errors"] == {}
    assert set(r["by_backend"]) == {b.id for b in bes}
    for be, share in shares(r["by_backend"], 3000).items():
        assert 0.30 <= share <= 0.37, (be, r["by_backend"])
    # The backends agree: each saw exactly one connection from h2steer, not one per RPC.
    for b in bes:
        st = b.stats(lab)
        assert st["rpcs"] == r["by_backend"][b.id] and st["conns"] == 1, st


def test_backend_added_by_cli_gets_rpcs_within_1s(lab):
    bes = lab.backends(4)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes[:3]]})
    # ~3000 RPCs paced over ~3 s on one connection; the 4th backend joins after ~1 s.
    client = lab.client_async(vip, "unary", "-n", 3000, "-c", 4, "-interval-us", 4000)
    time.sleep(1.0)
    t_add_ms = time.time() * 1000
    lab.cli(d, "backend", "add", vip, bes[3].addr)
    assert client.p.wait(60) == 0, client.tail()
    r = __import__("json").loads(client.text().strip().splitlines()[-1])
    assert r["dials"] == 1 and r["ok"] == 3000
    first = r["first_seen_unix_ms"].get(bes[3].id)
    assert first is not None, r["by_backend"]
    assert first - t_add_ms <= 1000, f"4th backend first RPC {first - t_add_ms:.0f} ms after add"
    assert r["by_backend"][bes[3].id] > 100, r["by_backend"]


def test_least_request_spreads_and_avoids_slow_backend(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: {"algo": "least_request", "backends": [b.addr for b in bes]}})
    r = lab.client(vip, "unary", "-n", 1500, "-c", 8)
    assert r["ok"] == 1500 and len(r["by_backend"]) == 3
    for share in shares(r["by_backend"], 1500).values():
        assert share > 0.2, r["by_backend"]
    svc = lab.cli(d, "service", "list", vip, json_out=True).json
    assert svc[0]["algo"] == "least_request"


def test_python_grpc_client_dual_stack_socket_is_captured(lab):
    """gRPC C-core connects an IPv4 target from an AF_INET6 socket (v4-mapped): connect6."""
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    r = lab.pyclient("pyclient.py", vip, "unary", 600)
    assert r["ok"] == 600 and r["errors"] == {}
    for share in shares(r["by_backend"], 600).values():
        assert 0.30 <= share <= 0.37, r["by_backend"]
    assert lab.cli(d, "stats", json_out=True).json["kernel"]["captured"] >= 1


def test_ipv6_service_and_backends(lab):
    bes = lab.backends(3, host="::1")
    vip = f"[::1]:{__import__('h2slab').free_port('::1')}"
    lab.daemon(services={vip: [b.addr for b in bes]})
    r = lab.client(vip, "unary", "-n", 600, "-c", 4)
    assert r["ok"] == 600 and set(r["by_backend"]) == {b.id for b in bes}


def test_backend_removed_by_cli_gets_no_new_rpcs(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    lab.cli(d, "backend", "del", vip, bes[0].addr)
    r = lab.client(vip, "unary", "-n", 300, "-c", 4)
    assert r["ok"] == 300 and bes[0].id not in r["by_backend"], r["by_backend"]
    listed = lab.cli(d, "backend", "list", vip, json_out=True).json
    assert sorted(b["address"] for b in listed) == sorted(b.addr for b in bes[1:])


def test_service_declared_by_cli_only(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon()
    lab.cli(d, "service", "add", vip, "algo", "round_robin")
    for b in bes:
        lab.cli(d, "backend", "add", vip, b.addr, "weight", 1)
    r = lab.client(vip, "unary", "-n", 200, "-c", 2)
    assert r["ok"] == 200 and r["by_backend"] == {bes[0].id: 100, bes[1].id: 100}
    lab.cli(d, "service", "del", vip)
    assert lab.cli(d, "service", "list", json_out=True).json == []


@pytest.mark.parametrize("algo", ["round_robin", "least_request"])
def test_service_with_no_backends_answers_unavailable(lab, algo):
    vip = lab.vip()
    lab.daemon(services={vip: {"algo": algo, "backends": []}})
    r = lab.client(vip, "unary", "-n", 5, check=False)
    assert r["errors"] == {"Unavailable": 5}, r


def test_pool_opens_connections_as_backend_max_concurrent_streams_fills(lab):
    """A backend allowing 2 streams per connection gets 5 connections for 10 RPCs in flight."""
    be = h2slab.Backend(lab, "narrow", extra=["-max-streams", "2"])
    vip = lab.vip()
    lab.daemon(services={vip: [be.addr]})
    r = lab.client(vip, "concurrent", "-streams", 10, "-sleep-ms", 1500)
    assert r["ok"] == 10 and r["dials"] == 1
    assert r["elapsed_s"] < 3.0, r  # all 10 ran at once, none queued behind the limit
    st = be.stats(lab)
    assert st["conns"] == 5 and st["max_in_flight"] == 10, st
