"""Clients that open connections and sit on them (tests/grpc/conn_holder.py): the daemon runs
with the hard file limit it is given, caps client connections in total and per source address
(a pod) below it, closes the surplus at once, and never spins on a failing accept() nor floods
its log, whoever holds on; once they let go, clients are served as before."""
import json
import os
import re
import time

import h2slab
from h2slab import metric

HOLDER = "conn_holder.py"
# What the daemon logs about connections it did not serve, or could not accept.
ABOUT_IT = re.compile(r"Too many open files|refused|not accepting")


def usage(pid, cpu_s=0.0):
    """RSS (KiB), open descriptors and, over cpu_s seconds, the CPU used (%)."""
    def ticks():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    out = {}
    if cpu_s:
        t0, c0 = time.monotonic(), ticks()
        time.sleep(cpu_s)
        out["cpu_pct"] = round(100.0 * (ticks() - c0) / os.sysconf("SC_CLK_TCK") /
                               (time.monotonic() - t0), 1)
    with open(f"/proc/{pid}/status") as f:
        out["rss_kib"] = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def file_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", f.read()).groups()
    return int(soft), int(hard)


def hold(lab, vip, n, *args):
    """conn_holder.py holding n connections (in the lab's cgroup: captured) until release()."""
    p = lab.spawn("holder", [h2slab.PYTHON, os.path.join(h2slab.TOP, "tests", "grpc", HOLDER),
                             vip, str(n), "--hold", *args], cgroup=lab.cgroup, stdin=True)
    p.wait_for("HOLDING", timeout=60)
    return p, json.loads(next(l for l in p.text().splitlines() if l.startswith("{")))


def wait_idle(d):
    """Until the daemon has seen every client connection close."""
    deadline = time.monotonic() + 10
    while metric(d.scrape(), "h2steer_client_connections") and time.monotonic() < deadline:
        time.sleep(0.05)


def release(d, holder):
    holder.p.stdin.close()
    holder.p.wait(10)
    wait_idle(d)


def lines_about_it(d):
    return sum(1 for l in d.proc.text().splitlines() if ABOUT_IT.search(l))


def report(what, **numbers):
    print(what, json.dumps(numbers))


def test_a_low_file_limit_refuses_the_surplus_at_once_and_never_spins(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]}, wrap=["prlimit", "--nofile=128:256"])
    limit = file_limit(d.proc.pid)
    before = usage(d.proc.pid)
    holder, held = hold(lab, vip, 400)
    during = usage(d.proc.pid, cpu_s=2)
    # Another source address (a pod) is served meanwhile.
    other = lab.pyclient(HOLDER, vip, 1, "--source", "127.0.0.2", "--rpc")
    logged = lines_about_it(d)
    release(d, holder)
    r = lab.client(vip, "unary", "-n", 100, check=False)
    after = usage(d.proc.pid)
    m = d.scrape()
    report("file limit 128:256, 400 held", limit=limit, held=held, other=other,
           lines_about_it=logged, before=before, during=during, after=after, ok=r.get("ok"))
    assert limit == (256, 256), "the soft limit is raised to the hard one"
    assert "file limit 256 (raised from 128 to the hard limit) is low" in d.proc.text()
    assert during["cpu_pct"] < 10, during
    assert logged <= 3, d.proc.tail(20)
    # The defaults: 3/4 of the file limit in total, half of that from one address.
    assert "client connections: at most 192 (from the file limit, 256), 96 from one source " \
           "address" in d.proc.text()
    assert held["served"] == 96 and held["refused"] == 304 and held["pending"] == 0, held
    assert held["refused_within_s"] < 1, held
    assert metric(m, "h2steer_client_connections_refused_total", reason="per_source") == 304
    assert metric(m, "h2steer_client_connections_refused_total", reason="total") == 0
    assert other["served"] == 1 and other["grpc_status"] == "0", other
    assert during["fds"] < 256, during
    assert r["ok"] == 100, r


def test_out_of_descriptors_accepting_pauses_and_resumes(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    # Caps above the file limit: accept() runs out of descriptors first.
    d = lab.daemon(services={vip: [be.addr]}, wrap=["prlimit", "--nofile=256:256"],
                   extra=["--set", "max_client_connections=100000",
                          "--set", "max_client_connections_per_source=100000"])
    before = usage(d.proc.pid)
    holder, held = hold(lab, vip, 400)
    during = usage(d.proc.pid, cpu_s=2)
    logged = lines_about_it(d)
    release(d, holder)
    r = lab.client(vip, "unary", "-n", 100, check=False)
    after = usage(d.proc.pid)
    m = d.scrape()
    report("file limit 256, caps above it, 400 held", held=held, lines_about_it=logged,
           before=before, during=during, after=after, ok=r.get("ok"),
           pauses=metric(m, "h2steer_accept_pauses_total"))
    assert during["cpu_pct"] < 10, during
    assert logged <= 3, d.proc.tail(20)
    assert held["served"] > 100 and held["pending"] > 0, held
    assert metric(m, "h2steer_accept_pauses_total") >= 1
    assert r["ok"] == 100, r


def test_a_source_over_its_cap_is_refused_at_once_while_another_is_served(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]},
                   extra=["--set", "max_client_connections_per_source=5"])
    holder, held = hold(lab, vip, 8)
    other = lab.pyclient(HOLDER, vip, 3, "--source", "127.0.0.2", "--rpc")
    m = d.scrape()
    report("per source 5, 8 held", held=held, other=other)
    assert held["served"] == 5 and held["refused"] == 3 and held["pending"] == 0, held
    assert held["refused_within_s"] < 1, held
    assert other["served"] == 3 and other["grpc_status"] == "0", other
    assert metric(m, "h2steer_client_connections_refused_total", reason="per_source") == 3
    assert metric(m, "h2steer_client_connections_refused_total", reason="total") == 0
    assert "client connection from 127.0.0.1 refused: loop 0 serves 5 from that address " \
           "already (max_client_connections_per_source)" in d.proc.text()
    # Their places come free as they close: the kernel says so, nobody has to.
    release(d, holder)
    again = lab.pyclient(HOLDER, vip, 5, "--rpc")
    assert again["served"] == 5 and again["grpc_status"] == "0", again
    wait_idle(d)
    r = lab.client(vip, "unary", "-n", 100)
    assert r["ok"] == 100, r


def test_with_two_loops_each_holds_its_share_under_thread_sanitizer(lab):
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]}, wrap=["prlimit", "--nofile=256:256"],
                   binary=os.path.join(h2slab.BUILD, "tsan", "h2steerd"),
                   extra=["--set", "loops=2"])
    holder, held = hold(lab, vip, 400)
    during = usage(d.proc.pid, cpu_s=2)
    logged = lines_about_it(d)
    release(d, holder)
    r = lab.client(vip, "unary", "-n", 100, "-c", 4)
    report("two loops, file limit 256, 400 held", held=held, during=during,
           lines_about_it=logged)
    # 96 per source, 48 on each loop: the kernel gives each far more than that.
    assert held["served"] == 96 and held["pending"] == 0, held
    assert during["cpu_pct"] < 10, during
    assert logged <= 4, d.proc.tail(20)  # a line per cause, whichever loop logs it
    assert r["ok"] == 100, r
