#!/usr/bin/python3
"""make profile: where h2steerd's time goes, in numbers any run of this command reproduces.

The release daemon in front of three grpc-go backends (the bench's set-up), profiled three ways:

1. cost per request under three loads (perf stat on the daemon): its CPU time, system calls and
   context switches per request, how much of a CPU it kept busy, and how many of the machine's
   CPUs were busy meanwhile (/proc/stat) — the bench's load (h2load, one connection, 16
   streams), many connections (h2load, 100 connections x 1 stream) and one RPC at a time
   (the Go gRPC client);
2. where its CPU time goes under the bench's load (perf record): kernel, nghttp2, libc and
   h2steerd's own code, and the hottest symbols;
3. user-space instructions per RPC (valgrind --tool=callgrind): two daemons under callgrind, one
   serving N RPCs and one 3N; the difference over 2N RPCs is the per-RPC count, start-up and
   BPF loading cancel out. Split by library and by function.

Output: the tables on stdout and OUT/profile.md (OUT: build/profile); --publish copies it to
tools/bench/profile.md. Needs root (it loads the daemon's BPF programs), perf and valgrind.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the bench's loads, so both measure the same thing)
import bench_report  # noqa: E402
import bench_targets  # noqa: E402
import h2slab  # noqa: E402

PUBLISH_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench")
TOP_SYMBOLS = 15
PERF_TIMEOUT_S = 30


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50000, help="h2load requests per load (50000)")
    ap.add_argument("--rpcs", type=int, default=3000,
                    help="RPCs of the smaller callgrind run (the larger: 3x)")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    ap.add_argument("--out", default=os.path.join(h2slab.BUILD, "profile"))
    ap.add_argument("--publish", action="store_true",
                    help=f"copy profile.md to {os.path.relpath(PUBLISH_DIR)}/")
    args = ap.parse_args()
    if args.quick:
        args.n, args.rpcs = 2000, 200
    return args


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("make profile needs root: sudo make profile", file=sys.stderr)
        return 1
    for tool in ("perf", "valgrind"):
        if not shutil.which(tool):
            print(f"make profile needs {tool}: sudo make deps", file=sys.stderr)
            return 1
    lab = h2slab.Lab("profile")
    try:
        body = bench.grpc_body(lab, bench.MESSAGE)
        backends = lab.backends(3)
        addrs = [b.addr for b in backends]
        costs, shares, symbols = perf_profile(lab, addrs, body, args.n)
        instructions = callgrind_profile(lab, addrs, args.rpcs)
    except Exception:
        print(lab.logs(), file=sys.stderr)
        raise
    finally:
        problems = lab.close()
        if problems:
            print(f"cleanup problems: {problems}", file=sys.stderr)
    text = markdown(args, costs, shares, symbols, instructions)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "profile.md")
    with open(path, "w") as f:
        f.write(text)
    print(f"written: {path}")
    if args.publish:
        shutil.copy(path, PUBLISH_DIR)
        print(f"published to {PUBLISH_DIR}/")
    return 1 if problems else 0


def progress(text):
    print(f"profile: {text}", file=sys.stderr, flush=True)


def start_daemon(lab, addrs, wrap=()):
    vip = lab.vip()
    daemon = lab.daemon(services={vip: addrs}, extra=("--log-level", "info"), wrap=wrap,
                        wait=False)
    daemon.proc.wait_for(" ready: ", timeout=120)
    return daemon, bench_targets.Target("h2steer", vip, daemon.proc, in_cgroup=True)


# ---- 1 and 2: perf ----

LOADS = (
    # label, how: ("h2load", connections, streams) or ("unary", in flight)
    ("h2load, 1 connection x 16 streams (the bench's load)", ("h2load", 1, 16)),
    ("h2load, 100 connections x 1 stream", ("h2load", 100, 1)),
    ("Go gRPC client, 1 RPC in flight", ("unary", 1)),
)


def perf_profile(lab, addrs, body, n):
    daemon, target = start_daemon(lab, addrs)
    bench.warm_up(lab, target, body, 2000)
    costs = []
    for label, how in LOADS:
        progress(f"perf stat: {label}")
        requests = n if how[0] == "h2load" else max(n // 10, 100)
        costs.append(perf_stat(lab, target, daemon.proc.pid, label, how, requests, body))
    progress("perf record: h2load, 1 connection x 16 streams")
    shares, symbols = perf_record(lab, target, daemon.proc.pid, body, n)
    daemon.stop()
    return costs, shares, symbols


def run_load(lab, target, how, requests, body):
    """One load; the number of requests that succeeded and its rate."""
    if how[0] == "h2load":
        r = bench.h2load(lab, target, body, requests, conns=how[1], streams=how[2])
        done = r["succeeded"]
    else:
        r = bench.peer_unary(lab, target, requests, how[1])
        done = r.get("ok", 0)
    if r["errors"] or r["problems"]:
        raise h2slab.LabError(f"{target.name}: {r['errors']} errors, {r['problems']}")
    return done, r["rps"]


def perf_stat(lab, target, pid, label, how, requests, body):
    out = os.path.join(lab.tmp, "perf-stat.csv")
    stat = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e",
                             "task-clock,context-switches,raw_syscalls:sys_enter",
                             "-p", str(pid)])
    time.sleep(0.3)  # attached before the load starts
    busy0, t0 = cpus_busy_ticks(), time.monotonic()
    done, rps = run_load(lab, target, how, requests, body)
    busy1, wall = cpus_busy_ticks(), time.monotonic() - t0
    stop(stat)
    counters = {}
    with open(out) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[0] and not line.startswith("#"):
                counters[fields[2]] = float(fields[0])
    task_ms = counters["task-clock"]
    return {"load": label, "requests": done, "rps": rps,
            "cpu_us": task_ms * 1000 / done,
            "syscalls": counters["raw_syscalls:sys_enter"] / done,
            "ctx_switches": counters["context-switches"] / done,
            # task-clock counts from attach to detach; the load is most of that time
            "daemon_cpus": task_ms / 1000 / wall,
            "machine_cpus": (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / wall}


def cpus_busy_ticks():
    """Clock ticks the machine's CPUs spent not idle (all CPUs together), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=PERF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def perf_record(lab, target, pid, body, n):
    """Share of the daemon's samples per object (kernel, libraries, h2steerd) and its hottest
    symbols, under the bench's load."""
    data = os.path.join(lab.tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-o", data, "-p", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    run_load(lab, target, ("h2load", 1, 16), n, body)
    stop(rec)
    by_dso = perf_report(data, "dso")
    by_sym = perf_report(data, "dso,sym")
    shares = collections.Counter()
    for (dso,), pct in by_dso:
        shares[object_group(dso)] += pct
    return shares.most_common(), by_sym[:TOP_SYMBOLS]


def perf_report(data, sort):
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-q",
                        "--sort", sort, "--percent-limit", "0.01"],
                       capture_output=True, text=True, timeout=120, check=True)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.*)$", line)
        if m:
            rest = re.split(r"\s{2,}", m.group(2).strip())
            rows.append((tuple(rest), float(m.group(1))))
    return rows


