"""Coexistence with another connect-time balancer. A socket-level LB (Cilium's socket LB, a
kube-proxy replacement) rewrites the service address to one backend at connect(); when its
hook runs before h2steer's, h2steer sees a backend address — and, without more, every RPC of
that connection stays on that one backend: per-RPC balancing silently gone, the class of bug
that disables a mesh's per-request balancing. A service with capture_backends is captured by
its backends' addresses as well, and keeps balancing each RPC."""
import os
import socket
import struct
import subprocess
import time

import h2slab

OTHER_LB = os.path.join(h2slab.TOP, "build", "other_lb.bpf.o")


def nat_entry(addr):
    """An other_lb_addr (IPv4 and port in network order, pad) as bpftool's hex bytes."""
    host, port = addr.rsplit(":", 1)
    raw = socket.inet_aton(host) + struct.pack("!H", int(port)) + b"\0\0"
    return [f"{b:02x}" for b in raw]


class OtherLb:
    """other_lb.bpf.o loaded and attached to cgroup, rewriting vip to backend."""

    def __init__(self, lab, cgroup, vip, backend):
        self.pins = f"/sys/fs/bpf/h2s-lab-{os.getpid()}-{lab.seq()}-other-lb"
        os.makedirs(self.pins)
        self.prog, self.cgroup = f"{self.pins}/prog", cgroup
        subprocess.run(["bpftool", "prog", "load", OTHER_LB, self.prog, "type", "cgroup/connect4",
                        "pinmaps", f"{self.pins}/maps"], check=True, capture_output=True)
        subprocess.run(["bpftool", "map", "update", "pinned", f"{self.pins}/maps/other_lb_nat",
                        "key", "hex", *nat_entry(vip), "value", "hex", *nat_entry(backend)],
                       check=True, capture_output=True)
        subprocess.run(["bpftool", "cgroup", "attach", cgroup, "connect4", "pinned", self.prog,
                        "multi"], check=True, capture_output=True)

    def close(self):
        subprocess.run(["bpftool", "cgroup", "detach", self.cgroup, "connect4", "pinned",
                        self.prog], capture_output=True)
        subprocess.run(["rm", "-rf", self.pins], check=True)


def test_vip_rewritten_to_a_backend_by_another_balancer_still_balanced_per_rpc(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    client_cg = lab.make_cgroup(os.path.relpath(os.path.join(lab.cgroup, "client"), lab.root))
    other = OtherLb(lab, client_cg, vip, bes[0].addr)
    try:
        # The bug, shown: the other balancer's rewrite runs first; h2steer sees be1's address
        # and (capture_backends off) leaves the connection alone: every RPC on be1.
        r = lab.client(vip, "unary", "-n", 300, "-c", 4, in_cgroup=client_cg)
        assert r["ok"] == 300 and r["by_backend"] == {bes[0].id: 300}, r["by_backend"]
        pinned = dict(r["by_backend"])

        lab.cli(d, "service", "set", vip, "capture-backends", "on")
        # h2s_be_vip is the daemon's to write: it follows a change within its refresh
        # period (200 ms); the next connect is then captured.
        time.sleep(0.5)
        r = lab.client(vip, "unary", "-n", 3000, "-c", 8, in_cgroup=client_cg)
        assert r["ok"] == 3000 and r["dials"] == 1, r
        print(f"VIP rewritten to be1 by another socket LB: off {pinned}, "
              f"capture-backends on {r['by_backend']}")
        for b in bes:
            assert 0.30 <= r["by_backend"].get(b.id, 0) / 3000 <= 0.37, r["by_backend"]
        stats = lab.cli(d, "stats", json_out=True).json
        assert stats["kernel"]["captured_by_backend"] >= 1, stats["kernel"]
        svc = lab.cli(d, "service", "list", vip, json_out=True).json[0]
        assert svc["capture_backends"] is True, svc
        # The daemon's own connections to the backends are never taken back (they are marked),
        # and a client dialling a backend directly on a service without the flag is untouched:
        # be1's own count matches what the client saw.
        assert bes[0].stats(lab)["rpcs"] == pinned[bes[0].id] + r["by_backend"][bes[0].id]
    finally:
        other.close()
