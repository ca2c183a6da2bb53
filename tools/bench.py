#!/usr/bin/python3
"""make bench: h2steer against a direct connection, nginx, haproxy and nghttpx.

All in the same run, in front of the same three grpc-go backends, under the same loads, each
over ONE client connection:

- throughput: h2load, gRPC-shaped unary POSTs (a 5-byte gRPC prefix and a 100-byte message,
  content-type application/grpc, te: trailers), 16 streams in flight -> requests/s;
- latency: the Go gRPC peer client, 16 and 1 RPCs in flight on one channel -> p50/p90/p99 and
  the split over the backends (each should get 30-37 % through a balancer);
- cost of each balancer: CPU time of its process tree per 1000 RPCs (over the throughput runs),
  its RSS idle, after the runs, and with 1000 idle HTTP/2 client connections open.

Repetitions are interleaved across the targets, so drift hits all alike; the table has their
medians and the ratios to direct (one client straight to one backend). Every error (h2load
failed/errored requests, peer RPC errors or failed checks, a second connection) is counted and
printed, and makes the benchmark exit 1. --scale adds h2steer-versus-direct checks: RPCs in
flight, client connections, message sizes, streaming MB/s.

Output: the table on stdout, OUT/results.md, OUT/results.json (raw numbers), OUT/bench.png
(OUT: build/bench); --publish copies results.md and bench.png to tools/bench/.
"""
import argparse
import dataclasses
import os
import platform
import re
import resource
import shutil
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402
import bench_targets  # noqa: E402
import h2slab  # noqa: E402

TOOLS = os.path.dirname(os.path.abspath(__file__))
H2CONNS = os.path.join(TOOLS, "h2conns.py")
PUBLISH_DIR = os.path.join(TOOLS, "bench")
METHOD = "/h2steer.test.Echo/Unary"
MESSAGE = 100  # bytes of each unary request (and of its echo)
IN_FLIGHT = 16
SHARE_BAND = (0.30, 0.37)  # what each of the 3 backends should get through a balancer
RUN_TIMEOUT_S = 180  # bound on any single load run
HOLD_CONNS_S = 60  # bound on how long the idle-connection helper holds its connections


@dataclasses.dataclass(frozen=True)
class Counts:
    h2load: int  # requests of each throughput run
    unary16: int  # RPCs of each 16-in-flight latency run
    unary1: int  # RPCs of each 1-in-flight latency run
    warm: int  # requests of each warm-up load
    idle_conns: int  # idle client connections for the RSS reading
    scale_divisor: int  # --scale counts are SCALE_CASES' divided by this


DEFAULT_COUNTS = Counts(h2load=50000, unary16=20000, unary1=5000, warm=2000, idle_conns=1000,
                        scale_divisor=1)
QUICK_COUNTS = Counts(h2load=1000, unary16=300, unary1=100, warm=100, idle_conns=1000,
                      scale_divisor=50)


@dataclasses.dataclass(frozen=True)
class ScaleCase:
    label: str
    kind: str  # "unary" (peer), "h2load" or "sstream" (peer)
    n: int  # RPCs, requests or streamed messages
    size: int = MESSAGE  # bytes per message
    in_flight: int = IN_FLIGHT  # unary RPCs in flight, or h2load streams per connection
    conns: int = 1  # h2load client connections
    loops: int = 1  # h2steer's event loops (a second daemon when not 1)


