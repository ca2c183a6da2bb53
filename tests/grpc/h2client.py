#!/usr/bin/python3
"""A raw HTTP/2 client (python3-h2) for what gRPC client libraries cannot show: the frames
themselves. One connection, one request to /h2steer.test.Echo/Unary, one JSON line out.

usage: h2client.py HOST:PORT MODE [ARG]
  informational  request with x-informational: 1 (answered by tests/grpc/h2backend.py with a
                 103 before the final response); reports every :status received, in order
  goaway         request with x-sleep-ms: 800, then at once a GOAWAY from the client; reports
                 whether the response still arrived and whether the server then closed
  hog SECONDS    a hostile client: 100 requests for 4 MB responses, never a WINDOW_UPDATE
                 (it takes one default window, 64 KiB, and no more), held open for SECONDS
  slowread BYTES a slow reader: asks for a BYTES response with a 16 KiB receive buffer and
                 reads it at about 16 MB/s; reports how much arrived
"""
import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events


def hog(sock, conn, target, seconds):
    """Open streams whose responses can never flow (window 0) and sit on them."""
    base = [(":method", "POST"), (":scheme", "http"), (":authority", target),
            (":path", "/h2steer.test.Echo/Unary"), ("content-type", "application/grpc"),
            ("te", "trailers"), ("x-response-size", str(4 << 20))]
    for _ in range(100):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, base)
        conn.send_data(sid, b"\x00\x00\x00\x00\x00", end_stream=True)
    sock.sendall(conn.data_to_send())
    got, deadline = 0, time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.DataReceived):
                got += len(ev.data)  # never acknowledged
        sock.sendall(conn.data_to_send())
    held = time.monotonic() - (deadline - seconds)
    print(json.dumps({"mode": "hog", "received": got, "held_s": round(held, 1)}))
    return 0


def slowread(sock, conn, target, size):
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", target),
               (":path", "/h2steer.test.Echo/Unary"), ("content-type", "application/grpc"),
               ("te", "trailers"), ("x-response-size", str(size))]
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, headers)
    conn.send_data(sid, b"\x00\x00\x00\x00\x00", end_stream=True)
    sock.sendall(conn.data_to_send())
    got, status, t0 = 0, None, time.monotonic()
    while time.monotonic() - t0 < 60:
        chunk = sock.recv(16384)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.DataReceived):
                got += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                status = dict(ev.headers).get(b"grpc-status", b"").decode()
        sock.sendall(conn.data_to_send())
        if status is not None:
            break
        time.sleep(0.001)  # ~16 KiB per ms at most
    print(json.dumps({"mode": "slowread", "received": got, "grpc_status": status,
                      "elapsed_ms": int((time.monotonic() - t0) * 1000)}))
    return 0


def main():
    target, mode = sys.argv[1], sys.argv[2]
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if mode == "slowread":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    if mode == "hog":
        return hog(sock, conn, target, float(sys.argv[3]))
    if mode == "slowread":
        return slowread(sock, conn, target, int(sys.argv[3]))
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", target),
               (":path", "/h2steer.test.Echo/Unary"), ("content-type", "application/grpc"),
               ("te", "trailers")]
    if mode == "informational":
        headers.append(("x-informational", "1"))
    elif mode == "goaway":
        headers.append(("x-sleep-ms", "800"))
    else:
        print(json.dumps({"error": f"unknown mode {mode}"}))
        return 2
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, headers)
    body = b"raw-h2-client"
    conn.send_data(sid, b"\x00" + struct.pack(">I", len(body)) + body, end_stream=True)
    sock.sendall(conn.data_to_send())
    if mode == "goaway":
        # GOAWAY(last_stream_id 0, NO_ERROR) written by hand: python-h2 would stop reading
        # after its own close_connection(), and the point is that this stream still finishes.
        header = struct.pack(">I", 8)[1:] + bytes([0x7, 0x0]) + struct.pack(">I", 0)
        sock.sendall(header + struct.pack(">II", 0, 0))

    out = {"mode": mode, "statuses": [], "data": b"", "grpc_status": None, "ended": False,
           "closed_by_server": False}
    t0 = time.monotonic()
    deadline = t0 + 10
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            out["closed_by_server"] = True
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, (h2.events.InformationalResponseReceived,
                               h2.events.ResponseReceived)):
                out["statuses"].append(dict(ev.headers)[b":status"].decode())
            elif isinstance(ev, h2.events.DataReceived):
                out["data"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                out["grpc_status"] = dict(ev.headers).get(b"grpc-status", b"").decode()
            elif isinstance(ev, h2.events.StreamEnded):
                out["ended"] = True
                out["elapsed_ms"] = int((time.monotonic() - t0) * 1000)
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
        if out["ended"] and mode == "informational":
            break
    out["echoed"] = out.pop("data")[5:] == body
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
