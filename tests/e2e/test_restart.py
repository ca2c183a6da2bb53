"""Restarts and upgrades under load: the client keeps its RPCs flowing whether the daemon hands
over (--takeover), stops and starts again (SIGTERM with state kept), or dies. While no daemon
accepts, the pinned connect hooks send new connections straight to a backend (L4 fallback)."""
import json
import os
import signal
import socket
import time

import h2slab


def finish(client, timeout=120):
    assert client.p.wait(timeout) == 0, client.tail()
    return json.loads(client.text().strip().splitlines()[-1])


def kernel(lab, d):
    return lab.cli(d, "stats", json_out=True).json["kernel"]


def shares(by_backend, bes):
    total = sum(by_backend.values())
    return [by_backend.get(b.id, 0) / total for b in bes]


def test_takeover_under_load_fails_nothing_and_keeps_balancing(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    a = lab.daemon(services={vip: [b.addr for b in bes]})
    # One channel, 8 workers, about 12 s of RPCs; the takeover happens 3 s in.
    client = lab.client_async(vip, "unary", "-n", 24000, "-c", 8, "-interval-us", 4000,
                              "-tail", 3000, "-max-time", "90s")
    time.sleep(3)
    accepted_before = kernel(lab, a)["captured"]
    b = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, extra=["--takeover"])
    assert "taking over from h2steerd pid" in b.proc.text()
    assert "socket taken over" in b.proc.text()
    # The old daemon finishes its streams and exits on its own, leaving the pins to b.
    assert a.proc.p.wait(40) == 0, a.proc.tail()
    assert "handed over" in a.proc.text()
    r = finish(client)
    assert r["errors"] == {} and r["ok"] == 24000, r
    k = kernel(lab, b)
    # No gap: the client reconnected to b's (inherited) listener, never to a backend directly.
    assert k["captured"] > accepted_before, k
    assert k["l4_fallback"] == 0 and k["no_daemon"] == 0, k
    assert b.scrape()[("h2steer_client_connections_accepted_total", frozenset())] >= 1
    # And b balances that connection per RPC, like a did.
    assert all(s > 0.25 for s in shares(r["tail_by_backend"], bes)), r["tail_by_backend"]
    # b answers the CLI and serves metrics on the same addresses a used.
    assert lab.cli(b, "status", json_out=True).json["daemon"]["pid"] == b.proc.pid
    print(f"takeover under load: {r['ok']} RPCs, 0 failed; after it "
          f"{r['tail_by_backend']}")


def test_sigterm_then_start_under_load_fails_nothing(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    services = {vip: [b.addr for b in bes]}
    a = lab.daemon(services=services, extra=["--keep-state"])
    client = lab.client_async(vip, "unary", "-n", 16000, "-c", 8, "-interval-us", 4000,
                              "-max-time", "90s")
    time.sleep(2)
    os.kill(a.proc.pid, signal.SIGTERM)
    assert a.proc.p.wait(40) == 0, a.proc.tail()
    # No daemon for a second: the client's new connection goes straight to a backend.
    time.sleep(1)
    b = lab.daemon(services=services, pin_dir=a.pin_dir)
    r = finish(client)
    assert r["errors"] == {} and r["ok"] == 16000, r
    k = kernel(lab, b)
    assert k["l4_fallback"] >= 1, k
    # A client connecting now is captured by b and balanced again.
    r2 = lab.client(vip, "unary", "-n", 600, "-c", 4)
    assert r2["ok"] == 600 and all(n == 200 for n in r2["by_backend"].values()), r2
    print(f"SIGTERM, 1 s without a daemon, start: {r['ok']} RPCs, 0 failed, "
          f"{k['l4_fallback']} connections sent straight to a backend")


def test_killed_daemon_connections_go_straight_to_backends_until_restart(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    services = {vip: [b.addr for b in bes]}
    a = lab.daemon(services=services)
    assert lab.client(vip, "unary", "-n", 30, "-c", 1)["ok"] == 30
    a.proc.exit_expected = True
    a.proc.stop(signal.SIGKILL)
    st = lab.cli(a, "status", json_out=True, check=False)
    assert st.returncode == 1 and st.json["daemon"] is None and st.json["l4_fallback"], st.json
    # Capture is still on and points at a listener that is gone: never refused, L4 instead.
    for _ in range(5):
        r = lab.client(vip, "unary", "-n", 20, "-c", 1)
        assert r["ok"] == 20 and len(r["by_backend"]) == 1, r
    # --takeover finds the dead daemon's entry, and nobody behind its control socket.
    b = lab.daemon(services=services, pin_dir=a.pin_dir, extra=["--takeover"])
    assert "no daemon runs" in b.proc.text()
    k = kernel(lab, b)
    assert k["no_daemon"] >= 5 and k["l4_fallback"] >= 5, k
    r = lab.client(vip, "unary", "-n", 300, "-c", 3)
    assert r["ok"] == 300 and all(n == 100 for n in r["by_backend"].values()), r


def test_takeover_with_no_daemon_running_starts_afresh(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]}, extra=["--takeover"])
    assert "no daemon runs" in d.proc.text()
    assert lab.client(vip, "unary", "-n", 10, "-c", 1)["ok"] == 10


