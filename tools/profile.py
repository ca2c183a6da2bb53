#!/usr/bin/python3
"""make profile: where h2steerd's time goes, in numbers any run of this command reproduces.

The release daemon in front of three grpc-go backends (the bench's set-up), profiled three ways:

1. cost per request (perf stat on the daemon, its events enabled once the load starts): its
   CPU time, system calls and context switches per request, how much of a CPU it kept busy,
   and how many of the machine's CPUs worked meanwhile (/proc/stat, steal left out) — under
   the bench's load (h2load, one connection, 16 streams), many connections (h2load, 100
   connections x 1 stream), one RPC at a time (the Go gRPC client), and one at a time with
   busy polling on (a second daemon). perf stat's own tracepoint counting adds to the
   daemon's time here: `make bench` (no perf attached) has the cleaner CPU figure;
2. where its CPU time goes under the bench's load (perf record -g): kernel, nghttp2, libc and
   h2steerd's own code, the hottest symbols, and the inclusive share of a few kernel paths
   (sending, waking the reader, receiving, waiting, switching);
3. user-space instructions per RPC (valgrind --tool=callgrind): two daemons under callgrind, one
   serving N RPCs and one 3N; the difference over 2N RPCs is the per-RPC count: start-up and
   BPF loading cancel out; work that runs by the clock (health checks, timers) does not, but
   it is a few calls per second against thousands of RPCs. Split by library and by function;
4. what a pick costs as a service grows (callgrind): instructions per call of
   h2s_registry_pick, everything it calls included, for a service of 3 members and of
   --pick-members members (one grpc-go server behind that many loopback addresses), per
   algorithm, with every member in use and with the default subset;
5. what this machine charges for the two things every hop is made of, without the daemon: a
   system call (getppid() in a loop) and a wake-up (a byte sent back and forth through two
   pipes between two processes: each round trip is 4 system calls and 2 wake-ups of a
   process asleep in read()).

Output: the tables on stdout and OUT/profile.md (OUT: build/profile); --publish copies it to
tools/bench/profile.md. Needs root (it loads the daemon's BPF programs), perf and valgrind.
"""
import argparse
import collections
import errno
import os
import re
import select
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

PUBLISH_DIR = bench.PUBLISH_DIR
TOP_SYMBOLS = 15
PERF_TIMEOUT_S = 30


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50000, help="h2load requests per load (50000)")
    ap.add_argument("--rpcs", type=int, default=3000,
                    help="RPCs of the smaller callgrind run (the larger: 3x)")
    ap.add_argument("--pick-members", type=int, default=1000,
                    help="members of the large service in the pick-cost runs (1000)")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    ap.add_argument("--out", default=os.path.join(h2slab.BUILD, "profile"))
    ap.add_argument("--publish", action="store_true",
                    help=f"copy profile.md to {os.path.relpath(PUBLISH_DIR)}/")
    args = ap.parse_args()
    if args.quick:
        args.n, args.rpcs, args.pick_members = 2000, 200, 50
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
        perf = perf_profile(lab, addrs, body, args.n)
        instructions = callgrind_profile(lab, addrs, args.rpcs)
        picks = pick_profile(lab, addrs, args.pick_members, args.rpcs)
        machine = machine_costs(args.quick)
    except Exception:
        print(lab.logs(), file=sys.stderr)
        raise
    finally:
        problems = lab.close()
        if problems:
            print(f"cleanup problems: {problems}", file=sys.stderr)
    text = markdown(args, *perf, instructions, picks, machine)
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


def start_daemon(lab, addrs, wrap=(), settings=(), service=None):
    """A daemon (under `wrap`, with --set `settings`) for a fresh service of addrs (with the
    service keys of `service`, h2slab.services_yaml's)."""
    vip = lab.vip()
    extra = ("--log-level", "info") + tuple(a for kv in settings for a in ("--set", kv))
    spec = dict(service or {}, backends=addrs)
    daemon = lab.daemon(services={vip: spec}, extra=extra, wrap=wrap, wait=False)
    daemon.proc.wait_for(" ready: ", timeout=120)
    return daemon, bench_targets.Target("h2steer", vip, daemon.proc, in_cgroup=True)


