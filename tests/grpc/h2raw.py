#!/usr/bin/python3
"""A raw HTTP/2 client: sends exactly the frames a script says, legal or not, and reports every
frame the server sent back, as one JSON line. For conformance (tests/e2e/test_rfc9113.py) and
floods (tests/e2e/test_h2floods.py), where client libraries refuse to misbehave.

usage: h2raw.py HOST:PORT SCRIPT_JSON|@FILE [--source IP] [--connections N --seconds S]
--source: connect from that address. --connections: run the script on N connections one after
another (each closed after it), for at most S seconds, as a client reconnecting after each
GOAWAY does; the output is then {"connections": [{"sent", "closed", "goaway", "last",
"elapsed_ms"}], "wall_ms"}.
SCRIPT_JSON is a list of steps (stream ids and codes as numbers):
  ["settings", [[id, value], ...]]        a SETTINGS frame (the preface and an empty SETTINGS
                                          go first unless the script starts with "nopreface")
  ["headers", sid, HEADERS, end_stream, {"end_headers": true, "priority": [dep, weight]}]
                                          HEADERS: a list of [name, value], or "grpc" for a
                                          well-formed gRPC request to /h2steer.test.Echo/Unary
                                          (+ ["+grpc", [name, value], ...] to add fields)
  ["continuation", sid, HEADERS, end_headers]
  ["data", sid, PAYLOAD, end_stream]      PAYLOAD: a string, or {"grpc": "text"} (one gRPC
                                          message), or {"zeros": n}
  ["rst", sid, code]  ["ping"]  ["window_update", sid, increment]  ["priority", sid, dep]
  ["goaway", last_sid, code]  ["raw", type, flags, sid, hex_payload]
  ["batch", [STEP, ...]]                  the steps' frames in one write
  ["preface"]                             the preface and an empty SETTINGS (after
                                          "nopreface": in a batch, with what follows)
  ["repeat", n, STEP]                     STEP n times, written in batches (floods)
  ["streams", n, seconds, HOW]            n new streams (ids counting up from the highest
                                          used), for at most seconds, until the server closes;
                                          HOW: "rst" each HEADERS then RST_STREAM(CANCEL) at
                                          once (Rapid Reset), "window_overflow" then a
                                          WINDOW_UPDATE taking its window over 2^31-1,
                                          "malformed" an uppercase field name (both make the
                                          server reset it: MadeYouReset; in rounds of 64, each
                                          after the server reset the last), "ok" a request
  ["flood", seconds, max_n, STEP]         STEP as fast as the server takes it, for at most
                                          seconds and max_n frames, until it closes
  ["read", ms]                            wait up to ms for frames (ends early when closed)
  ["until", ms, "stream_end" | "goaway", sid]   wait until that frame arrived (or ms)
The server's SETTINGS are acknowledged and its DATA credited, as any client would.
Output: {"frames": [{"type", "sid", "flags", ...}], "closed", "sent", "elapsed_ms", "error"}
with per frame "ms" and "rd" (which recv() completed it: frames the server wrote at once share
one), "code" (RST_STREAM, GOAWAY), "last" and "debug" (GOAWAY), "headers" (HEADERS).
Frames of floods are summed in "counts" instead of listed.
"""
import json
import socket
import struct
import sys
import threading
import time

import hpack

TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
         5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
CODES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
         "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
         "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
         "HTTP_1_1_REQUIRED"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
END_STREAM, END_HEADERS, PADDED, PRIO, ACK = 0x1, 0x4, 0x8, 0x20, 0x1
LIST_MAX = 200  # frames listed one by one; the rest only counted


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def code_name(c):
    return CODES[c] if c < len(CODES) else str(c)


