"""Hostile and broken peers on the local interfaces (issue: every abuse bounded, no client able
to hurt another): control-socket requests that never end, a takeover that never says it
serves, a config that is a FIFO."""
import json
import os
import socket
import time

import h2slab
from h2slab import metric


def ask(control, line, timeout=5):
    """One control request; its whole answer (b"" when the daemon closed without one)."""
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(timeout)
    c.connect(control)
    c.sendall(line)
    out = b""
    while True:
        part = c.recv(65536)
        if not part:
            break
        out += part
    c.close()
    return out


def test_control_requests_that_never_end_are_closed_and_the_cli_still_answers(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]})
    control = lab.cli(d, "status", json_out=True).json["control"]
    held = []
    for _ in range(40):
        c = socket.socket(socket.AF_UNIX)
        c.connect(control)
        c.sendall(b"status")  # no newline, ever
        held.append(c)
    # The daemon still answers the CLI while they hang on.
    assert lab.cli(d, "status", json_out=True).json["daemon"]["pid"] == d.proc.pid
    # ... and closes them once their time is up (5 s).
    t0 = time.monotonic()
    for c in held:
        c.settimeout(10)
        assert c.recv(100) == b"", "a request without its newline got an answer"
        c.close()
    assert time.monotonic() - t0 < 9
    d.proc.wait_for("did not end its line within 5000 ms: closed")
    text = d.proc.text()
    assert text.count("did not end its line") == 1, "one line per cause per interval"
    # A NUL inside the line is refused with a reason, not matched as a shorter request.
    answer = json.loads(ask(control, b"status\x00garbage\n"))
    assert "NUL" in answer["error"], answer


def test_a_config_that_is_a_fifo_is_refused_at_once(lab):
    fifo = os.path.join(lab.tmp, "config.fifo")
    os.mkfifo(fifo)
    r = lab.run([h2slab.DAEMON, "--check-config", fifo], in_cgroup=False, timeout=10)
    assert r.returncode != 0 and "not a regular file" in r.stderr, (r.returncode, r.stderr)


def test_a_takeover_that_never_says_ready_gives_the_node_back(lab):
    """A new daemon that took the sockets and then froze: after takeover_timeout_ms the old
    one serves again, control socket and metrics included."""
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]}, extra=["--set", "takeover_timeout_ms=2000"])
    control = lab.cli(d, "status", json_out=True).json["control"]
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(5)
    c.connect(control)
    c.sendall(b"takeover " + d.pin_dir.encode() + b"\n")
    fds = socket.recv_fds(c, 4096, 64)
    assert fds[1], "no sockets handed over"
    for fd in fds[1]:
        os.close(fd)
    d.proc.wait_for("handing over to a new daemon")
    d.proc.wait_for("did not say it serves within 2000 ms", timeout=10)
    d.proc.wait_for("serving again", timeout=5)
    c.close()
    assert lab.cli(d, "status", json_out=True).json["daemon"]["pid"] == d.proc.pid
    assert d.http("/healthz")[0] == 200
    r = lab.client(vip, "unary", "-n", 20)
    assert r["ok"] == 20, r


def test_requests_that_are_not_grpc_eject_no_backend(lab):
    """Issue 15: grpc-go resets a plain HTTP/2 GET (RST_STREAM PROTOCOL_ERROR) and fails a
    gRPC call whose body is not gRPC framing. Both are the client's doing and say nothing of
    the backend, so however many a client sends, no backend is ejected and the next client's
    RPCs reach every backend."""
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    curl = ["curl", "--http2-prior-knowledge", "-s", "-o", "/dev/null", "-m", "10"]
    # Ten per backend (round robin): twice the 5 failures in a row that eject.
    gets = [lab.run(curl + [f"http://{vip}/"]) for _ in range(30)]
    # curl exit 92: the stream was reset (HTTP/2 stream not closed cleanly).
    assert [r.returncode for r in gets] == [92] * 30, gets[0].stderr
    grpc = ["-H", "content-type: application/grpc", "-H", "te: trailers",
            "--data-binary", "not gRPC framing", f"http://{vip}/h2steer.test.Echo/Unary"]
    for _ in range(9):
        lab.run(curl + grpc)
    r = lab.client(vip, "unary", "-n", 300, "-c", 3)
    assert r["ok"] == 300 and r["by_backend"] == {b.id: 100 for b in bes}, r
    m = d.scrape()
    for b in bes:
        assert metric(m, "h2steer_ejections_total", backend=b.addr, reason="outlier") == 0
    assert "ejected" not in d.proc.text()
