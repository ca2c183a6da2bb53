"""The kubelet's probes under abuse (issue 15): whatever an unprivileged local process does to
the metrics port — hold connections open by the hundred, send a request a byte a second, ask
for /metrics and never read — every /healthz and /readyz answers 200 within the kubelet's 1 s,
while it lasts and after it ends, and the daemon's fds stay bounded and come back.

The abuser runs as uid 65534 (nobody) from 127.0.0.1, the address the probes come from too, so
nothing about its address sets it apart."""
import http.client
import os
import signal
import socket
import time

import h2slab
from h2slab import metric

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]

# The abuser: keeps N connections to HOST:PORT open, doing MODE on each, says "held N", and
# opens another in place of each one the daemon closes until it is killed. idle: sends nothing.
# partial: a request head that never ends. slowloris: one more header byte a second on each.
# unread: /metrics asked for 50 times in a row (pipelined) on a small receive buffer that is
# never read.
HOLDER = r"""
import socket, sys, time
host, port, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def start():
    s = socket.socket()
    if mode == "unread":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    if mode == "partial":
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    elif mode == "unread":
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
    return s
held = [start() for _ in range(n)]
print("held", n, flush=True)
for tick in range(1, 1 << 30):
    time.sleep(0.1)
    for i, s in enumerate(held):
        # TCP_INFO's first byte: the state; CLOSE (7) or CLOSE_WAIT (8) once the daemon closed.
        if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] in (7, 8):
            s.close()
            held[i] = start()
        elif mode == "slowloris" and tick % 10 == 0:
            try:
                s.send(b"X")
            except OSError:
                pass  # closed meanwhile: replaced on the next tick
"""


def holder(lab, d, n, mode):
    host, port = d.metrics.rsplit(":", 1)
    p = lab.spawn("holder", NOBODY + [h2slab.PYTHON, "-c", HOLDER, host, port, str(n), mode])
    p.wait_for(f"held {n}", timeout=20)
    with open(f"/proc/{p.pid}/status") as f:
        assert next(l.split()[1:] for l in f if l.startswith("Uid:")) == ["65534"] * 4
    return p


def probe(d, path, late=0.0):
    """One probe as the kubelet makes it (a fresh connection, Connection: close, 1 s timeout):
    (status or the error, seconds). late: seconds between its connect and its request, as
    from a kubelet descheduled on a busy node."""
    host, port = d.metrics.rsplit(":", 1)
    start = time.monotonic()
    c = http.client.HTTPConnection(host, int(port), timeout=1)
    try:
        c.connect()
        time.sleep(late)
        c.request("GET", path, headers={"User-Agent": "kube-probe/1.30", "Accept": "*/*",
                                        "Connection": "close"})
        r = c.getresponse()
        r.read()
        status = r.status
    except OSError as e:
        status = repr(e)
    finally:
        c.close()
    return status, time.monotonic() - start


def probe_for(d, seconds):
    """/healthz, /readyz and a late /healthz (its request 0.2 s after its connect) every
    0.2 s for that long: every answer that was not 200 within 1 s, the slowest, and the
    daemon's most fds and RSS meanwhile."""
    bad, slowest, peak = [], 0.0, (0, 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path, late in (("/healthz", 0), ("/readyz", 0), ("/healthz", 0.2)):
            status, took = probe(d, path, late)
            slowest = max(slowest, took)
            if status != 200 or took >= 1:
                bad.append((path, status, round(took, 3)))
        peak = tuple(map(max, peak, usage(d)))
        time.sleep(0.2)
    return bad, slowest, peak


def usage(d):
    """The daemon's open fds and resident memory (kB)."""
    pid = d.proc.pid
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return len(os.listdir(f"/proc/{pid}/fd")), rss


def abuse(lab, n, mode, more_backends=0):
    """Probes before, during and after n connections in this mode; returns the daemon.
    more_backends: static backends nothing listens on (each adds lines to /metrics)."""
    bes = lab.backends(1)
    vip = lab.vip()
    fake = [f"127.0.0.1:{20000 + i}" for i in range(more_backends)]
    d = lab.daemon(services={vip: [bes[0].addr] + fake})
    assert probe_for(d, 0.5)[0] == []
    before = usage(d)
    h = holder(lab, d, n, mode)
    bad_during, slow_during, during = probe_for(d, 3)
    h.stop(signal.SIGKILL)
    h.exit_expected = True
    bad_after, slow_after, _ = probe_for(d, 3)
    after = usage(d)
    print(f"{mode} x{n}: (fds, RSS kB) before {before}, at most {during} during, {after} "
          f"after; slowest probe {slow_during:.3f} s during, {slow_after:.3f} s after")
    assert bad_during == [], bad_during
    assert bad_after == [], bad_after
    # Bounded however many the abuser opens (32 waiting for their heads, 8 scrapes), and all
    # given back.
    assert during[0] - before[0] <= 40, (before, during)
    assert after[0] - before[0] <= 2, (before, after)
    return d


def test_probes_answer_while_and_after_hundreds_of_idle_connections_are_held(lab):
    d = abuse(lab, 300, "idle")
    assert metric(d.scrape(), "h2steer_metrics_connections_dropped_total", reason="evicted") > 0


def test_probes_answer_while_and_after_70_connections_hold_unfinished_requests(lab):
    abuse(lab, 70, "partial")


def test_probes_answer_while_slowloris_connections_send_a_byte_a_second(lab):
    d = abuse(lab, 100, "slowloris")
    m = d.scrape()
    assert metric(m, "h2steer_metrics_connections_dropped_total", reason="evicted") + \
        metric(m, "h2steer_metrics_connections_dropped_total", reason="timeout") > 0


def test_probes_answer_while_big_scrapes_are_never_read(lab):
    # A page of some 340 kB, 50 times on each connection: far more than socket buffers hold.
    d = abuse(lab, 70, "unread", more_backends=300)
    status, text = d.http("/metrics")
    assert status == 200 and len(text) > 300000  # scrapes are served again too


def raw(d, data, timeout=5):
    """Send data on a fresh connection; everything the daemon sends until it closes (b"" for
    nothing) and how long that took."""
    host, port = d.metrics.rsplit(":", 1)
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while part := s.recv(65536):
                out += part
        except ConnectionResetError:
            pass
    return out, time.monotonic() - start


def test_the_gate_answers_probes_and_closes_heads_that_never_end_or_are_too_long(lab):
    d = lab.daemon()
    out, _ = raw(d, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 3\r\n" in out, out
    assert out.endswith(b"\r\n\r\n"), out  # no body for HEAD
    out, _ = raw(d, b"GET /readyz HTTP/1.0\n\n")  # bare LFs end a head as well
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nready\n"), out
    # A probe on a kept-alive scrape connection is libmicrohttpd's, with the same answer.
    host, port = d.metrics.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    for path, want in (("/metrics", b"h2steer_build_info"), ("/healthz", b"ok\n")):
        c.request("GET", path)
        r = c.getresponse()
        assert r.status == 200 and want in r.read()
    c.close()
    # Closed: a head that never ends, after 2 s; one over 8 KiB at once.
    out, took = raw(d, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert out == b"" and 1.5 < took < 3.5, (out, took)
    out, took = raw(d, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
    assert out == b"" and took < 1, (out, took)
    m = d.scrape()
    assert metric(m, "h2steer_metrics_connections_dropped_total", reason="timeout") == 1
    assert metric(m, "h2steer_metrics_connections_dropped_total", reason="too_large") == 1
    assert "no whole request head within 2000 ms: closed" in d.proc.text()