class Client:
    def __init__(self, target, source=None):
        host, port = target.rsplit(":", 1)
        host = host.strip("[]")
        self.authority = target
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.settimeout(10)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 24
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.frames, self.counts, self.ended = [], {}, set()
        self.closed = False
        self.sent = 0
        self.error = None
        self.block = b""
        self.max_sid = -1
        self.reads = 0  # recv() calls that returned bytes: a frame's "rd" is the one ending it
        self.t0 = time.monotonic()
        self.reader = threading.Thread(target=self.read_loop, daemon=True)

    # ---- sending ----
    def send(self, data, n=1):
        with self.lock:
            if self.closed:
                return False
        try:
            self.sock.sendall(data)
        except OSError as e:
            with self.lock:
                self.error = self.error or str(e)
                self.closed = True
                self.cond.notify_all()
            return False
        self.sent += n
        return True

    def grpc_headers(self, extra=()):
        return [(":method", "POST"), (":scheme", "http"), (":authority", self.authority),
                (":path", "/h2steer.test.Echo/Unary"), ("content-type", "application/grpc"),
                ("te", "trailers"), *[tuple(x) for x in extra]]

    def header_block(self, hdrs):
        if hdrs == "grpc":
            hdrs = self.grpc_headers()
        elif isinstance(hdrs, list) and hdrs and hdrs[0] == "+grpc":
            hdrs = self.grpc_headers(hdrs[1:])
        return self.enc.encode([tuple(h) for h in hdrs])

    def build(self, step):
        kind = step[0]
        if kind == "preface":
            return PREFACE + frame(4, 0, 0)
        if kind == "settings":
            return frame(4, 0, 0, b"".join(struct.pack(">HI", i, v) for i, v in step[1]))
        if kind == "headers":
            _, sid, hdrs, end = step[:4]
            self.max_sid = max(self.max_sid, sid)
            opt = step[4] if len(step) > 4 else {}
            flags = (END_STREAM if end else 0) | (END_HEADERS if opt.get("end_headers", True)
                                                  else 0)
            payload = b""
            if "priority" in opt:
                dep, weight = opt["priority"]
                flags |= PRIO
                payload = struct.pack(">IB", dep, weight)
            return frame(1, flags, sid, payload + self.header_block(hdrs))
        if kind == "continuation":
            _, sid, hdrs, end_headers = step
            return frame(9, END_HEADERS if end_headers else 0, sid,
                         self.header_block(hdrs) if hdrs else b"")
        if kind == "data":
            _, sid, payload, end = step
            if isinstance(payload, dict) and "grpc" in payload:
                body = payload["grpc"].encode()
                payload = b"\x00" + struct.pack(">I", len(body)) + body
            elif isinstance(payload, dict):
                payload = b"\x00" * payload["zeros"]
            else:
                payload = payload.encode()
            return frame(0, END_STREAM if end else 0, sid, payload)
        if kind == "rst":
            return frame(3, 0, step[1], struct.pack(">I", step[2]))
        if kind == "ping":
            return frame(6, 0, 0, b"h2steer!")
        if kind == "window_update":
            return frame(8, 0, step[1], struct.pack(">I", step[2]))
        if kind == "priority":
            return frame(2, 0, step[1], struct.pack(">IB", step[2], 15))
        if kind == "goaway":
            return frame(7, 0, 0, struct.pack(">II", step[1], step[2]))
        if kind == "raw":
            _, ftype, flags, sid, hexp = step
            return frame(ftype, flags, sid, bytes.fromhex(hexp))
        raise ValueError(f"unknown step {step!r}")

    def stream(self, sid, how):
        if how == "malformed":
            return self.build(["headers", sid, ["+grpc", ["X-Upper", "1"]], True])
        if how == "ok":
            return self.build(["headers", sid, "grpc", False]) + \
                self.build(["data", sid, {"grpc": "x"}, True])
        head = self.build(["headers", sid, "grpc", False])
        if how == "rst":
            return head + frame(3, 0, sid, struct.pack(">I", 8))
        if how == "window_overflow":
            return head + frame(8, 0, sid, struct.pack(">I", 2 ** 31 - 1))
        raise ValueError(f"unknown stream kind {how!r}")

    # ---- receiving ----
    def note(self, f):
        with self.lock:
            t = f["type"]
            if t == "RST_STREAM" or t in ("HEADERS", "DATA") and f["flags"] & END_STREAM:
                self.ended.add(f["sid"])
            self.counts[t] = self.counts.get(t, 0) + 1
            if len(self.frames) < LIST_MAX or t == "GOAWAY" or \
                    t in ("RST_STREAM", "HEADERS") and len(self.frames) < 4 * LIST_MAX:
                self.frames.append(f)
            self.cond.notify_all()

    def read_loop(self):
        buf = b""
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                self.reads += 1
                buf += chunk
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    payload, buf = buf[9:9 + length], buf[9 + length:]
                    self.on_frame(ftype, flags, sid, payload)
        except OSError as e:
            with self.lock:
                self.error = self.error or str(e)
        with self.lock:
            self.closed = True
            self.cond.notify_all()

    def on_frame(self, ftype, flags, sid, payload):
        f = {"type": TYPES.get(ftype, str(ftype)), "sid": sid, "flags": flags,
             "ms": int((time.monotonic() - self.t0) * 1000), "rd": self.reads}
        if ftype == 4 and not flags & ACK:
            self.send(frame(4, ACK, 0))
        elif ftype == 0 and payload:
            # Credit what arrived, connection and stream, as a reading client does.
            inc = struct.pack(">I", len(payload))
            self.send(frame(8, 0, 0, inc) + frame(8, 0, sid, inc), 0)
            f["len"] = len(payload)
        elif ftype == 3:
            f["code"] = code_name(int.from_bytes(payload[:4], "big"))
        elif ftype == 7:
            f["last"] = int.from_bytes(payload[:4], "big") & 0x7fffffff
            f["code"] = code_name(int.from_bytes(payload[4:8], "big"))
            f["debug"] = payload[8:].decode(errors="replace")
        elif ftype in (1, 9):
            if ftype == 1:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIO:
                    payload = payload[5:]
                self.block = b""
            self.block += payload
            if flags & END_HEADERS:
                try:
                    f["headers"] = {k: v for k, v in self.dec.decode(self.block, raw=False)}
                except Exception as e:  # noqa: BLE001 — reported, the test decides
                    f["headers"] = {"!error": str(e)}
        self.note(f)

    def wait(self, pred, ms):
        deadline = time.monotonic() + ms / 1000
        with self.cond:
            while not pred() and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return pred()

    # ---- the script ----
    def run(self, script):
        self.reader.start()
        if not script or script[0] != ["nopreface"]:
            self.send(PREFACE + frame(4, 0, 0))
        for step in script:
            if step == ["nopreface"]:
                continue
            kind = step[0]
            if kind == "read":
                self.wait(lambda: False, step[1])
            elif kind == "until":
                _, ms, what, sid = step
                if what == "stream_end":
                    self.wait(lambda: sid in self.ended, ms)
                else:
                    self.wait(lambda: "GOAWAY" in self.counts, ms)
            elif kind == "batch":
                self.send(b"".join(self.build(sub) for sub in step[1]), len(step[1]))
            elif kind == "repeat":
                _, n, sub = step
                batch = 256
                for i in range(0, n, batch):
                    k = min(batch, n - i)
                    if not self.send(b"".join(self.build(sub) for _ in range(k)), k):
                        break
            elif kind == "streams":
                _, n, seconds, how = step
                deadline, sid = time.monotonic() + seconds, self.max_sid + 2
                for i in range(0, n, 64):
                    batch = []
                    for _ in range(min(64, n - i)):
                        batch.append(self.stream(sid, how))
                        sid += 2
                    self.max_sid = sid - 2
                    if not self.send(b"".join(batch), len(batch)) or \
                            time.monotonic() > deadline:
                        break
                    if how != "rst":
                        # The server resets these: wait for it, so as to stay within its
                        # concurrent streams as such an attacker does.
                        last = sid - 2
                        self.wait(lambda: last in self.ended, 1000)
            elif kind == "flood":
                _, seconds, max_n, sub = step
                one = self.build(sub)
                data, deadline = one * 256, time.monotonic() + seconds
                while self.sent < max_n and time.monotonic() < deadline:
                    if not self.send(data, 256):
                        break
            else:
                self.send(self.build(step))
        with self.lock:
            out = {"frames": self.frames, "counts": self.counts, "closed": self.closed,
                   "sent": self.sent, "error": self.error,
                   "elapsed_ms": int((time.monotonic() - self.t0) * 1000)}
        return out


