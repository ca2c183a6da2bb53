"""`tools/profile.py --quick` end to end: every table of the profile gets numbers, and it leaves
no process, pin or cgroup behind. It asserts no performance: the profile reports, it does not
judge."""
import glob
import os
import re

import h2slab
from test_bench import run_tool

PROFILE = os.path.join(h2slab.TOP, "tools", "profile.py")


def test_profile_quick_fills_every_table_and_cleans_up(tmp_path):
    p, stdout, stderr, leftovers = run_tool([PROFILE, "--quick", "--out", str(tmp_path)],
                                            timeout=180)
    assert p.returncode == 0, stdout + stderr
    md = (tmp_path / "profile.md").read_text()
    # Cost per request: a row per load (the last with busy polling), each with a positive CPU
    # time and syscall count.
    rows = re.findall(r"^\| (h2load|Go gRPC)([^|]*)\| [\d ]+ \| ([\d.]+) \| ([\d.]+) \|", md,
                      re.M)
    assert len(rows) == 4, md
    assert all(float(cpu) > 0 and float(calls) > 0 for _, _, cpu, calls in rows), rows
    assert "busy polling" in rows[3][1], rows
    # Kernel paths with their inclusive shares; sending is always among them.
    sending = re.search(r"^\| tcp_sendmsg \| [^|]+ \| ([\d.]+) % \|", md, re.M)
    assert sending and float(sending.group(1)) > 0, md
    # Where the time goes: the kernel and h2steerd's own code both have a share.
    assert re.search(r"^\| kernel \| [\d.]+ % \|", md, re.M), md
    assert re.search(r"^\| h2steerd \| [\d.]+ % \|", md, re.M), md
    # Instructions per RPC, split by object, the daemon's own among them.
    total = re.search(r"^([\d ]+) instructions per RPC", md, re.M)
    assert total and int(total.group(1).replace(" ", "")) > 1000, md
    assert re.search(r"^\| libnghttp2 \| [\d ]+ \|", md, re.M), md
    # What a pick costs: a row per algorithm for 3 members and for the large service (one more
    # with a subset), each with instructions counted.
    picks = re.findall(r"^\| ([\d ]+) \| (round_robin|least_request|peak_ewma) \| (\w+) \| "
                       r"([\d ]+) \|$", md, re.M)
    assert [(m.strip(), algo, subset) for m, algo, subset, _ in picks] == [
        ("3", "round_robin", "all"), ("3", "least_request", "all"), ("3", "peak_ewma", "all"),
        ("50", "round_robin", "all"), ("50", "least_request", "all"),
        ("50", "peak_ewma", "all"), ("50", "peak_ewma", "auto")], md
    assert all(int(ir.replace(" ", "")) > 0 for *_, ir in picks), picks
    # What the machine charges: a system call and a round trip between two processes, timed.
    syscall = re.search(r"^\| a system call \(getppid\) \| ([\d.]+) \|$", md, re.M)
    trip = re.search(r"^\| a round trip of one byte [^|]+\| ([\d.]+) \|$", md, re.M)
    assert syscall and trip and float(trip.group(1)) > 0, md
    assert leftovers == [], leftovers
    assert glob.glob(f"/sys/fs/bpf/h2s-lab-{p.pid}-*") == []
    assert glob.glob(os.path.join(h2slab.cgroup2_root(), f"h2s-lab-{p.pid}-*")) == []
