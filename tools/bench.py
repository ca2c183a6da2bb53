#!/usr/bin/python3
"""make bench: first numbers. h2load sends gRPC-shaped unary POSTs (a 5-byte gRPC prefix and a
100-byte message, content-type application/grpc, te: trailers) over ONE connection with 16
streams in flight, directly to one grpc-go backend and through h2steer to three, in the same
run. Prints requests/s and mean latency, medians of the repetitions, and the ratios.
"""
import argparse
import os
import re
import statistics
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2slab  # noqa: E402

PATH = "/h2steer.test.Echo/Unary"


def h2load(lab, target, body, n, streams, in_cgroup):
    argv = ["h2load", "-n", str(n), "-c", "1", "-m", str(streams), "-d", body,
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://{target}{PATH}"]
    r = lab.run(argv, in_cgroup=in_cgroup, timeout=300)
    out = r.stdout
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                     out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if not (m and done and lat):
        raise h2slab.LabError(f"cannot parse h2load output:\n{out}\n{r.stderr}")
    return {"rps": float(m.group(1)), "succeeded": int(done.group(2)),
            "failed": int(done.group(3)), "mean_us": to_us(lat.group(3))}


def to_us(text):
    v = float(re.match(r"[\d.]+", text).group(0))
    return v * 1000 if text.endswith("ms") else v / 1000 if text.endswith("ns") else \
        v * 1e6 if text.endswith("s") and not text.endswith("us") else v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50000, help="requests per run (default 50000)")
    ap.add_argument("-r", "--reps", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("-m", "--streams", type=int, default=16, help="streams in flight")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("make bench needs root: sudo make bench", file=sys.stderr)
        return 1
    lab = h2slab.Lab("bench")
    try:
        body = os.path.join(lab.tmp, "body.bin")
        with open(body, "wb") as f:
            f.write(b"\x00" + struct.pack(">I", 100) + b"x" * 100)
        bes = lab.backends(3)
        vip = lab.vip()
        lab.daemon(services={vip: [b.addr for b in bes]})
        h2load(lab, vip, body, 2000, args.streams, True)  # warm-up: connections, JIT-free paths
        h2load(lab, bes[0].addr, body, 2000, args.streams, False)
        runs = {"direct": [], "h2steer": []}
        for _ in range(args.reps):  # interleaved, so drift hits both alike
            runs["direct"].append(h2load(lab, bes[0].addr, body, args.n, args.streams, False))
            runs["h2steer"].append(h2load(lab, vip, body, args.n, args.streams, True))
        med = {k: {f: statistics.median(r[f] for r in v) for f in ("rps", "mean_us")}
               for k, v in runs.items()}
        failed = sum(r["failed"] for v in runs.values() for r in v)
        print(f"h2load: {args.n} gRPC-shaped unary POSTs (100 B) per run, 1 connection, "
              f"{args.streams} streams; median of {args.reps} runs")
        print(f"{'target':<28} {'req/s':>10} {'mean latency':>14} {'req/s ratio':>12} "
              f"{'latency ratio':>14}")
        for name, label in (("direct", "direct (1 grpc-go backend)"),
                            ("h2steer", "h2steer (3 backends)")):
            m = med[name]
            print(f"{label:<28} {m['rps']:>10.0f} {m['mean_us']:>11.0f} us "
                  f"{m['rps'] / med['direct']['rps']:>12.2f} "
                  f"{m['mean_us'] / med['direct']['mean_us']:>14.2f}")
        split = {b.id: b.stats(lab)["rpcs"] for b in bes}
        print(f"split over backends (all runs, incl. direct ones to be1): {split}")
        print(f"failed requests: {failed}")
        return 0 if failed == 0 else 1
    finally:
        problems = lab.close()
        if problems:
            print(f"cleanup problems: {problems}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