def object_group(name):
    """A shared object or binary -> the name the tables use."""
    base = os.path.basename(name.strip("[]"))
    for prefix, group in (("kernel", "kernel"), ("libnghttp2", "libnghttp2"),
                          ("libc.", "libc"), ("libc-", "libc"), ("h2steerd", "h2steerd"),
                          ("libm.", "libm"), ("vdso", "vdso"), ("ld-linux", "ld.so")):
        if base.startswith(prefix) or prefix in name:
            return group
    return base or "?"


# ---- 3: callgrind ----

def callgrind_profile(lab, addrs, rpcs):
    """Self instructions per RPC, by object and by function: (total, by_object, by_function)."""
    counts = {}
    for n in (rpcs, 3 * rpcs):
        progress(f"callgrind: {n} RPCs")
        out = os.path.join(lab.tmp, f"callgrind-{n}.out")
        daemon, target = start_daemon(
            lab, addrs, wrap=("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"))
        done, _ = run_load(lab, target, ("unary", bench.IN_FLIGHT), n, None)
        daemon.stop(timeout=120)
        counts[n] = (done, parse_callgrind(out))
    (n1, small), (n2, large) = counts[rpcs], counts[3 * rpcs]
    per_fn = {k: (large.get(k, 0) - small.get(k, 0)) / (n2 - n1) for k in set(small) | set(large)}
    by_object = collections.Counter()
    for (obj, _), ir in per_fn.items():
        by_object[object_group(obj)] += ir
    top = sorted(per_fn.items(), key=lambda kv: -kv[1])[:TOP_SYMBOLS]
    return sum(per_fn.values()), by_object.most_common(), top


