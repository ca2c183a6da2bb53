"""More than one event loop (`--set loops=N`): the kernel spreads client connections over the
loops' SO_REUSEPORT listeners; each loop balances its own clients' RPCs, follows the main loop's
health checks, drains on SIGTERM and hands its sockets over on --takeover; /metrics and the CLI
add every loop up."""
import json
import os
import signal
import time

import h2slab
from h2slab import metric
from test_health import health_svc, wait_state

LOOPS2 = ("--set", "loops=2")
# The daemon built with ThreadSanitizer (tests/tests.mk): a data race between the loops is
# reported in its log, and the lab's teardown fails the test for it.
TSAN_DAEMON = os.path.join(h2slab.BUILD, "tsan", "h2steerd")


def accepted_per_loop(scraped):
    return {dict(ls)["loop"]: v for (n, ls), v in scraped.items()
            if n == "h2steer_loop_client_connections_accepted_total"}


def assert_both_loops_accepted(scraped):
    """Loops 0 and 1 each accepted client connections (a loop that does not exist would
    have no line at all)."""
    per_loop = accepted_per_loop(scraped)
    assert set(per_loop) == {"0", "1"} and all(v > 0 for v in per_loop.values()), per_loop
    return per_loop


def rpcs_by_backend(scraped, bes):
    return [sum(v for (n, ls), v in scraped.items()
                if n == "h2steer_rpcs_total" and ("backend", b.addr) in ls) for b in bes]


def start_clients(lab, vip, n_clients, *args):
    """n_clients Go clients at once, each with its own connection."""
    return [lab.client_async(vip, *args) for _ in range(n_clients)]


def finish_clients(clients, ok=None):
    """Their reports, once each exited 0 (and, given ok, ran that many RPCs, none failed)."""
    out = []
    for c in clients:
        assert c.p.wait(120) == 0, c.tail()
        r = json.loads(c.text().strip().splitlines()[-1])
        assert ok is None or (r["ok"] == ok and r["errors"] == {}), r
        out.append(r)
    return out


def run_clients(lab, vip, n_clients, *args, ok=None):
    return finish_clients(start_clients(lab, vip, n_clients, *args), ok)


def test_two_loops_share_the_clients_and_count_as_one(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]}, extra=LOOPS2)
    reports = run_clients(lab, vip, 16, "unary", "-n", 300, "-c", 4, ok=300)
    m = d.scrape()
    # 16 connections hashed over 2 listeners: each loop got some (all on one: 2^-15).
    assert metric(m, "h2steer_event_loops") == 2
    per_loop = assert_both_loops_accepted(m)
    assert sum(per_loop.values()) == 16 == metric(m, "h2steer_client_connections_accepted_total")
    # Every RPC counted once, whichever loop relayed it, and spread evenly by both.
    by_be = rpcs_by_backend(m, bes)
    assert sum(by_be) == 16 * 300, by_be
    assert all(0.30 <= n / sum(by_be) <= 0.37 for n in by_be), by_be
    # Each connection (one loop's) is balanced per RPC, not pinned: the round robin of its
    # loop is shared by that loop's connections, so not exactly 100 each.
    for r in reports:
        assert all(r["by_backend"].get(b.id, 0) >= 80 for b in bes), r["by_backend"]
    st = lab.cli(d, "stats", json_out=True).json
    assert st["streams_total"] == 16 * 300 and st["client_connections_accepted"] == 16, st
    # `backend list` reads what the main loop publishes each second: every loop's RPCs.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        listed = lab.cli(d, "backend", "list", vip, json_out=True).json
        if sum(b["rpcs"] for b in listed) == 16 * 300:
            break
        time.sleep(0.2)
    assert sorted(b["rpcs"] for b in listed) == sorted(by_be), (listed, by_be)
    status = lab.cli(d, "status", json_out=True).json["daemon"]
    assert status["loops"] == 2, status
    assert "2 event loops" in lab.cli(d, "status").stdout


def slow_rpcs_on_both_loops(lab, n_clients, streams):
    """A daemon with 2 loops and n_clients connections each holding `streams` RPCs of 2.5 s."""
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]}, extra=LOOPS2)
    clients = start_clients(lab, vip, n_clients, "concurrent", "-streams", streams,
                            "-sleep-ms", 2500)
    return d, clients


def test_conn_and_stream_lists_cover_every_loop(lab):
    d, clients = slow_rpcs_on_both_loops(lab, 12, 3)
    streams = lab.wait_streams(d, 36)
    conns = lab.cli(d, "conn", "list", json_out=True).json
    assert len(conns) == 12 and len(streams) == 36, (conns, streams)
    assert_both_loops_accepted(d.scrape())
    finish_clients(clients)


def test_health_checked_by_the_main_loop_is_honoured_by_every_loop(lab):
    bes = lab.backends(3, extra=["-health"])
    vip = lab.vip()
    d = lab.daemon(config=health_svc(vip, bes), extra=LOOPS2)
    for b in bes:
        wait_state(lab, d, vip, b.addr, "health", "serving")
    bes[0].proc.p.stdin.write(b"health NOT_SERVING\n")
    bes[0].proc.p.stdin.flush()
    wait_state(lab, d, vip, bes[0].addr, "health", "not_serving")
    before = rpcs_by_backend(d.scrape(), bes)
    reports = run_clients(lab, vip, 12, "unary", "-n", 200, "-c", 2, ok=200)
    m = d.scrape()
    after = rpcs_by_backend(m, bes)
    assert_both_loops_accepted(m)
    assert after[0] == before[0], (before, after)  # no loop sent it anything
    assert all(r["by_backend"].get(bes[0].id, 0) == 0 for r in reports), reports
    # Serving again: every loop takes it back.
    bes[0].proc.p.stdin.write(b"health SERVING\n")
    bes[0].proc.p.stdin.flush()
    wait_state(lab, d, vip, bes[0].addr, "health", "serving")
    reports = run_clients(lab, vip, 12, "unary", "-n", 300, "-c", 3)
    assert all(r["by_backend"].get(bes[0].id, 0) >= 80 for r in reports), reports


