#!/usr/bin/python3
"""make demo: one gRPC client connection, its RPCs spread over three local backends.

Starts three grpc-go backends, h2steerd capturing a throwaway cgroup, declares a service with
the h2steer CLI, runs an unmodified gRPC client in that cgroup (one channel, one TCP connection
to the service address), prints how many RPCs each backend served — then removes everything.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2slab  # noqa: E402

RPCS = 300


def show(cmd):
    print(f"  $ {cmd}")


def main():
    if os.geteuid() != 0:
        print("make demo needs root: sudo make demo", file=sys.stderr)
        return 1
    lab = h2slab.Lab("demo")
    try:
        print("h2steer demo: per-RPC balancing of ONE gRPC connection\n")
        bes = lab.backends(3, prefix="backend-")
        for b in bes:
            print(f"  started gRPC backend {b.id} on {b.addr}")
        d = lab.daemon()
        print(f"\n  started h2steerd (pid {d.proc.pid}): capturing cgroup {lab.cgroup}")
        vip = lab.vip(50051)
        show(f"h2steer service add {vip} algo round_robin")
        lab.cli(d, "service", "add", vip, "algo", "round_robin")
        for b in bes:
            show(f"h2steer backend add {vip} {b.addr}")
            lab.cli(d, "backend", "add", vip, b.addr)
        print()
        show("h2steer service list")
        for line in lab.cli(d, "service", "list").stdout.splitlines():
            print(f"    {line}")

        print(f"\n  a gRPC client in that cgroup dials {vip} (nothing listens there) and makes "
              f"{RPCS} unary RPCs over one channel:")
        r = lab.client(vip, "unary", "-n", RPCS, "-c", 4)
        print(f"  client: {r['ok']} OK, {sum(r['errors'].values())} errors, "
              f"{r['dials']} TCP connection(s), p50 {r['p50_us']} us\n")
        print(f"  {'backend':<12} {'address':<22} {'RPCs served':>12} {'share':>7}")
        for b in bes:
            st = b.stats(lab)
            print(f"  {b.id:<12} {b.addr:<22} {st['rpcs']:>12} "
                  f"{100.0 * st['rpcs'] / RPCS:>6.1f}%")
        counters = lab.cli(d, "stats", json_out=True).json["kernel"]
        print(f"\n  kernel: {counters['captured']} connection(s) captured, "
              f"{counters['origin_added']} origin record(s) written")
        ok = r["ok"] == RPCS and all(b.stats(lab)["rpcs"] > 0 for b in bes)
        print("\n  every backend served RPCs of the one connection" if ok else "\n  FAILED")
        return 0 if ok else 1
    finally:
        problems = lab.close()
        print("  cleaned up: processes stopped, pins and cgroup removed"
              if not problems else f"  cleanup problems: {problems}")


if __name__ == "__main__":
    sys.exit(main())
