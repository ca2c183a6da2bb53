#!/usr/bin/python3
"""Clients that make a server hold memory for them (python3-h2 and raw frames), for the memory
tests: many connections at once, each with many streams, held until stdin closes.

usage: mem_peers.py HOST:PORT MODE CONNS STREAMS SIZE
  noread   each connection grants the server huge windows (SETTINGS_INITIAL_WINDOW_SIZE and a
           connection WINDOW_UPDATE to 2^31-1), sends STREAMS requests to
           /h2steer.test.Echo/ServerStream for SIZE bytes of 64 KiB messages each (a grpc-go
           backend makes them as flow control lets them go), half of them 1.5 s after the
           others, and never reads its socket.
  upload   each connection opens STREAMS streams with x-stall: 1 (tests/grpc/h2backend.py
           then never reads them) and sends SIZE bytes of body on each, as far as the
           windows go; it reads the server's frames (its WINDOW_UPDATEs) meanwhile.
Prints HOLDING with one JSON line (connections up, body bytes sent, reset streams seen) once
nothing moved for 1 s (at most 30 s after the start), then holds every connection open until
stdin closes, and exits 0.
"""
import json
import select
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BIG = 2**31 - 1
SETTLE_S, MAX_S = 1.0, 30.0
MSG = 65536  # noread: the response comes as messages of this size (made as they are sent)


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def headers(target, path, extra):
    return [(":method", "POST"), (":scheme", "http"), (":authority", target), (":path", path),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


def noread(host, port, target, conns, streams, size):
    """Raw frames: nothing of the server's is ever read, so no library state is needed. Half
    the requests first, the rest 1.5 s later (when the responses of the first have piled up)."""
    import hpack
    socks, encs = [], []
    for _ in range(conns):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(PREFACE + frame(4, 0, 0, struct.pack(">HI", 4, BIG)) +  # INITIAL_WINDOW_SIZE
                  frame(8, 0, 0, struct.pack(">I", BIG - 65535)))         # WINDOW_UPDATE
        socks.append(s)
        encs.append(hpack.Encoder())
    for part in (range(0, streams // 2), range(streams // 2, streams)):
        for s, enc in zip(socks, encs):
            out = []
            for i in part:
                sid = 1 + 2 * i
                block = enc.encode(headers(target, "/h2steer.test.Echo/ServerStream",
                                           [("x-count", str(max(size // MSG, 1))),
                                            ("x-msg-size", str(MSG))]))
                out.append(frame(1, 4, sid, block))                       # HEADERS, END_HEADERS
                out.append(frame(0, 1, sid, b"\x00\x00\x00\x00\x00"))     # DATA, END_STREAM
            s.sendall(b"".join(out))
        if part.start == 0:
            time.sleep(1.5)
    return socks, {"conns": len(socks), "sent": 0, "resets": 0}


def upload(host, port, target, conns, streams, size):
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    peers = []
    for _ in range(conns):
        s = socket.create_connection((host, port), timeout=10)
        s.setblocking(False)
        c = h2.connection.H2Connection(cfg)
        c.initiate_connection()
        left = {}
        for _ in range(streams):
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, headers(target, "/h2steer.test.Echo/ClientStream",
                                        [("x-stall", "1")]))
            left[sid] = size
        peers.append([s, c, left])
    sent = resets = 0
    start = last_move = time.monotonic()
    chunk = b"x" * 16384
    while time.monotonic() - last_move < SETTLE_S and time.monotonic() - start < MAX_S:
        moved = False
        for p in peers:
            s, c, left = p
            for sid, n in list(left.items()):
                room = min(n, c.local_flow_control_window(sid), c.max_outbound_frame_size)
                if room > 0:
                    c.send_data(sid, chunk[:room])
                    left[sid] -= room
                    sent += room
                    moved = True
            data = c.data_to_send()
            if data:
                try:
                    s.sendall(data)
                except BlockingIOError:
                    pass  # the socket is full: the rest would block; what matters is held
        r, _, _ = select.select([p[0] for p in peers], [], [], 0.05)
        for s in r:
            p = next(p for p in peers if p[0] is s)
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                continue
            for ev in p[1].receive_data(data):
                if isinstance(ev, h2.events.StreamReset):
                    resets += 1
                    p[2].pop(ev.stream_id, None)
                if isinstance(ev, h2.events.WindowUpdated):
                    moved = True
        if moved:
            last_move = time.monotonic()
    return [p[0] for p in peers], {"conns": len(peers), "sent": sent, "resets": resets}


def main():
    if len(sys.argv) != 6 or sys.argv[2] not in ("noread", "upload"):
        print(__doc__, file=sys.stderr)
        return 2
    target, mode = sys.argv[1], sys.argv[2]
    conns, streams, size = (int(a) for a in sys.argv[3:6])
    host, port = target.rsplit(":", 1)
    t0 = time.monotonic()
    socks, out = (noread if mode == "noread" else upload)(host, int(port), target, conns,
                                                         streams, size)
    out["setup_s"] = round(time.monotonic() - t0, 2)
    print("HOLDING " + json.dumps(out), flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
