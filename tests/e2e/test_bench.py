"""`tools/bench.py --quick --scale` end to end: it loads every target, reports a number for
each, writes its files, and leaves no process, pin or cgroup behind. It asserts no performance:
the benchmark judges that, not the tests."""
import ctypes
import glob
import json
import os
import subprocess
import time

import bench_targets
import h2slab

BENCH = os.path.join(h2slab.TOP, "tools", "bench.py")
PR_SET_CHILD_SUBREAPER = 36
# Fields of results.json that must be numbers for every target, and for every balancer.
TARGET_FIELDS = ("rps", "rps_ratio", "p50_us_16", "p90_us_16", "p99_us_16", "p50_16_ratio",
                 "p99_16_ratio", "p50_us_1", "p50_1_ratio", "backends_cpu_ms_per_1k_rpcs",
                 "client_cpu_ms_per_1k_rpcs", "cpus_busy", "ceiling_ratio")
# Every target but direct has a process whose CPU time is measured; balancers also RSS.
PROCESS_FIELDS = ("cpu_ms_per_1k_rpcs", "cpu_ms_per_1k_rpcs_1")
BALANCER_FIELDS = ("rss_idle_kb", "rss_after_kb", "rss_idle_conns_kb")


def set_subreaper(on):
    """While on, processes orphaned below this one are re-parented to it (not to init), so a
    process the benchmark leaked stays visible as our descendant."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def live_descendants(timeout=5.0):
    """Our descendants still running after `timeout` (exited orphans are reaped meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        left = bench_targets.process_tree(os.getpid())[1:]
        if not left or time.monotonic() > deadline:
            return [open(f"/proc/{p}/cmdline").read().replace("\0", " ") for p in left]
        time.sleep(0.1)


def run_tool(argv, timeout):
    """Run one of the tools (bench.py, profile.py) on the release daemon, not ASan's: the
    process, its output, and any of its descendants still running after it exited."""
    env = dict(os.environ)
    env.pop("H2S_DAEMON", None)
    set_subreaper(True)
    try:
        p = subprocess.Popen([h2slab.PYTHON] + argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        return p, stdout, stderr, live_descendants()
    finally:
        set_subreaper(False)


def test_bench_quick_reports_every_target_and_cleans_up(tmp_path):
    p, stdout, stderr, leftovers = run_tool(
        [BENCH, "--quick", "--scale", "--out", str(tmp_path)], timeout=300)
    assert p.returncode == 0, stdout + stderr

    first_words = {line.split()[0] for line in stdout.splitlines() if line.strip()}
    assert set(bench_targets.TARGETS) <= first_words, stdout

    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert results["errors"] == 0 and results["problems"] == [], results["problems"]
    for name in bench_targets.TARGETS:
        summary = results["targets"][name]
        fields = (TARGET_FIELDS + (PROCESS_FIELDS if name != "direct" else ()) +
                  (BALANCER_FIELDS if name in bench_targets.BALANCERS else ()))
        for field in fields:
            assert isinstance(summary[field], (int, float)), (name, field, summary[field])
        assert summary["split"], name
    # The scale checks include a daemon with 2 event loops under 100 connections.
    assert [c["loops"] for c in results["scale"]].count(2) == 1, results["scale"]
    # ... and every case goes through nghttpx, haproxy and nginx too, side by side.
    assert any(c["conns"] == 1000 for c in results["scale"]), results["scale"]
    for case in results["scale"]:
        for m in case["metrics"]:
            for name in ("h2steer", "nghttpx", "haproxy", "nginx"):
                assert isinstance(m[name], (int, float)), (case["label"], name, m)
            if m["metric"].startswith("balancer CPU"):  # direct has no balancer
                # (--quick's few requests may take less than a clock tick: 0 is possible)
                assert m["direct"] is None and m["h2steer"] >= 0, (case["label"], m)
            else:
                assert isinstance(m["direct"], (int, float)), (case["label"], m)

    md = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in md for name in bench_targets.TARGETS), md
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert leftovers == [], leftovers
    assert glob.glob(f"/sys/fs/bpf/h2s-lab-{p.pid}-*") == []
    assert glob.glob(os.path.join(h2slab.cgroup2_root(), f"h2s-lab-{p.pid}-*")) == []