# ---- 1 and 2: perf ----

BUSY_POLL = bench_targets.BUSY_POLL_SETTINGS
LOADS = (
    # label, daemon settings, how: ("h2load", connections, streams) or ("unary", in flight)
    ("h2load, 1 connection x 16 streams (the bench's load)", (), ("h2load", 1, 16)),
    ("h2load, 100 connections x 1 stream", (), ("h2load", 100, 1)),
    ("Go gRPC client, 1 RPC in flight", (), ("unary", 1)),
    (f"Go gRPC client, 1 RPC in flight, busy polling ({BUSY_POLL[0]})", BUSY_POLL,
     ("unary", 1)),
)
# Kernel functions whose inclusive share of the daemon's samples says where its kernel time
# goes (perf report --children).
KERNEL_PATHS = (
    ("tcp_sendmsg", "sending (loopback TCP: the receiver's side runs here too)"),
    ("sock_def_readable", "waking the process that reads what was sent"),
    ("tcp_recvmsg", "receiving"),
    ("do_epoll_wait", "waiting for events"),
    ("schedule", "switching away (sleeping) and back"),
)


def perf_profile(lab, addrs, body, n):
    """perf stat under each load (a daemon per set of settings), then perf record under the
    bench's load: (costs, shares by object, top symbols, kernel paths)."""
    costs, recorded = [], None
    for settings in dict.fromkeys(load[1] for load in LOADS):
        daemon, target = start_daemon(lab, addrs, settings=settings)
        bench.warm_up(lab, target, body, 2000)
        for label, _, how in (load for load in LOADS if load[1] == settings):
            progress(f"perf stat: {label}")
            requests = n if how[0] == "h2load" else max(n // 10, 100)
            costs.append(perf_stat(lab, target, daemon.proc.pid, label, how, requests, body))
        if not settings:
            progress("perf record: h2load, 1 connection x 16 streams")
            recorded = perf_record(lab, target, daemon.proc.pid, body, n)
        daemon.stop()
    costs.sort(key=lambda c: [load[0] for load in LOADS].index(c["load"]))
    return (costs,) + recorded


class Perf:
    """perf (stat or record) attached to a process, its events enabled only once enable()
    returns (perf acknowledged over its control FIFO), so a load started after it is counted
    whole."""

    def __init__(self, lab, argv, pid):
        self.ctl = os.path.join(lab.tmp, f"perf-ctl-{lab.seq()}")
        self.ack = self.ctl + ".ack"
        os.mkfifo(self.ctl)
        os.mkfifo(self.ack)
        self.proc = subprocess.Popen(["perf"] + argv + ["-D", "-1", "--control",
                                                        f"fifo:{self.ctl},{self.ack}",
                                                        "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)

    def enable(self):
        deadline = time.monotonic() + PERF_TIMEOUT_S
        ack = os.open(self.ack, os.O_RDONLY | os.O_NONBLOCK)
        try:
            ctl = self._open_ctl(deadline)
            try:
                os.write(ctl, b"enable\n")
            finally:
                os.close(ctl)
            got = b""
            while b"ack" not in got:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    why = (self.proc.stderr.read() if self.proc.poll() is not None
                           else "no acknowledgement in time")
                    raise h2slab.LabError(f"perf did not enable its events: {why}")
                if select.select([ack], [], [], 0.1)[0]:
                    chunk = os.read(ack, 64)
                    got += chunk
                    if not chunk:
                        time.sleep(0.01)  # no writer yet: EOF
        finally:
            os.close(ack)

    def _open_ctl(self, deadline):
        """The control FIFO's write end, once perf has opened its read end."""
        while True:
            try:
                return os.open(self.ctl, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO or time.monotonic() > deadline or \
                        self.proc.poll() is not None:
                    raise
                time.sleep(0.01)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=PERF_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def perf_stat(lab, target, pid, label, how, requests, body):
    out = os.path.join(lab.tmp, f"perf-stat-{lab.seq()}.csv")
    stat = Perf(lab, ["stat", "-x", ",", "-o", out, "-e",
                      "task-clock,context-switches,raw_syscalls:sys_enter"], pid)
    stat.enable()
    ticks0, switches0, t0 = cpu_ticks(), ctxt_switches(pid), time.monotonic()
    done, rps = run_load(lab, target, how, requests, body)
    ticks1, switches1, wall = cpu_ticks(), ctxt_switches(pid), time.monotonic() - t0
    tick_s = bench_targets.CLK_TCK * wall
    stat.stop()
    counters = {}
    with open(out) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and re.fullmatch(r"[\d.]+", fields[0]):
                counters[fields[2]] = float(fields[0])
    task_ms = counters["task-clock"]
    return {"load": label, "requests": done, "rps": rps,
            "cpu_us": task_ms * 1000 / done,
            "syscalls": counters["raw_syscalls:sys_enter"] / done,
            "ctx_switches": counters["context-switches"] / done,
            "voluntary": (switches1[0] - switches0[0]) / done,
            "involuntary": (switches1[1] - switches0[1]) / done,
            # counted from enable() to stop(): the load is nearly all of that time
            "daemon_cpus": task_ms / 1000 / wall,
            "machine_cpus": (ticks1[0] - ticks0[0]) / tick_s,
            "stolen_cpus": (ticks1[1] - ticks0[1]) / tick_s}


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


def ctxt_switches(pid):
    """(voluntary, involuntary) context switches of the process so far: it went to sleep, or
    it was preempted."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    return (int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))


def cpu_ticks():
    """Clock ticks of the machine's CPUs, all together, from /proc/stat: (working — user, nice,
    system, irq, softirq; stolen — the hypervisor ran something else while a CPU wanted to
    run)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(v) for v in f.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def perf_record(lab, target, pid, body, n):
    """Under the bench's load: share of the daemon's samples per object (kernel, libraries,
    h2steerd), its hottest symbols, and the inclusive share of KERNEL_PATHS."""
    data = os.path.join(lab.tmp, "perf.data")
    rec = Perf(lab, ["record", "-q", "-g", "-o", data], pid)
    rec.enable()
    run_load(lab, target, ("h2load", 1, 16), n, body)
    rec.stop()
    by_dso = perf_report(data, "dso")
    by_sym = perf_report(data, "dso,sym")
    shares = collections.Counter()
    for (dso,), pct in by_dso:
        shares[object_group(dso)] += pct
    inclusive = {sym[-1]: pct for sym, pct in perf_report(data, "sym", children=True)}
    paths = [(fn, what, inclusive.get(f"[k] {fn}", 0.0)) for fn, what in KERNEL_PATHS]
    return shares.most_common(), by_sym[:TOP_SYMBOLS], paths


def perf_report(data, sort, children=False):
    """[(columns of the sort key, percent)]: self time, or with children=True time including
    callees (the first of perf's two percentages)."""
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-q", "-g", "none",
                        "--children" if children else "--no-children",
                        "--sort", sort, "--percent-limit", "0.01"],
                       capture_output=True, text=True, timeout=300, check=True)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(?:[\d.]+%\s+)?(.*)$", line)
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
        if base.startswith(prefix):
            return group
    return base or "?"


# ---- 5: the machine ----

def machine_costs(quick):
    """{"syscall_us", "round_trip_us", "wakeup_us"}: see the module's docstring (5)."""
    progress("the machine: system calls and wake-ups")
    calls = 20000 if quick else 400000
    getppid = os.getppid
    t0 = time.perf_counter()
    for _ in range(calls):
        getppid()
    t1 = time.perf_counter()
    for _ in range(calls):
        abs(0)  # the interpreter's own cost of a call, taken off
    t2 = time.perf_counter()
    syscall_us = max((t1 - t0) - (t2 - t1), 0.0) / calls * 1e6
    trips = 2000 if quick else 40000
    there_r, there_w = os.pipe()
    back_r, back_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other process: echo each byte back, exit at EOF
        try:
            os.close(there_w)
            os.close(back_r)
            while os.read(there_r, 1):
                os.write(back_w, b"x")
        finally:
            os._exit(0)
    os.close(there_r)
    os.close(back_w)
    try:
        os.write(there_w, b"x")  # one trip first: both processes are running
        os.read(back_r, 1)
        t0 = time.perf_counter()
        for _ in range(trips):
            os.write(there_w, b"x")
            os.read(back_r, 1)
        rtt_us = (time.perf_counter() - t0) / trips * 1e6
    finally:
        os.close(there_w)
        os.close(back_r)
        os.waitpid(pid, 0)
    return {"syscall_us": syscall_us, "round_trip_us": rtt_us,
            "wakeup_us": max(rtt_us - 4 * syscall_us, 0.0) / 2}


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
        counts[n] = (done, parse_callgrind(out)[0])
    (n1, small), (n2, large) = counts[rpcs], counts[3 * rpcs]
    per_fn = {k: (large.get(k, 0) - small.get(k, 0)) / (n2 - n1) for k in set(small) | set(large)}
    by_object = collections.Counter()
    for (obj, _), ir in per_fn.items():
        by_object[object_group(obj)] += ir
    top = sorted(per_fn.items(), key=lambda kv: -kv[1])[:TOP_SYMBOLS]
    return sum(per_fn.values()), by_object.most_common(), top


def parse_callgrind(path):
    """(self Ir per (object, function), {function: [calls, inclusive Ir]}) of a callgrind
    output file: its compressed names resolved; the cost line after a calls= line is the
    callee's inclusive cost from that call site (summed per callee, not counted as self); the
    Ir column found from the positions: and events: headers."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
               "cfl": "fl", "fn": "fn", "cfn": "fn"}
    cost = collections.Counter()
    inclusive = collections.defaultdict(lambda: [0, 0])
    obj = fn = callee = "?"
    calls = None
    positions, ir_column = 1, None
    with open(path) as f:
        for line in f:
            if line[0].isdigit() or line[0] in "+-*":
                parts = line.split()
                if ir_column is None:
                    raise ValueError(f"{path}: cost line before an events: header")
                ir = int(parts[ir_column]) if len(parts) > ir_column else 0
                if calls is not None:
                    inclusive[callee][0] += calls
                    inclusive[callee][1] += ir
                    calls = None
                else:
                    cost[(obj, fn)] += ir
                continue
            if line.startswith("positions:"):
                positions = len(line.split()[1:])
                continue
            if line.startswith("events:"):
                ir_column = positions + line.split()[1:].index("Ir")
                continue
            key, sep, value = line.rstrip("\n").partition("=")
            if not sep or key not in kind_of and key != "calls":
                continue
            if key == "calls":
                calls = int(value.split()[0])
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
            elif key == "cfn":
                callee = value
    return cost, inclusive


# ---- 4: a pick's cost by service size ----

PICK_FN = "h2s_registry_pick"
# (algorithm, subset setting): every member, and the default (up to 20), which makes no
# difference to a service of 3.
PICK_CASES = (("round_robin", "all"), ("least_request", "all"), ("peak_ewma", "all"),
              ("peak_ewma", "auto"))


def pick_profile(lab, addrs, members, rpcs):
    """Instructions per h2s_registry_pick call (callees included), for the 3 backends and for
    a service of `members` addresses, per PICK_CASES: [(members, algo, subset, Ir/call)]."""
    port = h2slab.free_port("127.1.0.1")
    many = [f"127.1.{i // 250}.{i % 250 + 1}:{port}" for i in range(members)]
    server = lab.spawn("backend-many", [h2slab.PEER, "server", "-listen", ",".join(many),
                                        "-id", "many"])
    server.wait_for("READY")
    out = []
    for service_addrs in (addrs, many):
        for algo, subset in PICK_CASES:
            if subset != "all" and len(service_addrs) <= 3:
                continue
            progress(f"callgrind: picks, {len(service_addrs)} members, {algo}, subset {subset}")
            path = os.path.join(lab.tmp, f"callgrind-pick-{lab.seq()}.out")
            service = {"algo": algo, "subset": subset}
            daemon, target = start_daemon(
                lab, service_addrs, service=service,
                wrap=("valgrind", "--tool=callgrind", f"--callgrind-out-file={path}"))
            run_load(lab, target, ("unary", bench.IN_FLIGHT), rpcs, None)
            daemon.stop(timeout=120)
            calls, ir = parse_callgrind(path)[1].get(PICK_FN, (0, 0))
            if not calls:
                raise RuntimeError(f"{path}: no call of {PICK_FN}")
            out.append((len(service_addrs), algo, subset, ir / calls))
    server.stop()
    return out


# ---- report ----

def markdown(args, costs, shares, symbols, paths, instructions, picks, machine):
    total, by_object, top = instructions
    n = bench_report.number
    lines = [
        "# h2steer profile", "",
        f"`make profile` on {bench.utc_now()}: the release "
        "daemon in front of 3 grpc-go backends, 100-byte unary RPCs, "
        f"{os.cpu_count()} CPUs ({bench.cpu_model()}), kernel {os.uname().release}, "
        f"h2steer {bench_targets.versions()['h2steer']}"
        + (" (--quick: tiny counts, not a measurement)" if args.quick else "") + ".", "",
        "## Cost per request (perf stat on the daemon)", "",
        bench_report.markdown_table(
            ["load", "req/s", "daemon CPU µs/req", "syscalls/req", "context switches/req",
             "of which sleeping", "of which preempted", "daemon CPUs busy",
             "machine CPUs working", "stolen"],
            [[c["load"], n(c["rps"]), f"{c['cpu_us']:.1f}", f"{c['syscalls']:.2f}",
              f"{c['ctx_switches']:.2f}", f"{c['voluntary']:.2f}", f"{c['involuntary']:.2f}",
              f"{c['daemon_cpus']:.2f}",
              f"{c['machine_cpus']:.2f} of {os.cpu_count()}", f"{c['stolen_cpus']:.2f}"]
             for c in costs]), "",
        "daemon CPUs busy: the daemon's CPU time over the load's wall time (one event loop: at "
        "most 1.00); machine CPUs working: the time the machine's CPUs worked, from "
        "/proc/stat (user, system, interrupts) — load generator, backends and daemon together; "
        "stolen: time they wanted to run while the hypervisor ran something else (what is "
        "left of the CPUs is idle). Context switches: perf's count; sleeping (voluntary) and "
        "preempted (involuntary) from /proc/PID/status. perf stat's counting adds to the "
        "daemon's own figures.", "",
        f"## Where the daemon's CPU time goes (perf record, {n(args.n)} requests of the "
        "bench's load)", "",
        bench_report.markdown_table(["object", "share of samples"],
                                    [[obj, f"{pct:.1f} %"] for obj, pct in shares]), "",
        bench_report.markdown_table(["symbol", "object", "share"],
                                    [[re.sub(r"^\[[.k]\]\s+", "", sym[-1]),
                                      object_group(sym[0]), f"{pct:.1f} %"]
                                     for sym, pct in symbols]), "",
        "Kernel paths, time including what they call (perf report --children):", "",
        bench_report.markdown_table(["kernel function", "what", "share of samples"],
                                    [[fn, what, f"{pct:.1f} %"] for fn, what, pct in paths]),
        "",
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
        f"## What a pick costs as the service grows (callgrind, {n(args.rpcs)} RPCs each)", "",
        f"Instructions per call of {PICK_FN}, everything it calls included: the work that "
        "chooses a backend for one RPC. The large service is one grpc-go server behind "
        f"{n(args.pick_members)} loopback addresses.", "",
        bench_report.markdown_table(
            ["members", "algorithm", "subset", "instructions/pick"],
            [[n(members), algo, subset, n(ir)] for members, algo, subset, ir in picks]),
        "",
        "## What this machine charges (no daemon)", "",
        bench_report.markdown_table(
            ["what", "µs"],
            [["a system call (getppid)", f"{machine['syscall_us']:.2f}"],
             ["a round trip of one byte between two processes through two pipes "
              "(4 system calls, 2 wake-ups)", f"{machine['round_trip_us']:.1f}"],
             ["a wake-up: (round trip - 4 system calls) / 2", f"{machine['wakeup_us']:.1f}"]]),
        "",
        "Every RPC through a balancer costs at least two more wake-ups than direct (the "
        "balancer on the request, and on the response) and, in the balancer, at least one "
        "system call per leg and direction that no batching shares.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
