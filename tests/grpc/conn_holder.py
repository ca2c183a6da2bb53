#!/usr/bin/python3
"""Idle HTTP/2 client connections, many of them (python3-h2): what a client that opens
connections and sits on them does to the server. One JSON line out.

usage: conn_holder.py HOST:PORT N [--source ADDR] [--rpc] [--hold]
  Opens N connections (bound to ADDR first, when given), each sending the preface and SETTINGS
  as a gRPC client does, and sorts them within 3 s: served (the server's SETTINGS came),
  refused (closed or reset by the server; refused_within_s: how long after the last connect
  the last of those was seen closed) or pending (nothing came: waiting in the server's
  backlog).
  --rpc   then one unary RPC to /h2steer.test.Echo/Unary on the first served connection
          (grpc_status: its status)
  --hold  then prints HOLDING and keeps every connection open until stdin closes
"""
import argparse
import json
import selectors
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events

SETTLE_S = 3.0


class Conn:
    def __init__(self, target, source):
        host, port = target.rsplit(":", 1)
        host = host.strip("[]")
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.state = "pending"
        self.closed_s = 0.0
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.events = []
        try:
            self.sock.connect((host, int(port)))
        except ConnectionResetError:  # the server's reset came first
            self.state = "refused"
            return
        self.send()

    def send(self):
        try:
            self.sock.sendall(self.h2.data_to_send())
        except OSError:
            self.state = "refused"

    def receive(self, t0=None):
        """Read what came; False once the server closed (closed_s: since t0)."""
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:  # reset
            chunk = b""
        if not chunk:
            self.state = "refused"
            if t0 is not None:
                self.closed_s = time.monotonic() - t0
            return False
        for ev in self.h2.receive_data(chunk):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                self.state = "served"
            self.events.append(ev)
        self.send()  # our SETTINGS ACK
        return True


def sort(conns):
    sel = selectors.DefaultSelector()
    for c in conns:
        if c.state == "pending":
            sel.register(c.sock, selectors.EVENT_READ, c)
    t0 = time.monotonic()
    while sel.get_map() and time.monotonic() < t0 + SETTLE_S:
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            if not c.receive(t0) or c.state == "served":
                sel.unregister(c.sock)
    sel.close()


def rpc(c, target):
    """One unary RPC: its grpc-status, or None when none came within 5 s."""
    sid = c.h2.get_next_available_stream_id()
    c.h2.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", target),
                            (":path", "/h2steer.test.Echo/Unary"),
                            ("content-type", "application/grpc"), ("te", "trailers")])
    body = b"held"
    c.h2.send_data(sid, b"\x00" + struct.pack(">I", len(body)) + body, end_stream=True)
    c.send()
    c.sock.settimeout(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for ev in c.events:
            if isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                return dict(ev.headers).get(b"grpc-status", b"").decode()
        c.events.clear()
        if not c.receive():
            return None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("n", type=int)
    ap.add_argument("--source")
    ap.add_argument("--rpc", action="store_true")
    ap.add_argument("--hold", action="store_true")
    args = ap.parse_args()
    conns = [Conn(args.target, args.source) for _ in range(args.n)]
    sort(conns)
    out = {s: sum(c.state == s for c in conns) for s in ("served", "refused", "pending")}
    out["refused_within_s"] = round(max([c.closed_s for c in conns if c.state == "refused"],
                                        default=0), 3)
    served = [c for c in conns if c.state == "served"]
    if args.rpc:
        out["grpc_status"] = rpc(served[0], args.target) if served else None
    print(json.dumps(out), flush=True)
    if args.hold:
        print("HOLDING", flush=True)
        sys.stdin.read()
    for c in conns:
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
