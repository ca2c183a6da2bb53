"""Backends that come and go, found by DNS (a real dnsmasq on a loopback address) or in a file:
scale up shifts load within TTL + 1 s, scale down fails nothing, failures keep the last good
set for the grace period."""
import json
import os
import time

import h2slab

NAME = "api." + h2slab.Dns.DOMAIN


def dns_backends(lab, n, port=None):
    """n grpc-go backends on 127.0.10.1..n, all on one port (A records carry no port)."""
    port = port or h2slab.free_port("127.0.10.1")
    return [h2slab.Backend(lab, f"b{i}", host=f"127.0.10.{i}", port=port)
            for i in range(1, n + 1)], port


def dns_daemon(lab, dns, vip, resolver, extra=()):
    cfg = (f'dns_servers: ["{dns.addr}"]\n'
           f"services:\n  - vip: \"{vip}\"\n    resolver: {{dns: \"{resolver}\"}}\n")
    return lab.daemon(config=cfg, extra=extra)


def finish(client):
    assert client.p.wait(120) == 0, client.tail()
    return json.loads(client.text().strip().splitlines()[-1])


def test_dns_scale_up_shifts_load_within_ttl_and_scale_down_fails_nothing(lab):
    dns = lab.dns(ttl=1)
    bes, port = dns_backends(lab, 6)
    dns.set_hosts({NAME: [b.host for b in bes[:3]]})
    vip = lab.vip()
    d = dns_daemon(lab, dns, vip, f"{NAME}:{port}")
    lab.wait_backends(d, vip, 3)
    # ONE connection, ~8000 paced RPCs over ~9 s; 3 pods join after ~1.5 s.
    client = lab.client_async(vip, "unary", "-n", 8000, "-c", 4, "-interval-us", 3500,
                              "-tail", 3000)
    time.sleep(1.5)
    t_add = time.time() * 1000
    dns.set_hosts({NAME: [b.host for b in bes]})
    r = finish(client)
    assert r["ok"] == 8000 and r["errors"] == {} and r["dials"] == 1, r
    shift_ms = max(r["first_seen_unix_ms"][b.id] - t_add for b in bes[3:])
    assert shift_ms <= 2000, f"new backends first served {shift_ms:.0f} ms after the DNS change"
    tail = r["tail_by_backend"]
    for b in bes:
        share = tail.get(b.id, 0) / 3000
        assert 0.12 <= share <= 0.22, (b.id, share, tail)
    print(f"scale-up: new backends served within {shift_ms:.0f} ms; last 3000 RPCs {tail}")

    # Scale down under the same kind of load: 0 failed RPCs, and the removed ones drain.
    client = lab.client_async(vip, "unary", "-n", 4000, "-c", 4, "-interval-us", 3500)
    time.sleep(1.5)
    t_del = time.time() * 1000
    dns.set_hosts({NAME: [b.host for b in bes[:3]]})
    r = finish(client)
    assert r["ok"] == 4000 and r["errors"] == {}, r
    for b in bes[3:]:
        assert r["last_seen_unix_ms"].get(b.id, 0) - t_del <= 2000, r["last_seen_unix_ms"]
    lab.wait_backends(d, vip, 3)


def test_dns_srv_records_give_ports_and_weights(lab):
    port1, port2 = h2slab.free_port("127.0.10.1"), h2slab.free_port("127.0.10.2")
    b1 = h2slab.Backend(lab, "light", host="127.0.10.1", port=port1)
    b2 = h2slab.Backend(lab, "heavy", host="127.0.10.2", port=port2)
    srv = f"_grpc._tcp.{NAME}"
    dns = lab.dns(srv=[(srv, f"p1.{NAME}", port1, 1), (srv, f"p2.{NAME}", port2, 3)])
    dns.set_hosts({f"p1.{NAME}": [b1.host], f"p2.{NAME}": [b2.host]})
    vip = lab.vip()
    d = dns_daemon(lab, dns, vip, srv)
    lab.wait_backends(d, vip, 2)
    listed = {b["address"]: b for b in lab.cli(d, "backend", "list", vip, json_out=True).json}
    assert listed[b1.addr]["weight"] == 1 and listed[b2.addr]["weight"] == 3, listed
    assert all(b["source"] == "dns" for b in listed.values())
    r = lab.client(vip, "unary", "-n", 800, "-c", 4)
    assert r["by_backend"] == {"light": 200, "heavy": 600}, r["by_backend"]