SCALE_CASES = (
    ScaleCase("unary 100 B, 1 in flight", "unary", 5000, in_flight=1),
    ScaleCase("unary 100 B, 16 in flight", "unary", 20000),
    ScaleCase("unary 100 B, 256 in flight", "unary", 20000, in_flight=256),
    ScaleCase("unary 10 KB, 16 in flight", "unary", 10000, size=10 * 1024),
    ScaleCase("unary 1 MB, 16 in flight", "unary", 600, size=1 << 20),
    # The same 100 streams in flight either way: only the number of connections changes.
    ScaleCase("h2load 1 connection x 100 streams", "h2load", 50000, in_flight=100),
    ScaleCase("h2load 100 connections x 1 stream", "h2load", 50000, in_flight=1, conns=100),
    ScaleCase("h2load 1000 connections x 1 stream", "h2load", 50000, in_flight=1, conns=1000),
    # The same through a daemon with 2 event loops (setting loops): the kernel spreads the
    # 100 connections over both.
    ScaleCase("h2load 100 connections x 1 stream, 2 loops", "h2load", 50000, in_flight=1,
              conns=100, loops=2),
    # One server-streaming RPC: the bytes of its messages over its duration.
    ScaleCase("server stream, 64 KiB messages", "sstream", 8000, size=64 * 1024),
)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, help=f"h2load requests per run "
                    f"(default {DEFAULT_COUNTS.h2load})")
    ap.add_argument("-r", "--reps", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny counts and 1 repetition: checks that everything runs")
    ap.add_argument("--scale", action="store_true",
                    help="also h2steer vs direct by RPCs in flight, connections, message "
                    "sizes and streaming")
    ap.add_argument("--out", default=os.path.join(h2slab.BUILD, "bench"),
                    help="folder for results.md, results.json, bench.png (default build/bench)")
    ap.add_argument("--fastpath", action="store_true",
                    help="run h2steer with the experimental sk_msg fast path (fastpath=1)")
    ap.add_argument("--publish", action="store_true",
                    help=f"copy results.md and bench.png to {os.path.relpath(PUBLISH_DIR)}/")
    args = ap.parse_args()
    counts = QUICK_COUNTS if args.quick else DEFAULT_COUNTS
    if args.n:
        counts = dataclasses.replace(counts, h2load=args.n)
    args.counts = counts
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("make bench needs root: sudo make bench", file=sys.stderr)
        return 1
    raise_fd_limit()
    started = time.monotonic()
    lab = h2slab.Lab("bench")
    try:
        results = run(lab, args)
    except Exception:
        print(lab.logs(), file=sys.stderr)  # what the balancers and backends said
        raise
    finally:
        cleanup_problems = lab.close()
        if cleanup_problems:
            print(f"cleanup problems: {cleanup_problems}", file=sys.stderr)
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    report(results, args)
    return 0 if results["errors"] == 0 and not results["problems"] and not cleanup_problems else 1


def raise_fd_limit():
    """Every process the lab starts inherits this limit: as many files as allowed, enough for
    1000 idle connections through any balancer, whatever the shell's soft limit was."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(lab, args):
    """The comparison, then (--scale) the scale checks, on one set of backends and targets."""
    body = grpc_body(lab, MESSAGE)
    backends = lab.backends(3)
    targets = bench_targets.start_targets(lab, backends, args.fastpath)
    t0 = time.monotonic()
    summary, runs = compare(lab, targets, backends, body, args.reps, args.counts)
    comparison_s = time.monotonic() - t0
    scale, scale_s = None, None
    if args.scale:
        t1 = time.monotonic()
        by_name = {t.name: t for t in targets}
        h2steer = {1: by_name["h2steer"]}
        for loops in sorted({c.loops for c in SCALE_CASES} - {1}):
            h2steer[loops] = bench_targets.start_h2steer_loops(lab, [b.addr for b in backends],
                                                               loops)
        scale = scale_checks(lab, by_name["direct"], h2steer,
                             [by_name[n] for n in SCALE_PEERS], body, args.reps,
                             args.counts.scale_divisor)
        scale_s = time.monotonic() - t1
    checked = list(summary.values()) + (scale or [])
    meta = run_meta(args, backends, targets, comparison_s, scale_s)
    return {"meta": meta, "targets": summary, "runs": runs, "scale": scale,
            "errors": sum(c["errors"] for c in checked),
            "problems": [p for c in checked for p in c["problems"]],
            "peer_problems": [p for c in (scale or []) for p in c["peer_problems"]]}


def compare(lab, targets, backends, body, reps, counts):
    """Every target under every load, reps times, interleaved so that drift hits all alike;
    RSS before and after, and with idle connections last (they may leave memory behind).
    Returns the summary of each target and the raw runs."""
    rss_idle = {t.name: t.rss_kb() for t in targets}
    for t in targets:
        warm_up(lab, t, body, counts.warm)
    runs = {t.name: [] for t in targets}
    for rep in range(reps):
        for t in targets:
            progress(f"rep {rep + 1}/{reps}: {t.name}")
            runs[t.name].append(measure(lab, t, backends, body, counts))
    rss_after = {t.name: t.rss_kb() for t in targets}
    idle = {t.name: rss_with_idle_conns(lab, t, counts.idle_conns) for t in targets
            if t.name in bench_targets.BALANCERS}
    ids = [b.id for b in backends]
    summary = {t.name: summarize(t.name, runs[t.name], ids, rss_idle[t.name],
                                 rss_after[t.name], idle.get(t.name)) for t in targets}
    add_ratios(summary)
    return summary, runs


def progress(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def grpc_body(lab, size):
    """A file with one gRPC message of `size` bytes: uncompressed flag, length, payload."""
    path = os.path.join(lab.tmp, f"body-{size}.bin")
    with open(path, "wb") as f:
        f.write(b"\x00" + struct.pack(">I", size) + b"x" * size)
    return path


def warm_up(lab, target, body, n):
    """Connections, pools and caches in place before anything is measured."""
    h2load(lab, target, body, n)
    peer_unary(lab, target, n, IN_FLIGHT)


def measure(lab, target, backends, body, counts):
    """One repetition on one target: throughput (with the CPU time of the balancer and of the
    backends), then latency at 16 and at 1 RPC in flight."""
    cpu_before, be_before = target.cpu_ms(), backends_cpu_ms(backends)
    client_before = children_cpu_ms()
    throughput = h2load(lab, target, body, counts.h2load)
    client_after = children_cpu_ms()
    cpu_after, be_after = target.cpu_ms(), backends_cpu_ms(backends)
    cpu_per_1k = be_per_1k = client_per_1k = None
    if throughput["succeeded"]:
        per_1k = 1000 / throughput["succeeded"]
        be_per_1k = (be_after - be_before) * per_1k
        client_per_1k = (client_after - client_before) * per_1k
        if target.proc:
            cpu_per_1k = (cpu_after - cpu_before) * per_1k
    unary16 = peer_unary(lab, target, counts.unary16, IN_FLIGHT)
    cpu_before = target.cpu_ms()
    unary1 = peer_unary(lab, target, counts.unary1, 1)
    cpu_after = target.cpu_ms()
    cpu_per_1k_1 = None
    if target.proc and unary1.get("ok"):
        cpu_per_1k_1 = (cpu_after - cpu_before) * 1000 / unary1["ok"]
    return {"h2load": throughput, "cpu_ms_per_1k_rpcs": cpu_per_1k,
            "backends_cpu_ms_per_1k_rpcs": be_per_1k,
            "client_cpu_ms_per_1k_rpcs": client_per_1k,
            "cpu_ms_per_1k_rpcs_1": cpu_per_1k_1,
            "unary16": unary16, "unary1": unary1}


def children_cpu_ms():
    """CPU time of this process's children that have exited and been waited for: between two
    readings around one h2load run (the only child that ends meanwhile), h2load's own."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000


def backends_cpu_ms(backends):
    """CPU time of the backends together: what a target's spreading costs them (one grpc-go
    server with all 16 RPCs in flight batches better than three with a third each)."""
    return sum(bench_targets.tree_cpu_ms(b.proc.pid) for b in backends)


def h2load(lab, target, body, n, conns=1, streams=IN_FLIGHT):
    """n gRPC-shaped unary POSTs (body: a file from grpc_body) -> req/s, mean latency and the
    requests that did not succeed (failed: non-2xx; errored: reset or connection error)."""
    argv = ["h2load", "-n", str(n), "-c", str(conns), "-m", str(streams), "-d", body,
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://{target.addr}{METHOD}"]
    r = lab.run(argv, in_cgroup=target.in_cgroup, timeout=RUN_TIMEOUT_S)
    out = r.stdout
    rate = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                     r"(\d+) errored, (\d+) timeout", out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if not (rate and done and lat):
        raise h2slab.LabError(f"{target.name}: cannot parse h2load output:\n{out}\n{r.stderr}")
    succeeded = int(done.group(1))
    return {"requests": n, "rps": float(rate.group(1)), "mean_us": to_us(lat.group(3)),
            "succeeded": succeeded, "failed": int(done.group(2)),
            "errored": int(done.group(3)), "timeout": int(done.group(4)),
            "errors": n - succeeded, "problems": []}


def to_us(text):
    """h2load's durations ('512us', '1.20ms', '2.5s') in microseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(ns|us|ms|s)", text).groups()
    return float(value) * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}[unit]


def peer_unary(lab, target, n, in_flight, size=MESSAGE):
    """n unary RPCs from `in_flight` workers over one gRPC channel (the Go peer client)."""
    out = peer(lab, target, "unary", "-n", n, "-c", in_flight, "-size", size)
    out["errors"] = n - out.get("ok", 0)
    out["rps"] = out.get("ok", 0) / out["elapsed_s"] if out.get("elapsed_s") else 0.0
    out["mb_per_s"] = out["rps"] * size / 1e6  # each way: the server echoes the request
    return out


def peer_sstream(lab, target, count, size):
    """One server-streaming RPC of `count` messages of `size` bytes -> MB/s received."""
    out = peer(lab, target, "sstream", "-count", count, "-size", size)
    out["errors"] = 1 - out.get("ok", 0)
    received = out.get("received", 0) * size
    out["mb_per_s"] = received / 1e6 / out["elapsed_s"] if out.get("elapsed_s") else 0.0
    return out


def peer(lab, target, mode, *args):
    """The Go peer client's JSON; its failed checks, and any second TCP connection (the loads
    are about ONE connection), are listed in "problems"."""
    out = lab.client(target.addr, mode, *args, "-max-time", f"{RUN_TIMEOUT_S - 30}s",
                     in_cgroup=target.in_cgroup, timeout=RUN_TIMEOUT_S, check=False)
    out["problems"] = list(out.get("failures", []))
    if out.get("dials", 1) != 1:
        out["problems"].append(f"{out['dials']} TCP connections, not 1")
    return out


def rss_with_idle_conns(lab, target, n):
    """The balancer's RSS while n idle HTTP/2 client connections (preface and SETTINGS done)
    are open to it, held by tools/h2conns.py (in the lab cgroup for h2steer)."""
    helper = lab.spawn(f"h2conns-{target.name}",
                       [h2slab.PYTHON, H2CONNS, target.addr, "-n", str(n),
                        "--hold-s", str(HOLD_CONNS_S)],
                       cgroup=target.in_cgroup if isinstance(target.in_cgroup, str)
                       else lab.cgroup if target.in_cgroup else None)
    try:
        helper.wait_for("OPEN ", timeout=40)
        opened = int(re.search(r"OPEN (\d+)/", helper.text()).group(1))
        return {"conns": n, "opened": opened, "rss_kb": target.rss_kb()}
    finally:
        helper.stop()


def summarize(name, runs, backend_ids, rss_idle, rss_after, idle):
    """Medians over the repetitions, costs, split, errors and problems of one target."""
    def med(load, field):
        return median([r[load].get(field) for r in runs])

    loads = [r[load] for r in runs for load in ("h2load", "unary16", "unary1")]
    problems = [f"{name}: {p}" for load in loads for p in load["problems"]]
    if idle and idle["opened"] < idle["conns"]:
        problems.append(f"{name}: only {idle['opened']} of {idle['conns']} idle connections "
                        "opened")
    split = backend_split([r[load] for r in runs for load in ("unary16", "unary1")],
                          backend_ids)
    return {"rps": med("h2load", "rps"), "h2load_mean_us": med("h2load", "mean_us"),
            "p50_us_16": med("unary16", "p50_us"), "p90_us_16": med("unary16", "p90_us"),
            "p99_us_16": med("unary16", "p99_us"), "rps_16": med("unary16", "rps"),
            "p50_us_1": med("unary1", "p50_us"), "p99_us_1": med("unary1", "p99_us"),
            "cpu_ms_per_1k_rpcs": median([r["cpu_ms_per_1k_rpcs"] for r in runs]),
            "backends_cpu_ms_per_1k_rpcs": median([r["backends_cpu_ms_per_1k_rpcs"]
                                                   for r in runs]),
            "client_cpu_ms_per_1k_rpcs": median([r["client_cpu_ms_per_1k_rpcs"]
                                                 for r in runs]),
            "cpu_ms_per_1k_rpcs_1": median([r["cpu_ms_per_1k_rpcs_1"] for r in runs]),
            "rss_idle_kb": rss_idle, "rss_after_kb": rss_after,
            "rss_idle_conns_kb": idle["rss_kb"] if idle else None,
            "idle_conns_opened": idle["opened"] if idle else None,
            "split": split,
            "split_even": name not in bench_targets.BALANCERS or bool(split) and all(
                SHARE_BAND[0] <= share <= SHARE_BAND[1] for share in split.values()),
            "errors": sum(load["errors"] for load in loads), "problems": problems}


def median(values):
    """Median of the values that are not None (None if there are none)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def backend_split(peer_runs, backend_ids):
    """Share of the RPCs each backend served, over the peer runs (0 for one that served
    none)."""
    by_backend = {be: 0 for be in backend_ids}
    for r in peer_runs:
        for be, count in r.get("by_backend", {}).items():
            by_backend[be] = by_backend.get(be, 0) + count
    total = sum(by_backend.values())
    return {be: count / total for be, count in sorted(by_backend.items())} if total else {}


RATIOS = {"rps_ratio": "rps", "p50_16_ratio": "p50_us_16", "p99_16_ratio": "p99_us_16",
          "p50_1_ratio": "p50_us_1"}


def add_ratios(summary):
    """Each target's numbers divided by direct's; and what its throughput run asked of the
    machine's CPUs (add_cpu_budget)."""
    base = summary["direct"]
    for s in summary.values():
        for ratio, field in RATIOS.items():
            s[ratio] = s[field] / base[field] if s[field] and base[field] else None
        add_cpu_budget(s, base["rps"])


def add_cpu_budget(s, direct_rps):
    """cpus_busy: CPUs the throughput run kept busy (client, backends and balancer, µs per
    request, times requests per second). ceiling_ratio: the throughput ratio to direct that a
    balancer costing no CPU at all could reach at best on these CPUs, given what the client
    and the backends spent per request behind this target — all CPUs busy with them alone."""
    parts = (s["client_cpu_ms_per_1k_rpcs"], s["backends_cpu_ms_per_1k_rpcs"])
    s["cpus_busy"] = s["ceiling_ratio"] = None
    if None in parts or not s["rps"]:
        return
    us_per_request = sum(parts) + (s["cpu_ms_per_1k_rpcs"] or 0)  # ms per 1k = µs per 1
    s["cpus_busy"] = us_per_request * s["rps"] / 1e6
    if direct_rps and sum(parts):
        s["ceiling_ratio"] = os.cpu_count() * 1e6 / sum(parts) / direct_rps


# The L7 balancers every scale case also goes through, so each claim is side by side.
SCALE_PEERS = ("nghttpx", "haproxy", "nginx")


def scale_checks(lab, direct, h2steer, peers, body, reps, divisor):
    """Each SCALE_CASE through h2steer (h2steer[loops]: the daemon with that many event loops),
    the peers (nghttpx, haproxy, nginx: one configuration whatever the case) and direct
    (interleaved, reps times): medians."""
    cases = []
    for case in SCALE_CASES:
        n = max(case.n // divisor, case.conns)
        order = [("direct", direct), ("h2steer", h2steer[case.loops])] + \
            [(t.name, t) for t in peers]
        runs = {name: [] for name, _ in order}
        for rep in range(reps):
            for name, t in order:
                progress(f"scale {rep + 1}/{reps}: {case.label}: {t.name}")
                cpu0 = t.cpu_ms()
                r = scale_run(lab, t, case, n, body)
                # The balancer's CPU per 1000 requests (direct has none).
                r["cpu_per_1k"] = (t.cpu_ms() - cpu0) * 1000 / n if cpu0 is not None else None
                runs[name].append(r)
        cases.append(summarize_scale(case, n, runs))
    return cases


def scale_run(lab, target, case, n, body):
    if case.kind == "unary":
        return peer_unary(lab, target, n, case.in_flight, case.size)
    if case.kind == "h2load":  # 100-byte messages (body)
        return h2load(lab, target, body, n, case.conns, case.in_flight)
    return peer_sstream(lab, target, n, case.size)


# What each kind of scale case reports: (name in the table, field of its runs).
SCALE_METRICS = {
    "unary": (("RPC/s", "rps"), ("p50 µs", "p50_us"), ("p99 µs", "p99_us"),
              ("MB/s each way", "mb_per_s")),
    "h2load": (("req/s", "rps"), ("mean µs", "mean_us"),
               ("balancer CPU ms / 1k requests", "cpu_per_1k")),
    "sstream": (("MB/s", "mb_per_s"),),
}


def summarize_scale(case, n, runs):
    metrics = []
    for label, field in SCALE_METRICS[case.kind]:
        if field == "mb_per_s" and case.size < 10 * 1024:
            continue  # small messages: RPC/s says it
        med = {name: median([r.get(field) for r in rs]) for name, rs in runs.items()}
        ratio = med["h2steer"] / med["direct"] if med["h2steer"] and med["direct"] else None
        metrics.append({"metric": label, **med, "ratio": ratio})
    ours = ("direct", "h2steer")
    # What h2steer (or the rig) got wrong fails the benchmark; what another balancer fails
    # at is a finding about it (haproxy 2.6 stalls 16 concurrent 1 MB uploads until the
    # deadline), reported beside its numbers.
    return {**dataclasses.asdict(case), "n": n, "metrics": metrics, "runs": runs,
            "errors": sum(r["errors"] for name in ours for r in runs[name]),
            "problems": [f"{case.label}, {name}: {p}" for name in ours
                         for r in runs[name] for p in r["problems"]],
            "peer_problems": [f"{case.label}, {name}: {p}" for name, rs in runs.items()
                              if name not in ours for r in rs for p in r["problems"]]}


def utc_now():
    """The time a report is stamped with."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())


def run_meta(args, backends, targets, comparison_s, scale_s):
    return {"date_utc": utc_now(),
            "kernel": platform.release(), "cpu": cpu_model(), "cpus": os.cpu_count(),
            "reps": args.reps, "quick": args.quick, "counts": dataclasses.asdict(args.counts),
            "message_bytes": MESSAGE, "in_flight": IN_FLIGHT,
            "backends": {b.id: b.addr for b in backends},
            "targets": {t.name: t.addr for t in targets},
            "versions": bench_targets.versions(),
            "comparison_s": round(comparison_s, 1),
            "scale_s": round(scale_s, 1) if scale_s is not None else None}


def cpu_model():
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), platform.machine())


def report(results, args):
    """The table on stdout; results.md, results.json and bench.png in --out; --publish."""
    print(bench_report.text(results))
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "results.md")
    png = os.path.join(args.out, "bench.png")
    bench_report.write_markdown(results, md)
    bench_report.write_json(results, os.path.join(args.out, "results.json"))
    bench_report.plot(results, png)
    print(f"\nwritten: {md}, {os.path.join(args.out, 'results.json')}, {png}")
    if args.publish:
        os.makedirs(PUBLISH_DIR, exist_ok=True)
        for path in (md, png):
            shutil.copy(path, PUBLISH_DIR)
        print(f"published to {PUBLISH_DIR}/")


if __name__ == "__main__":
    sys.exit(main())