def reconnecting(target, script, source, n, seconds):
    """The script on up to n connections in turn, for at most seconds: a summary of each."""
    conns, t0 = [], time.monotonic()
    while len(conns) < n and time.monotonic() - t0 < seconds:
        c = Client(target, source)
        out = c.run(script)
        with c.lock:
            c.closed = True
        c.sock.close()
        g = [f for f in out["frames"] if f["type"] == "GOAWAY"]
        conns.append({"sent": out["sent"], "closed": out["closed"],
                      "goaway": g[0]["code"] if g else None,
                      "last": g[0]["last"] if g else None, "elapsed_ms": out["elapsed_ms"]})
    return {"connections": conns, "wall_ms": int((time.monotonic() - t0) * 1000)}


def main():
    args = sys.argv[1:]
    opts = {}
    while len(args) > 2 and args[-2].startswith("--"):
        opts[args[-2][2:]] = args[-1]
        args = args[:-2]
    target, script = args
    if script.startswith("@"):
        with open(script[1:]) as f:
            script = f.read()
    script = json.loads(script)
    if "connections" in opts:
        out = reconnecting(target, script, opts.get("source"), int(opts["connections"]),
                           float(opts.get("seconds", 30)))
    else:
        out = Client(target, opts.get("source")).run(script)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