def test_sigterm_drains_every_loop(lab):
    d, clients = slow_rpcs_on_both_loops(lab, 10, 4)
    time.sleep(0.8)
    assert_both_loops_accepted(d.scrape())
    os.kill(d.proc.pid, signal.SIGTERM)
    finish_clients(clients)
    assert d.proc.p.wait(30) == 0, d.proc.tail()
    text = d.proc.text()
    assert "loop 1: draining" in text and "\ndraining" in text.replace("<5>", "\n"), text[-2000:]
    assert not os.path.exists(d.pin_dir)


def test_takeover_from_two_loops_to_one_and_back_fails_nothing(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    a = lab.daemon(services={vip: [b.addr for b in bes]}, extra=LOOPS2)
    # 8 connections of steady RPCs (~9 s) across both takeovers.
    clients = start_clients(lab, vip, 8, "unary", "-n", 3000, "-c", 2, "-interval-us", 5000,
                            "-max-time", "90s")
    time.sleep(2)
    b = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, extra=["--takeover"])
    assert a.proc.p.wait(40) == 0, a.proc.tail()
    # One loop took over both loops' sockets (2 per address): none was closed on a backlog.
    assert "listening on %s (socket taken over)" % a.listen[0] in b.proc.text()
    time.sleep(2)
    c = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, extra=["--takeover", *LOOPS2])
    assert b.proc.p.wait(40) == 0, b.proc.tail()
    finish_clients(clients, ok=3000)
    k = lab.cli(c, "stats", json_out=True).json["kernel"]
    assert k["l4_fallback"] == 0 and k["no_daemon"] == 0, k
    assert metric(c.scrape(), "h2steer_event_loops") == 2
    r = lab.client(vip, "unary", "-n", 300, "-c", 3)
    assert r["ok"] == 300 and all(n == 100 for n in r["by_backend"].values()), r


def test_takeover_from_one_loop_opens_its_sockets_to_a_second(lab):
    """One loop never sets SO_REUSEPORT (nothing else may join its address); a daemon with
    two that takes its sockets over sets it, so that its second loop can join them."""
    bes = lab.backends(2)
    vip = lab.vip()
    a = lab.daemon(services={vip: [b.addr for b in bes]})
    clients = start_clients(lab, vip, 6, "unary", "-n", 1500, "-c", 2, "-interval-us", 5000,
                            "-max-time", "90s")
    time.sleep(1.5)
    b = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, extra=["--takeover", *LOOPS2])
    assert a.proc.p.wait(40) == 0, a.proc.tail()
    finish_clients(clients, ok=1500)
    run_clients(lab, vip, 16, "unary", "-n", 20, "-c", 1, ok=20)
    assert_both_loops_accepted(b.scrape())


def test_three_loops_under_thread_sanitizer(lab):
    """Everything that crosses threads, with ThreadSanitizer watching: load on 3 loops while
    /metrics, the CLI's lists and stats gather from every loop, health flips followed by the
    workers, a takeover from 3 loops to 2, then a SIGTERM drain with RPCs in flight."""
    bes = lab.backends(3, extra=["-health"])
    vip = lab.vip()
    a = lab.daemon(config=health_svc(vip, bes), binary=TSAN_DAEMON,
                   extra=("--set", "loops=3"))
    for b in bes:
        wait_state(lab, a, vip, b.addr, "health", "serving")
    clients = start_clients(lab, vip, 9, "unary", "-n", 600, "-c", 2, "-interval-us", 3000,
                            "-max-time", "90s")
    for i in range(8):
        a.scrape()
        for what in (("conn", "list"), ("stream", "list"), ("stats",),
                     ("backend", "list", vip)):
            lab.cli(a, *what)
        bes[0].proc.p.stdin.write(b"health %s\n" % (b"NOT_SERVING" if i == 2 else b"SERVING"))
        bes[0].proc.p.stdin.flush()
        time.sleep(0.2)
    b = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, binary=TSAN_DAEMON,
                   extra=("--takeover", "--set", "loops=2"))
    assert a.proc.p.wait(60) == 0, a.proc.tail()
    finish_clients(clients, ok=600)
    slow = start_clients(lab, vip, 6, "concurrent", "-streams", 3, "-sleep-ms", 1500)
    time.sleep(0.5)
    os.kill(b.proc.pid, signal.SIGTERM)
    finish_clients(slow)
    assert b.proc.p.wait(60) == 0, b.proc.tail()
    # A race report fails the test at teardown (the lab checks every daemon's log).


def test_loops_setting_is_checked(lab):
    d = lab.daemon(extra=("--set", "loops=0"))  # one per CPU
    assert lab.cli(d, "status", json_out=True).json["daemon"]["loops"] == min(len(os.sched_getaffinity(0)), 16)
    path = os.path.join(lab.tmp, "loops.yaml")
    for config, argv in (("loops: 17\n", []), ("services: []\n", ["--set", "loops=17"]),
                         ("loops: -1\n", [])):
        with open(path, "w") as f:
            f.write(config)
        r = lab.run([h2slab.DAEMON, *argv, "--check-config", path], in_cgroup=False)
        assert r.returncode == 2 and "loops" in r.stderr, (config, argv, r.stderr)
