#!/usr/bin/python3
"""Hold N idle HTTP/2 client connections open to ADDR:PORT, so that a benchmark can read what
they cost the server (make bench reads each balancer's RSS with 1000 of them).

Each connection sends the client preface and an empty SETTINGS frame, waits for the server's
first frame (its SETTINGS: from then on the server holds a session for it) and acknowledges it.
When all are up, or the open deadline has passed, prints `OPEN <up>/<N>` and holds them until
SIGTERM, SIGINT or --hold-s, then closes them and exits: 0 when all N were up, 1 otherwise.
Connections are opened in batches, so a server's accept backlog never overflows.
"""
import argparse
import resource
import selectors
import signal
import socket
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type 4, no flags, stream 0
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
BATCH = 100


def raise_fd_limit(needed):
    """The hard limit too when allowed (root); else up to it: beyond it the connects fail
    (EMFILE) and OPEN says how many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(needed, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def open_batch(host, port, count, deadline, source=None):
    """Connect `count` sockets and complete each one's HTTP/2 handshake; returns those that
    got the server's first frame before the deadline (the others are closed)."""
    pending = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=max(deadline - time.monotonic(), 0.1),
                                     source_address=(source, 0) if source else None)
        s.sendall(PREFACE + EMPTY_SETTINGS)
        s.setblocking(False)
        pending.append(s)
    up = []
    with selectors.DefaultSelector() as sel:
        for s in pending:
            sel.register(s, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(deadline - time.monotonic(), 0)):
                s = key.fileobj
                sel.unregister(s)
                try:
                    first = s.recv(65536)
                except OSError:
                    first = b""
                if first:
                    s.setblocking(True)
                    s.sendall(SETTINGS_ACK)
                    up.append(s)
                else:  # closed by the server before its first frame
                    s.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()
    return up


def hold(seconds):
    """Sleep until SIGTERM/SIGINT or `seconds` have passed."""
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    end = time.monotonic() + seconds
    while not stop and time.monotonic() < end:
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="HOST:PORT (IPv4)")
    ap.add_argument("-n", type=int, default=1000, help="connections (default 1000)")
    ap.add_argument("--open-s", type=float, default=20.0,
                    help="deadline for opening them all (default 20)")
    ap.add_argument("--hold-s", type=float, default=60.0,
                    help="longest time they are held open (default 60)")
    ap.add_argument("--source", help="connect from this address (a loopback one: another "
                                     "source for the server's per-source caps)")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    raise_fd_limit(args.n + 64)
    deadline = time.monotonic() + args.open_s
    conns = []
    try:
        while len(conns) < args.n and time.monotonic() < deadline:
            conns += open_batch(host, int(port), min(BATCH, args.n - len(conns)), deadline,
                                args.source)
    except OSError as e:
        print(f"connect {args.target}: {e}", file=sys.stderr)
    print(f"OPEN {len(conns)}/{args.n}", flush=True)
    hold(args.hold_s)
    for s in conns:
        s.close()
    return 0 if len(conns) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
