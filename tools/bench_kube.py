#!/usr/bin/python3
"""make bench-kube: the Kubernetes source at scale — N Services x E endpoints in the test API
server (tests/kube/apiserver.py, the real protocol over HTTPS), the release daemon watching it:

- sync: from the daemon's start to its "kubernetes: synced" line (every Service and slice
  listed and written to the maps), and until `h2steer service list` shows all N;
- RSS of the daemon after the sync (and before it, with nothing listed);
- cost of watch events: CPU time of the daemon per 1000 EndpointSlice MODIFIED events (each
  flips one endpoint of one slice), and how long until the last one is in the maps.

No traffic is sent: the VIPs (127.1.x.y) and endpoints (127.2.x.y) exist only in the maps.
Output: a table on stdout and OUT/kube.json (OUT: build/bench).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2slab  # noqa: E402

sys.path.insert(0, os.path.join(h2slab.TOP, "tests", "kube"))
import apiserver  # noqa: E402
import objects as k8s  # noqa: E402

NS = "bench"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vip(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"


def endpoint_ip(j):
    return f"127.2.{j // 250}.{j % 250 + 1}"


def make_objects(n, e, flipped=()):
    svcs, slices = [], []
    for i in range(n):
        svcs.append(k8s.service(NS, f"svc-{i}", cluster_ips=[vip(i)], ports=[
            {"name": "grpc", "port": 50051, "targetPort": "grpc", "appProtocol": "grpc"}]))
        slices.append(slice_of(i, e, i in flipped))
    k8s.validate(svcs[0])
    k8s.validate(slices[0])
    return svcs, slices


def slice_of(i, e, first_down=False):
    eps = [k8s.endpoint(addresses=[endpoint_ip(i * e + k)], node_name=f"node-{k % 5}",
                        ready=not (first_down and k == 0), serving=not (first_down and k == 0))
           for k in range(e)]
    return k8s.endpoint_slice(NS, f"svc-{i}", name=f"svc-{i}-bench",
                              ports=[{"name": "grpc", "port": 8080, "protocol": "TCP"}],
                              endpoints=eps)


def kube_status(lab, d):
    st = lab.cli(d, "status", json_out=True, check=False).json
    return (st.get("daemon") or {}).get("kubernetes") or {}


def wait(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise SystemExit(f"bench-kube: timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=20)
    ap.add_argument("--events", type=int, default=1000, help="slice events per round")
    ap.add_argument("-r", "--reps", type=int, default=3, help="event rounds (median)")
    ap.add_argument("--out", default=os.path.join(h2slab.BUILD, "bench"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-kube: needs root (sudo make bench-kube)")
    n, e = a.services, a.endpoints
    svcs, slices = make_objects(n, e)
    lab = h2slab.Lab("bench-kube")
    api = apiserver.ApiServer(cert_dir=os.path.join(lab.tmp, "kubeapi"), bookmark_interval=5)
    try:
        api.start()
        api.apply(k8s.node("node-0", zone="zone-a"))
        for o in svcs + slices:
            api.apply(o, validate=False)
        t0 = time.monotonic()
        d = h2slab.Daemon(lab, binary=os.path.join(h2slab.BUILD, "h2steerd"), extra=[
            "--log-level", "info", "--kubernetes", api.url, "--kube-token-file",
            api.token_file, "--kube-ca-file", api.ca_file, "--node-name", "node-0"])
        pid = d.proc.p.pid
        rss_start = rss_mib(pid)
        wait("the sync", lambda: "kubernetes: synced" in d.proc.text(), 300)
        t_synced = time.monotonic() - t0
        cpu_sync = cpu_s(pid)
        wait("every service in the maps",
             lambda: len(lab.cli(d, "service", "list", json_out=True).json) == n, 120)
        t_listed = time.monotonic() - t0
        time.sleep(1)
        rss_synced = rss_mib(pid)
        rounds = []
        for r in range(a.reps):
            base = kube_status(lab, d)["endpointslices"]["events"]
            down = r % 2 == 0
            cpu0 = cpu_s(pid)
            t1 = time.monotonic()
            for i in range(a.events):
                api.apply(slice_of(i % n, e, first_down=down), validate=False)
            last = vip((a.events - 1) % n) + ":50051"
            want = e - 1 if down else e
            wait("the events applied", lambda: kube_status(lab, d)["endpointslices"]["events"]
                 >= base + a.events, 120)
            wait("the last change in the maps", lambda: len(
                lab.cli(d, "backend", "list", last, json_out=True).json) == want, 60)
            took = time.monotonic() - t1
            time.sleep(0.5)  # the CLI's own requests settle
            rounds.append({"cpu_ms_per_1000": (cpu_s(pid) - cpu0) * 1000 / a.events * 1000,
                           "applied_s": took})
        rss_after = rss_mib(pid)
        d.stop()
    finally:
        api.close()
        lab.close()
    res = {
        "services": n, "endpoints_per_service": e, "objects": 2 * n + 1,
        "sync_s": round(t_synced, 3), "all_listed_s": round(t_listed, 3),
        "daemon_cpu_s_to_sync": round(cpu_sync, 3),
        "rss_mib": {"at_start": round(rss_start, 1), "synced": round(rss_synced, 1),
                    "after_events": round(rss_after, 1)},
        "events_per_round": a.events,
        "cpu_ms_per_1000_events": round(statistics.median(
            r["cpu_ms_per_1000"] for r in rounds), 1),
        "rounds": rounds,
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "kube.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"Kubernetes source, {n} Services x {e} endpoints ({n * e} backends):")
    print(f"  synced after      {t_synced:.2f} s (all {n} in service list after {t_listed:.2f} s); "
          f"daemon CPU from its start to then {cpu_sync:.2f} s")
    print(f"  RSS               {rss_start:.1f} MiB at start, {rss_synced:.1f} MiB synced, "
          f"{rss_after:.1f} MiB after the events")
    applied = ", ".join("%.2f" % r["applied_s"] for r in rounds)
    print(f"  watch events      {res['cpu_ms_per_1000_events']} ms CPU per 1000 (median of "
          f"{len(rounds)}; {applied} s to apply {a.events})")


if __name__ == "__main__":
    main()
