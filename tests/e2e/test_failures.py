"""What goes wrong stays contained: a dead backend, a backend killed mid-RPC, and hostile or
broken client connections harm nothing else."""
import os
import socket
import struct
import time

import h2slab

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def test_backend_down_rpcs_go_to_the_others_none_hang(lab):
    bes = lab.backends(2)
    dead = f"127.0.0.1:{h2slab.free_port()}"  # nothing listens there
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr, dead, bes[1].addr]})
    t0 = time.monotonic()
    r = lab.client(vip, "unary", "-n", 600, "-c", 4)
    assert r["ok"] == 600 and r["errors"] == {}
    assert set(r["by_backend"]) == {b.id for b in bes}
    assert time.monotonic() - t0 < 20
    assert "connect failed" in d.proc.text()


def test_backend_killed_mid_rpc_fails_only_its_rpcs(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    running = lab.client_async(vip, "concurrent", "-streams", 30, "-sleep-ms", 3000)
    time.sleep(1.0)
    bes[0].stop(__import__("signal").SIGKILL)
    running.p.wait(30)
    import json
    r = json.loads(running.text().strip().splitlines()[-1])
    assert set(r["errors"]) == {"Unavailable"}, r
    assert 1 <= r["errors"]["Unavailable"] <= 15 and r["ok"] + r["errors"]["Unavailable"] == 30
    # New RPCs avoid the dead backend at once and all succeed.
    r2 = lab.client(vip, "unary", "-n", 300, "-c", 4)
    assert r2["ok"] == 300 and bes[0].id not in r2["by_backend"]


def _captured_socket(lab, vip):
    """A raw TCP connection from inside the captured cgroup (a hand-made hostile client)."""
    host, port = vip.rsplit(":", 1)
    code = (
        "import socket,sys,struct,time\n"
        f"s=socket.create_connection(('{host}',{port}),timeout=5)\n"
        "data=sys.stdin.buffer.read()\n"
        "s.sendall(data)\n"
        "out=b''\n"
        "try:\n"
        "  while True:\n"
        "    b=s.recv(65536)\n"
        "    if not b: break\n"
        "    out+=b\n"
        "except Exception as e:\n"
        "  sys.stderr.write(repr(e))\n"
        "sys.stdout.write(out.hex())\n")
    return code


def _hostile(lab, vip, data):
    import subprocess
    r = subprocess.run([h2slab.PYTHON, "-c", _captured_socket(lab, vip)], input=data,
                       capture_output=True, timeout=20,
                       preexec_fn=lambda: h2slab._join_cgroup(lab.cgroup))
    return bytes.fromhex(r.stdout.decode()), r.stderr.decode()


def test_garbage_instead_of_preface_closes_only_that_connection(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    good = lab.client_async(vip, "unary", "-n", 2000, "-c", 4, "-interval-us", 1000)
    out, err = _hostile(lab, vip, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
    assert b"HTTP/1.1 200" not in out  # closed, not served
    assert good.p.wait(60) == 0, good.tail()


def test_frame_larger_than_max_frame_size_gets_goaway_and_close(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    good = lab.client_async(vip, "unary", "-n", 2000, "-c", 4, "-interval-us", 1000)
    oversized = frame(0x0, 0, 1, b"x" * 100, length=20000)  # DATA, 20000 > 16384
    out, err = _hostile(lab, vip, PREFACE + frame(0x4, 0, 0) + oversized + b"x" * 19900)
    # Somewhere in what came back: GOAWAY (type 7) with FRAME_SIZE_ERROR (6).
    pos, goaway = 0, None
    while pos + 9 <= len(out):
        n = int.from_bytes(out[pos:pos + 3], "big")
        if out[pos + 3] == 7:
            goaway = out[pos + 9:pos + 9 + n]
        pos += 9 + n
    assert goaway is not None, out.hex()
    assert int.from_bytes(goaway[4:8], "big") == 6
    assert good.p.wait(60) == 0, good.tail()


def test_client_vanishing_mid_stream_cancels_its_backend_streams(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    lab.daemon(services={vip: [bes[0].addr]})
    c = lab.client_async(vip, "concurrent", "-streams", 20, "-sleep-ms", 60000)
    time.sleep(1.0)
    c.stop(__import__("signal").SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and bes[0].stats(lab)["in_flight"]:
        time.sleep(0.1)
    st = bes[0].stats(lab)
    assert st["in_flight"] == 0, st
    r = lab.client(vip, "unary", "-n", 50)
    assert r["ok"] == 50


def test_silent_client_is_closed_after_the_handshake_timeout(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    cfg = h2slab.services_yaml({vip: [bes[0].addr]}) + "handshake_timeout_ms: 500\n"
    d = lab.daemon(config=cfg)
    host, port = vip.rsplit(":", 1)
    code = (f"import socket,time\ns=socket.create_connection(('{host}',{port}),timeout=5)\n"
            "t=time.monotonic()\nb=s.recv(100)\n"  # the daemon's SETTINGS
            "while b: b=s.recv(100)\n"
            "print(round(time.monotonic()-t,2))")
    r = lab.run([h2slab.PYTHON, "-c", code])
    assert r.returncode == 0, r.stderr
    assert 0.4 <= float(r.stdout) < 3, r.stdout
    assert "no HTTP/2 preface" in d.proc.text()
    assert lab.client(vip, "unary", "-n", 20)["ok"] == 20


def test_frozen_backend_is_skipped_not_waited_on(lab):
    """A backend that accepts TCP but never speaks HTTP/2 (SIGSTOP): its RPCs go elsewhere."""
    import signal
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    os.kill(bes[0].proc.pid, signal.SIGSTOP)
    try:
        r = lab.client(vip, "unary", "-n", 100, "-c", 4, "-rpc-timeout", "10s")
    finally:
        os.kill(bes[0].proc.pid, signal.SIGCONT)
    assert r["ok"] == 100 and r["by_backend"] == {bes[1].id: 100}, r
    assert r["elapsed_s"] < 8, r  # one SETTINGS timeout (2 s), not one per RPC
    assert "no HTTP/2 SETTINGS" in d.proc.text()


def test_backend_removed_while_it_has_several_connections(lab):
    """Two connections to one backend torn down in one loop turn (was a use-after-free)."""
    be = h2slab.Backend(lab, "narrow", extra=["-max-streams", "1"])
    other = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr, other.addr]})
    r = lab.client(vip, "concurrent", "-streams", 12, "-sleep-ms", 300)
    assert r["ok"] == 12
    lab.cli(d, "backend", "del", vip, be.addr)
    time.sleep(0.5)  # the idle connections close
    r = lab.client(vip, "unary", "-n", 50)
    assert r["ok"] == 50 and r["by_backend"] == {other.id: 50}