def parse_callgrind(path):
    """Self Ir per (object, function) of a callgrind output file (its compressed names
    resolved; the cost line after a calls= line is the callee's inclusive cost: skipped)."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
               "cfl": "fl", "fn": "fn", "cfn": "fn"}
    cost = collections.Counter()
    obj = fn = "?"
    skip_next = False
    with open(path) as f:
        for line in f:
            if line[0].isdigit() or line[0] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) > 1:
                    cost[(obj, fn)] += int(parts[1])
                continue
            key, sep, value = line.rstrip("\n").partition("=")
            if not sep or key not in kind_of and key != "calls":
                continue
            if key == "calls":
                skip_next = True
                continue
            m = re.match(r"\((\d+)\)(?: (.*))?$", value)
            table = names[kind_of[key]]
            if m:
                if m.group(2) is not None:
                    table[m.group(1)] = m.group(2)
                value = table.get(m.group(1), "?")
            if key == "ob":
                obj = value
            elif key == "fn":
                fn = value
    return cost


# ---- report ----

def markdown(args, costs, shares, symbols, instructions):
    total, by_object, top = instructions
    n = bench_report.number
    lines = [
        "# h2steer profile", "",
        f"`make profile` on {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}: the release "
        "daemon in front of 3 grpc-go backends, 100-byte unary RPCs, "
        f"{os.cpu_count()} CPUs ({bench.cpu_model()}), kernel {os.uname().release}, "
        f"h2steer {bench_targets.versions()['h2steer']}"
        + (" (--quick: tiny counts, not a measurement)" if args.quick else "") + ".", "",
        "## Cost per request (perf stat on the daemon)", "",
        bench_report.markdown_table(
            ["load", "req/s", "daemon CPU µs/req", "syscalls/req", "context switches/req",
             "daemon CPUs busy", "machine CPUs busy"],
            [[c["load"], n(c["rps"]), f"{c['cpu_us']:.1f}", f"{c['syscalls']:.2f}",
              f"{c['ctx_switches']:.2f}", f"{c['daemon_cpus']:.2f}",
              f"{c['machine_cpus']:.2f} of {os.cpu_count()}"] for c in costs]), "",
        "daemon CPUs busy: the daemon's CPU time over the load's wall time (one event loop: at "
        "most 1.00); machine CPUs busy: every process's, from /proc/stat — load generator, "
        "backends and daemon together.", "",
        f"## Where the daemon's CPU time goes (perf record, {n(args.n)} requests of the "
        "bench's load)", "",
        bench_report.markdown_table(["object", "share of samples"],
                                    [[obj, f"{pct:.1f} %"] for obj, pct in shares]), "",
        bench_report.markdown_table(["symbol", "object", "share"],
                                    [[re.sub(r"^\[[.k]\]\s+", "", sym[-1]),
                                      object_group(sym[0]), f"{pct:.1f} %"]
                                     for sym, pct in symbols]), "",
        f"## User-space instructions per RPC (callgrind, {n(args.rpcs)} vs "
        f"{n(3 * args.rpcs)} RPCs, Go client, 16 in flight)", "",
        f"{n(total)} instructions per RPC in the daemon's process (the kernel's work is not "
        "in it).", "",
        bench_report.markdown_table(["object", "instructions/RPC", "share"],
                                    [[obj, n(ir), f"{ir / total * 100:.1f} %"]
                                     for obj, ir in by_object if ir >= 1]), "",
        bench_report.markdown_table(["function", "object", "instructions/RPC"],
                                    [[fn, object_group(obj), n(ir)] for (obj, fn), ir in top]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
