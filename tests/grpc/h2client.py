#!/usr/bin/python3
"""A raw HTTP/2 client (python3-h2) for what gRPC client libraries cannot show: the frames
themselves. One connection, one request to /h2steer.test.Echo/Unary, one JSON line out.

usage: h2client.py HOST:PORT MODE
  informational  request with x-informational: 1 (answered by tests/grpc/h2backend.py with a
                 103 before the final response); reports every :status received, in order
  goaway         request with x-sleep-ms: 800, then at once a GOAWAY from the client; reports
                 whether the response still arrived and whether the server then closed
"""
import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events


def main():
    target, mode = sys.argv[1], sys.argv[2]
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
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