def test_takeover_that_fails_leaves_the_old_daemon_serving(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    a = lab.daemon(services={vip: [b.addr for b in bes]})
    client = lab.client_async(vip, "unary", "-n", 12000, "-c", 4, "-interval-us", 2000,
                              "-max-time", "90s")
    time.sleep(1.5)
    # The new daemon gets the sockets, then cannot bind its metrics address: it gives up.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    b = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, wait=False,
                   extra=["--takeover", "--metrics", "127.0.0.1:%d" % taken.getsockname()[1]])
    b.proc.exit_expected = True
    assert b.proc.p.wait(30) == 1, b.proc.tail()
    assert "taking over from h2steerd pid" in b.proc.text()
    a.proc.wait_for("serving again")
    r = finish(client)
    assert r["errors"] == {} and r["ok"] == 12000, r
    # a has the node back: it answers the CLI, its capture is on, and it can hand over later.
    st = lab.cli(a, "status", json_out=True).json
    assert st["daemon"]["pid"] == a.proc.pid and st["capture"] is True, st
    assert kernel(lab, a)["l4_fallback"] == 0
    taken.close()
    c = lab.daemon(pin_dir=a.pin_dir, listen=a.listen, extra=["--takeover"])
    assert a.proc.p.wait(40) == 0, a.proc.tail()
    assert lab.client(vip, "unary", "-n", 30, "-c", 1)["ok"] == 30
    assert lab.cli(c, "status", json_out=True).json["daemon"]["pid"] == c.proc.pid


def test_stop_signal_in_the_same_batch_as_probes_and_cli_requests(lab):
    """SIGTERM and, in the same epoll batch, /healthz probes and control requests: the drain
    frees the control socket and the metrics listener only after the batch. (Whether the
    signal comes first in the batch is up to epoll: five rounds.)"""
    bes = lab.backends(1)
    vip = lab.vip()
    for _ in range(5):
        a = lab.daemon(services={vip: [bes[0].addr]}, extra=["--keep-state"])
        control = lab.cli(a, "status", json_out=True).json["control"]
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            os.kill(a.proc.pid, signal.SIGTERM)
            host, port = a.metrics.rsplit(":", 1)
            conns = []
            for _ in range(3):
                s = socket.create_connection((host, int(port)), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                c = socket.socket(socket.AF_UNIX)
                c.connect(control)
                c.sendall(b"status\n")
                conns += [s, c]
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        assert a.proc.p.wait(30) == 0, a.proc.tail()
        for s in conns:
            s.close()
        assert lab.daemon(pin_dir=a.pin_dir).stop() == 0  # removes the state a kept


def test_plain_sigterm_leaves_new_connects_alone_during_the_drain(lab):
    """Without --keep-state a stop is an uninstall: no L4 fallback while the last streams
    finish; connects go where the client sent them."""
    bes = lab.backends(1)
    vip = lab.vip()
    a = lab.daemon(services={vip: [bes[0].addr]})
    slow = lab.client_async(vip, "concurrent", "-streams", 1, "-sleep-ms", 3000)
    time.sleep(0.8)
    os.kill(a.proc.pid, signal.SIGTERM)
    a.proc.wait_for("draining")
    host, port = vip.rsplit(":", 1)
    r = lab.run([h2slab.PYTHON, "-c", f"import socket; socket.create_connection(('{host}', "
                 f"{port}), timeout=5)"])
    assert "ConnectionRefusedError" in r.stderr, r.stderr
    assert slow.p.wait(30) == 0, slow.tail()
    assert a.proc.p.wait(30) == 0


def test_two_daemons_never_share_a_control_socket(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    a = lab.daemon(services={vip: [bes[0].addr]})
    control = lab.cli(a, "status", json_out=True).json["control"]
    b = lab.daemon(extra=["--control", control], wait=False)
    b.proc.exit_expected = True
    assert b.proc.p.wait(30) == 1
    assert "is in use by another daemon" in b.proc.text(), b.proc.tail()
    assert lab.cli(a, "status", json_out=True).json["daemon"]["pid"] == a.proc.pid
