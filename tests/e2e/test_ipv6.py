"""IPv6 and dual stack, end to end: IPv6 VIPs captured by connect6, IPv6 backends found by AAAA
answers of a real DNS server, a service dialled by its IPv4 and its IPv6 address alike (the
two ClusterIPs of a dual-stack Kubernetes Service), backends of both families behind either.
Everything runs in a network namespace the test creates, whose loopback carries the IPv6
addresses (fd00::/8, unique local), so distinct backends can share one port as DNS needs."""
import subprocess

import h2slab

NAME = "dual." + h2slab.Dns.DOMAIN
PORT = 50051


def test_dual_stack_service_over_aaaa_and_a_answers(lab):
    ns = lab.netns()
    v6 = [f"fd00:10::{i}" for i in (1, 2, 3)]
    for ip in v6:
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/128", "dev", "lo", "nodad"],
                       check=True)
    bes = [h2slab.Backend(lab, f"v6-{i + 1}", host=ip, port=PORT, netns=ns)
           for i, ip in enumerate(v6)]
    bes.append(h2slab.Backend(lab, "v4-1", host="127.0.10.1", port=PORT, netns=ns))
    dns = h2slab.Dns(lab, netns=ns)
    dns.set_hosts({NAME: v6 + ["127.0.10.1"]})  # three AAAA and one A record
    vip6, vip4 = f"[fd00:96::10]:{PORT}", f"127.0.100.10:{PORT}"
    cfg = (f'dns_servers: ["{dns.addr}"]\nservices:\n'
           f'  - vip: "{vip6}"\n    resolver: {{dns: "{NAME}:{PORT}"}}\n'
           f'  - vip: "{vip4}"\n    resolver: {{dns: "{NAME}:{PORT}"}}\n')
    d = lab.daemon(config=cfg, wrap=h2slab.in_netns(ns))
    lab.wait_backends(d, vip6, 4)
    listed = {b["address"] for b in lab.cli(d, "backend", "list", vip6, json_out=True).json}
    assert listed == {f"[{ip}]:{PORT}" for ip in v6} | {f"127.0.10.1:{PORT}"}, listed
    for vip in (vip6, vip4):
        # The Go client dials the IPv6 VIP with an AF_INET6 socket (connect6), the IPv4 one
        # with AF_INET (connect4); both land on the daemon and spread over both families.
        r = lab.client(vip, "unary", "-n", 2000, "-c", 8, netns=ns)
        assert r["ok"] == 2000 and r["dials"] == 1, r
        print(f"{vip}: {r['by_backend']}")
        assert set(r["by_backend"]) == {b.id for b in bes}, r["by_backend"]
        for n in r["by_backend"].values():
            assert 0.22 <= n / 2000 <= 0.28, r["by_backend"]
    # grpcio (C-core) over the IPv6 VIP: streaming both ways too.
    r = lab.pyclient("pyclient.py", vip6, "unary", 400, netns=ns)
    assert r["ok"] == 400 and len(r["by_backend"]) == 4, r
    for mode in ("sstream", "cstream", "bidi"):
        r = lab.client(vip6, mode, netns=ns)
        assert r["ok"] >= 1 and not r["errors"], (mode, r)
    stats = lab.cli(d, "stats", json_out=True).json["kernel"]
    assert stats["captured"] >= 6, stats