def test_dns_failure_keeps_last_good_set_then_gives_up_after_grace(lab):
    dns = lab.dns(ttl=1)
    bes, port = dns_backends(lab, 2)
    dns.set_hosts({NAME: [b.host for b in bes]})
    vip = lab.vip()
    d = dns_daemon(lab, dns, vip, f"{NAME}:{port}", extra=["--set", "resolver_grace_ms=4000"])
    lab.wait_backends(d, vip, 2)
    dns.set_hosts({})  # NXDOMAIN from now on
    time.sleep(2.5)
    r = lab.client(vip, "unary", "-n", 100, "-c", 2)
    assert r["ok"] == 100 and len(r["by_backend"]) == 2, r
    assert "keeping the last good backends" in d.proc.text()
    time.sleep(3.0)  # past the grace period: the name is gone for real
    lab.wait_backends(d, vip, 0)
    r = lab.client(vip, "unary", "-n", 3, check=False)
    assert r["errors"] == {"Unavailable": 3}, r
    dns.set_hosts({NAME: [bes[0].host]})  # and back (failed lookups retry every <= 4 s)
    lab.wait_backends(d, vip, 1, timeout=6)
    assert lab.client(vip, "unary", "-n", 10)["by_backend"] == {bes[0].id: 10}


def test_dns_server_down_keeps_the_set(lab):
    dns = lab.dns(ttl=1)
    bes, port = dns_backends(lab, 2)
    dns.set_hosts({NAME: [b.host for b in bes]})
    vip = lab.vip()
    d = dns_daemon(lab, dns, vip, f"{NAME}:{port}")
    lab.wait_backends(d, vip, 2)
    dns.proc.stop()
    time.sleep(3)  # several failed re-resolutions (timeouts)
    r = lab.client(vip, "unary", "-n", 100, "-c", 2)
    assert r["ok"] == 100 and len(r["by_backend"]) == 2


def test_file_resolver_follows_the_file(lab):
    bes = lab.backends(3)
    path = os.path.join(lab.tmp, "backends.txt")
    with open(path, "w") as f:
        f.write(f"# two to begin with\n{bes[0].addr}\n{bes[1].addr} 3\n")
    vip = lab.vip()
    d = lab.daemon()
    lab.cli(d, "service", "add", vip, "resolver", "file", path)
    lab.wait_backends(d, vip, 2)
    r = lab.client(vip, "unary", "-n", 400, "-c", 4)
    assert r["by_backend"] == {bes[0].id: 100, bes[1].id: 300}, r
    # Replaced the way tools do it (write elsewhere, rename over): a third one joins.
    with open(path + ".new", "w") as f:
        f.write(f"{bes[0].addr}\n{bes[1].addr}\n{bes[2].addr}\n")
    os.rename(path + ".new", path)
    lab.wait_backends(d, vip, 3, timeout=2)
    r = lab.client(vip, "unary", "-n", 300, "-c", 4)
    assert r["by_backend"] == {b.id: 100 for b in bes}, r
    # A broken edit keeps the last good set, and says why.
    with open(path, "w") as f:
        f.write(f"{bes[0].addr}\nnot-an-address\n")
    time.sleep(0.5)
    assert len(lab.cli(d, "backend", "list", vip, json_out=True).json) == 3
    assert "line 2" in d.proc.text()
    svc = lab.cli(d, "service", "list", vip, json_out=True).json[0]
    assert svc["resolver"] == "file" and svc["name"] == path
