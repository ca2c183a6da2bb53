"""What h2steer cannot parse is balanced per connection: a service declared `mode l4` by the
connect hooks themselves (the daemon out of the path), and on an ordinary service every
connection whose first bytes are not the h2c preface (TLS, HTTP/1.1) by the daemon, relayed
as bytes to one backend."""
import json
import os
import subprocess
from collections import Counter

import pytest

import h2slab

TLS_PEER = os.path.join(h2slab.TOP, "tests", "grpc", "tls_peer.py")
HTTP1_PEER = os.path.join(h2slab.TOP, "tests", "grpc", "http1_peer.py")
NAME = "greeter.test"


@pytest.fixture
def cert(lab):
    """A self-signed certificate for NAME, made for this test."""
    crt, key = os.path.join(lab.tmp, "tls.crt"), os.path.join(lab.tmp, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "1", "-subj", f"/CN={NAME}",
                    "-addext", f"subjectAltName=DNS:{NAME}"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def tls_backends(lab, cert, n):
    out = []
    for i in range(n):
        port = h2slab.free_port()
        p = lab.spawn(f"tls-be{i + 1}", [h2slab.PYTHON, TLS_PEER, "server", "--listen",
                                        f"127.0.0.1:{port}", "--id", f"tls{i + 1}", "--cert",
                                        cert[0], "--key", cert[1]])
        p.wait_for("READY", timeout=20)
        out.append(f"127.0.0.1:{port}")
    return out


def tls_client(lab, vip, cert, channels, rpcs=4):
    r = lab.run([h2slab.PYTHON, TLS_PEER, "client", "--target", vip, "--ca", cert[0], "--name",
                 NAME, "--channels", str(channels), "--rpcs", str(rpcs)], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def per_connection(channels):
    """Each connection's RPCs on one backend; how many connections each backend got."""
    for seen in channels:
        assert len(set(seen)) == 1, channels
    return Counter(seen[0] for seen in channels)


def test_tls_grpc_through_an_l4_service_is_balanced_per_connection_by_the_hooks(lab, cert):
    bes = tls_backends(lab, cert, 3)
    vip = lab.vip()
    d = lab.daemon(services={vip: {"backends": bes, "mode": "l4"}})
    assert lab.cli(d, "service", "list", vip, json_out=True).json[0]["mode"] == "l4"
    r = tls_client(lab, vip, cert, channels=24)
    assert r["errors"] == [], r["errors"]
    spread = per_connection(r["channels"])
    print(f"mode l4, 24 TLS connections open together: {dict(spread)}")
    # Two random choices, the one with fewer connections open: every backend gets some and
    # none two thirds. (Connects that overlap do not see each other's counts, so no tighter
    # share holds every time: a CI run saw 12 connections split 7/5/0. Pinned to one backend,
    # or left out, fails here; purely random, one left out of 24 is ~2 in 10 000.)
    assert len(spread) == 3 and max(spread.values()) <= 16, spread
    stats = lab.cli(d, "stats", json_out=True).json
    assert stats["kernel"]["l4_mode"] >= 24, stats["kernel"]
    assert stats["kernel"]["captured"] == 0, "the daemon is not in the path"
    # The connections are closed: the hooks' counts are back to zero.
    listed = lab.cli(d, "backend", "list", vip, json_out=True).json
    assert all(b["l4_conns"] == 0 for b in listed), listed


def test_tls_grpc_through_an_ordinary_service_is_spliced(lab, cert):
    bes = tls_backends(lab, cert, 3)
    vip = lab.vip()
    d = lab.daemon(services={vip: bes})
    r = tls_client(lab, vip, cert, channels=6)
    assert r["errors"] == [], r["errors"]
    spread = per_connection(r["channels"])
    print(f"mode l7, 6 TLS connections (not h2c: spliced): {dict(spread)}")
    assert len(spread) == 3, spread  # round robin over connections
    scraped = h2slab.parse_metrics(d.http("/metrics")[1])
    total = sum(v for (name, _), v in scraped.items()
                if name == "h2steer_spliced_connections_total")
    assert total == 6, total


def test_http1_and_h2c_clients_share_one_service(lab):
    """One l7 service, HTTP/1.1 backends: HTTP/1.1 connections are relayed whole; an h2c
    client of the same service is still served per RPC (here: answered by h2steer, as the
    backends do not speak HTTP/2 — what matters is that the daemon told them apart)."""
    addrs = []
    for i in range(3):
        port = h2slab.free_port()
        p = lab.spawn(f"http1-be{i + 1}", [h2slab.PYTHON, HTTP1_PEER, "server", "--listen",
                                          f"127.0.0.1:{port}", "--id", f"web{i + 1}"])
        p.wait_for("READY", timeout=20)
        addrs.append(f"127.0.0.1:{port}")
    vip = lab.vip()
    d = lab.daemon(services={vip: addrs})
    r = lab.run([h2slab.PYTHON, HTTP1_PEER, "client", "--target", vip, "--conns", "6",
                 "--requests", "5"], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    conns = json.loads(r.stdout.strip().splitlines()[-1])["conns"]
    spread = per_connection(conns)
    print(f"HTTP/1.1, 6 keep-alive connections x 5 requests: {dict(spread)}")
    assert sum(len(c) for c in conns) == 30 and len(spread) == 3, conns
    spliced = spliced_total(d)
    assert spliced == 6, spliced
    # An h2c client reaches the daemon's HTTP/2 side: its RPC fails there (the backends speak
    # HTTP/1.1 only), not in a byte relay.
    h2 = lab.client(vip, "unary", "-n", 1, check=False)
    assert h2["ok"] == 0 and h2["errors"], h2
    assert spliced_total(d) == 6, "the h2c client was spliced"
    scraped = d.scrape()
    assert ("h2steer_spliced_connections", frozenset()) in scraped, sorted(scraped)
    assert scraped[("h2steer_spliced_connections", frozenset())] == 0  # all closed by now


def spliced_total(d):
    return sum(v for (name, _), v in d.scrape().items()
               if name == "h2steer_spliced_connections_total")


def test_non_h2c_clients_that_cannot_be_served_are_closed_and_harm_nothing(lab):
    """Bytes for a service whose backends are all gone, and a client that sends the start of
    a preface and stalls: each is closed on its own; h2c clients of the daemon carry on."""
    dead = h2slab.Backend(lab, "dead")
    vip_dead, vip_ok = lab.vip(), lab.vip()
    bes = lab.backends(2)
    d = lab.daemon(config=h2slab.services_yaml({vip_dead: [dead.addr],
                                                vip_ok: [b.addr for b in bes]}) +
                   "handshake_timeout_ms: 500\n")
    dead.stop()
    host, port = vip_dead.rsplit(":", 1)
    # Closed with nothing answered: an EOF, or a reset since its request was never read.
    code = ("import socket\ns=socket.create_connection(({!r},{}),timeout=5)\n"
            "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
            "try:\n print('closed' if not s.recv(100) else 'answered')\n"
            "except ConnectionResetError:\n print('closed')\n").format(host, port)
    r = lab.run([h2slab.PYTHON, "-c", code])
    assert r.returncode == 0 and r.stdout.strip() == "closed", r
    host, port = vip_ok.rsplit(":", 1)
    code = ("import socket,time\ns=socket.create_connection(({!r},{}),timeout=5)\n"
            "s.sendall(b'PRI * HT')\nt=time.monotonic()\nb=s.recv(100)\n"
            "while b: b=s.recv(100)\nprint(round(time.monotonic()-t,2))\n").format(host, port)
    r = lab.run([h2slab.PYTHON, "-c", code])
    assert r.returncode == 0 and float(r.stdout) < 3, r  # h2c that never finished: timed out
    assert lab.client(vip_ok, "unary", "-n", 200, "-c", 4)["ok"] == 200
    assert "no backend reachable" in d.proc.text()
