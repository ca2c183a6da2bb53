#!/usr/bin/python3
"""A raw HTTP/2 (h2c, prior knowledge) gRPC-shaped test backend for h2steer.

Built directly on h2.connection.H2Connection (python3-h2 4.1) over plain
non-blocking sockets and one selectors loop (single thread: no locks needed,
every loop is bounded by the stop flag and a select timeout).

usage: h2backend.py --listen HOST:PORT --id NAME [--conn-window BYTES] [-v]
       HOST is IPv4, a name, or [IPv6]; port 0 picks a free port.
       Prints "READY <addr>" (flushed) once listening; exits 0 on SIGTERM/SIGINT.

Local SETTINGS: INITIAL_WINDOW_SIZE 65535, MAX_CONCURRENT_STREAMS 100,
MAX_HEADER_LIST_SIZE 65536 (ENABLE_PUSH 0). The connection-level receive
window is raised to --conn-window (default 16 MiB, more than 100 stalled
streams can hold) with a WINDOW_UPDATE on stream 0 right after the SETTINGS.

Per request, by request header:
  default           read the whole request body, then answer :status 200,
                    content-type application/grpc, x-backend-id NAME, the body
                    echoed as DATA, trailers grpc-status 0, x-backend-trailer NAME.
                    Received data is acknowledged (WINDOW_UPDATE) as it arrives.
  x-rst-code N      RST_STREAM(N) instead of answering; x-rst-when says when:
  x-rst-when W      headers (default): when the request headers arrive;
                    response: right after the response headers (sent once
                    the request body has ended); data: right after the
                    first response DATA frame (a 5-byte empty gRPC message
                    if the body was empty).
  x-stall 1         never acknowledge this stream's data, neither on the
                    stream nor on the connection (a backend that stopped
                    reading), never answer, keep it open until the client
                    resets it. On that reset its bytes are credited back to
                    the connection window (as a transport discarding buffers).
  --stall-all       every request (not Stats) is stalled as with x-stall: a
                    backend that takes calls and never answers them, while its
                    HTTP/2 connection lives on (PINGs are answered).
  --rst-all CODE    every request (not Stats) is reset with RST_STREAM(CODE)
                    when its headers arrive.
  --refuse-every N  every Nth request (not Stats) is refused with
                    RST_STREAM(REFUSED_STREAM) when its headers arrive.
  x-informational 1 send :status 103 with link: </x> when the request
                    headers arrive, before the final response.
  x-response-header-bytes N
                    the response headers carry N more bytes in x-filler-*
                    fields of at most 16 KiB each (h2 sends them whatever
                    MAX_HEADER_LIST_SIZE the peer announced).
  :path /h2steer.test.Echo/Stats
                    answered like the default, with a gRPC message whose
                    payload is JSON: id, streams (seen, not counting Stats),
                    resets_sent, stalled_open, max_buffered (largest number of
                    unacknowledged bytes on any stalled stream), conns
                    (accepted), plus resets_received, stalled_total,
                    stalled_buffered, conns_open, protocol_errors.
x-rst-code (when=headers) wins over x-stall; x-stall wins over everything
else. A bad x-rst-code / x-rst-when is answered trailers-only with
grpc-status 3 (INVALID_ARGUMENT).
"""

import argparse
import json
import signal
import selectors
import socket
import struct
import sys
import time
import traceback

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

try:  # used only to drop h2's redundant RST_STREAM, see _Conn
    from h2.stream import StreamClosedBy
    from hyperframe.frame import RstStreamFrame
except ImportError:  # pragma: no cover
    StreamClosedBy = RstStreamFrame = None

STATS_PATH = b"/h2steer.test.Echo/Stats"
STREAM_WINDOW = 65535
MAX_STREAMS = 100
MAX_HEADER_LIST = 65536
MAX_BODY = 80 << 20          # per request body; beyond: RST_STREAM(ENHANCE_YOUR_CALM)
MAX_CONNS = 1024             # beyond: accepted and closed at once
READ_SIZE = 256 << 10
OUT_FEED = 1 << 20           # stop feeding response DATA into a connection's buffer above this
OUT_LIMIT = 32 << 20         # a peer that lets this much pile up is dropped
CLOSE_GRACE = 2.0            # seconds to flush a GOAWAY before a hard close
SELECT_TIMEOUT = 0.5

VERBOSE = False


def log(msg):
    if VERBOSE:
        print("h2backend: " + msg, file=sys.stderr, flush=True)


def grpc_frame(payload):
    """One gRPC message: flag 0, 4-byte big-endian length, payload."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Stats:
    """Counters across all connections (one thread: no lock needed)."""

    def __init__(self, ident):
        self.id = ident
        self.streams = 0
        self.resets_sent = 0
        self.resets_received = 0
        self.stalled_total = 0
        self.stalled_open = 0
        self.stalled_buffered = 0
        self.max_buffered = 0
        self.conns = 0
        self.conns_open = 0
        self.protocol_errors = 0

    def as_json(self):
        return json.dumps({
            "id": self.id, "streams": self.streams,
            "resets_sent": self.resets_sent, "resets_received": self.resets_received,
            "stalled_total": self.stalled_total, "stalled_open": self.stalled_open,
            "stalled_buffered": self.stalled_buffered, "max_buffered": self.max_buffered,
            "conns": self.conns, "conns_open": self.conns_open,
            "protocol_errors": self.protocol_errors,
        }, sort_keys=True).encode()


class _Conn(h2.connection.H2Connection):
    """H2Connection that stays quiet about DATA arriving on a stream it reset.

    RFC 9113 5.1: after sending RST_STREAM an endpoint MUST ignore frames
    still in flight on that stream; h2 answers each such DATA frame with one
    more RST_STREAM(STREAM_CLOSED). The connection window is still credited.
    """

    def _handle_data_on_closed_stream(self, events, exc, frame):
        frames, evs = super()._handle_data_on_closed_stream(events, exc, frame)
        try:
            if RstStreamFrame is not None and \
                    self._stream_closed_by(frame.stream_id) == StreamClosedBy.SEND_RST_STREAM:
                frames = [f for f in frames if not isinstance(f, RstStreamFrame)]
        except Exception:  # private API changed: keep h2's behaviour
            pass
        return frames, evs


class Stream:
    __slots__ = ("sid", "path", "body", "stall", "rst_code", "rst_when",
                 "unacked", "out", "off", "rst_after_data", "answered", "filler")

    def __init__(self, sid, path):
        self.sid = sid
        self.path = path
        self.body = bytearray()
        self.stall = False
        self.rst_code = None
        self.rst_when = "headers"
        self.unacked = 0          # stalled: flow-controlled bytes never acknowledged
        self.out = b""            # response body still to send
        self.off = 0
        self.rst_after_data = False
        self.answered = False     # a final response (or trailers-only) has been started
        self.filler = 0           # x-response-header-bytes


class Conn:
    def __init__(self, srv, sock, peer):
        self.srv = srv
        self.sock = sock
        self.peer = peer
        self.streams = {}         # sid -> Stream (open, known to us)
        self.sending = {}         # sid -> Stream with response DATA pending (insertion order)
        self.outbuf = bytearray()
        self.closing_since = None
        self.closed = False
        self.mask = 0
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = _Conn(config=cfg)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
        })
        self.h2.initiate_connection()
        if srv.conn_window > 65535:
            self.h2.increment_flow_control_window(srv.conn_window - 65535)
        self.collect()

    # ---- socket side ----

    def collect(self):
        data = self.h2.data_to_send()
        if data:
            self.outbuf += data

    def update_interest(self):
        if self.closed:
            return
        mask = selectors.EVENT_WRITE if self.outbuf else 0
        if self.closing_since is None:
            mask |= selectors.EVENT_READ
        if mask == 0:
            mask = selectors.EVENT_READ  # closing and drained: close() follows
        if mask != self.mask:
            self.srv.sel.modify(self.sock, mask, self)
            self.mask = mask

    def flush(self):
        """Write what the socket takes now; close when closing and drained."""
        if not self.closed:
            self.collect()
        while self.outbuf and not self.closed:
            try:
                n = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                log("%s: send: %s" % (self.peer, e))
                self.close()
                return
            del self.outbuf[:n]
        if self.closed:
            return
        if len(self.outbuf) > OUT_LIMIT:
            log("%s: peer not reading, dropping it" % (self.peer,))
            self.close()
            return
        if self.closing_since is not None and not self.outbuf:
            self.close()
            return
        self.update_interest()

    def on_event(self, mask):
        if mask & selectors.EVENT_READ and self.closing_since is None:
            self.on_readable()
        if not self.closed and mask & selectors.EVENT_WRITE:
            self.pump()
            self.flush()

    def on_readable(self):
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log("%s: recv: %s" % (self.peer, e))
            self.close()
            return
        if not data:
            log("%s: closed by peer" % (self.peer,))
            self.close()
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            # h2 has queued a GOAWAY: send it, then close.
            self.srv.stats.protocol_errors += 1
            print("h2backend: %s: protocol error: %s" % (self.peer, e), file=sys.stderr, flush=True)
            self.start_closing()
            return
        for ev in events:
            self.handle(ev)
            if self.closing_since is not None or self.closed:
                break
        if not self.closed:
            self.pump()
            self.flush()

    def start_closing(self):
        self.collect()
        if self.closing_since is None:
            self.closing_since = time.monotonic()
        self.flush()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for st in list(self.streams.values()):
            self.drop(st, credit=False)
        self.sending.clear()
        try:
            self.srv.sel.unregister(self.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.srv.conns.discard(self)
        self.srv.stats.conns_open -= 1

    # ---- HTTP/2 side ----

    def drop(self, st, credit=True):
        """Forget a stream; a stalled one gives its bytes back to the connection window."""
        self.streams.pop(st.sid, None)
        self.sending.pop(st.sid, None)
        if st.stall:
            stats = self.srv.stats
            stats.stalled_open -= 1
            stats.stalled_buffered -= st.unacked
            if credit and st.unacked:
                try:
                    self.h2.acknowledge_received_data(st.unacked, st.sid)
                except (h2.exceptions.ProtocolError, ValueError):
                    pass
            st.unacked = 0
            st.stall = False

    def reset(self, st, code):
        try:
            self.h2.reset_stream(st.sid, code)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            pass
        else:
            self.srv.stats.resets_sent += 1
            log("%s: stream %d: RST_STREAM(%d)" % (self.peer, st.sid, code))
        self.drop(st)

    def handle(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.on_request(ev)
        elif isinstance(ev, h2.events.DataReceived):
            self.on_data(ev)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None and not st.stall and not st.answered:
                self.respond(st)
        elif isinstance(ev, h2.events.StreamReset):
            self.srv.stats.resets_received += 1
            st = self.streams.get(ev.stream_id)
            if st is not None:
                log("%s: stream %d reset by peer (%s)" % (self.peer, st.sid, ev.error_code))
                self.drop(st)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            log("%s: GOAWAY from peer (%s)" % (self.peer, ev.error_code))
            self.start_closing()
        # WindowUpdated, RemoteSettingsChanged, PingReceived, ...: h2 did the
        # protocol work; pump() after the batch retries pending DATA.

    def on_request(self, ev):
        hdrs = {}
        for k, v in ev.headers:
            hdrs.setdefault(bytes(k).lower(), bytes(v))
        st = Stream(ev.stream_id, hdrs.get(b":path", b""))
        self.streams[st.sid] = st
        stats = self.srv.stats
        if st.path != STATS_PATH:
            stats.streams += 1

        bad = None
        if b"x-rst-code" in hdrs:
            try:
                st.rst_code = int(hdrs[b"x-rst-code"].strip())
                if not 0 <= st.rst_code <= 0xFFFFFFFF:
                    raise ValueError
            except ValueError:
                bad = "bad x-rst-code %r" % hdrs[b"x-rst-code"]
        when = hdrs.get(b"x-rst-when", b"headers").strip().decode("latin-1").lower()
        if when not in ("headers", "response", "data"):
            bad = "bad x-rst-when %r" % when
        st.rst_when = when
        try:
            st.filler = int(hdrs.get(b"x-response-header-bytes", b"0").strip())
        except ValueError:
            bad = "bad x-response-header-bytes"
        if bad:
            self.answer_trailers_only(st, 3, bad)
            return
        if st.rst_code is not None and when == "headers":
            self.reset(st, st.rst_code)
            return
        if self.srv.rst_all is not None and st.path != STATS_PATH:
            self.reset(st, self.srv.rst_all)
            return
        if self.srv.refuse_every and st.path != STATS_PATH and \
                stats.streams % self.srv.refuse_every == 0:
            self.reset(st, 7)  # REFUSED_STREAM: "not processed, send it again"
            return
        if hdrs.get(b"x-stall", b"").strip() not in (b"", b"0") or \
                (self.srv.stall_all and st.path != STATS_PATH):
            st.stall = True
            stats.stalled_total += 1
            stats.stalled_open += 1
            log("%s: stream %d stalled" % (self.peer, st.sid))
            return
        if hdrs.get(b"x-informational", b"").strip() not in (b"", b"0"):
            try:
                self.h2.send_headers(st.sid, [(":status", "103"), ("link", "</x>")])
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self.drop(st)
                return

    def on_data(self, ev):
        st = self.streams.get(ev.stream_id)
        n = ev.flow_controlled_length
        if st is not None and st.stall:
            st.unacked += n
            stats = self.srv.stats
            stats.stalled_buffered += n
            if st.unacked > stats.max_buffered:
                stats.max_buffered = st.unacked
            return
        # Everything else is consumed at once (stream gone: connection credit only).
        try:
            self.h2.acknowledge_received_data(n, ev.stream_id)
        except (h2.exceptions.ProtocolError, ValueError):
            pass
        if st is None or st.answered:
            return
        if len(st.body) + len(ev.data) > MAX_BODY:
            self.reset(st, ErrorCodes.ENHANCE_YOUR_CALM)
            return
        st.body += ev.data

    def answer_trailers_only(self, st, code, message):
        st.answered = True
        try:
            self.h2.send_headers(st.sid, [
                (":status", "200"), ("content-type", "application/grpc"),
                ("x-backend-id", self.srv.ident), ("grpc-status", str(code)),
                ("grpc-message", message.replace("%", "%25")),
            ], end_stream=True)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            pass
        self.drop(st)

    def respond(self, st):
        st.answered = True
        if st.path == STATS_PATH:
            body = grpc_frame(self.srv.stats.as_json())
        else:
            body = bytes(st.body)
        st.body = bytearray()
        try:
            filler = [("x-filler-%d" % i, "f" * min(16384, st.filler - off))
                      for i, off in enumerate(range(0, st.filler, 16384))]
            self.h2.send_headers(st.sid, [
                (":status", "200"), ("content-type", "application/grpc"),
                ("x-backend-id", self.srv.ident),
            ] + filler)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            self.drop(st)
            return
        if st.rst_code is not None and st.rst_when == "response":
            self.reset(st, st.rst_code)
            return
        if st.rst_code is not None and st.rst_when == "data":
            st.rst_after_data = True
            if not body:
                body = grpc_frame(b"")
        st.out, st.off = body, 0
        self.sending[st.sid] = st

    def pump(self):
        """Move pending response DATA (and then trailers) into h2, as windows allow."""
        if self.closed or self.closing_since is not None:
            return
        for st in list(self.sending.values()):
            if len(self.outbuf) >= OUT_FEED:
                break
            try:
                self.pump_stream(st)
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError) as e:
                log("%s: stream %d: %s" % (self.peer, st.sid, e))
                self.drop(st)
            self.collect()

    def pump_stream(self, st):
        frame_max = self.h2.max_outbound_frame_size
        while st.off < len(st.out) and len(self.outbuf) < OUT_FEED:
            n = min(len(st.out) - st.off, self.h2.local_flow_control_window(st.sid), frame_max)
            if n <= 0:
                return  # blocked on flow control: WindowUpdated brings us back
            self.h2.send_data(st.sid, st.out[st.off:st.off + n])
            st.off += n
            self.collect()
            if st.rst_after_data:
                self.reset(st, st.rst_code)
                return
        if st.off < len(st.out):
            return
        self.h2.send_headers(st.sid, [
            ("grpc-status", "0"), ("x-backend-trailer", self.srv.ident),
        ], end_stream=True)
        self.drop(st)


class Server:
    def __init__(self, ident, listen, conn_window, refuse_every=0, stall_all=False, rst_all=None):
        self.ident = ident
        self.stall_all = stall_all
        self.rst_all = rst_all
        self.conn_window = conn_window
        self.refuse_every = refuse_every
        self.stats = Stats(ident)
        self.conns = set()
        self.stop = False
        self.sel = selectors.DefaultSelector()

        host, port = parse_hostport(listen)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        fam, typ, proto, _, sa = infos[0]
        self.lsock = socket.socket(fam, typ, proto)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(sa)
        self.lsock.listen(128)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        bound = self.lsock.getsockname()
        self.addr = ("[%s]:%d" if fam == socket.AF_INET6 else "%s:%d") % (bound[0], bound[1])

        # Signals wake the loop through a socketpair.
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

    def on_signal(self, signum, frame):
        self.stop = True

    def accept(self):
        for _ in range(64):  # bounded per wake-up
            try:
                sock, peer = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log("accept: %s" % e)
                return
            self.stats.conns += 1
            if len(self.conns) >= MAX_CONNS:
                sock.close()
                continue
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self.stats.conns_open += 1
            c = Conn(self, sock, "%s:%s" % peer[:2])
            self.conns.add(c)
            self.sel.register(sock, selectors.EVENT_READ, c)
            c.mask = selectors.EVENT_READ
            log("%s: connected" % c.peer)
            c.flush()

    def run(self):
        print("READY " + self.addr, flush=True)
        while not self.stop:
            for key, mask in self.sel.select(SELECT_TIMEOUT):
                if key.data is None:
                    self.accept()
                elif key.data == "wake":
                    try:
                        while self.wake_r.recv(512):
                            pass
                    except (BlockingIOError, InterruptedError, OSError):
                        pass
                else:
                    conn = key.data
                    if conn.closed:
                        continue
                    try:
                        conn.on_event(mask)
                    except Exception:  # a bug: show it, keep serving the others
                        print("h2backend: %s: internal error" % conn.peer, file=sys.stderr)
                        traceback.print_exc()
                        conn.close()
            now = time.monotonic()
            for c in list(self.conns):
                if c.closing_since is not None and now - c.closing_since > CLOSE_GRACE:
                    c.close()
        self.shutdown()

    def shutdown(self):
        for c in list(self.conns):
            try:
                c.h2.close_connection()
                c.collect()
                c.sock.send(c.outbuf)
            except Exception:
                pass
            c.close()
        for s in (self.lsock, self.wake_r, self.wake_w):
            try:
                s.close()
            except OSError:
                pass


def parse_hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError("want HOST:PORT or [IPv6]:PORT, got %r" % s)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description="raw HTTP/2 gRPC-shaped test backend")
    ap.add_argument("--listen", required=True, help="HOST:PORT or [IPv6]:PORT (port 0: any)")
    ap.add_argument("--id", required=True, help="backend name (x-backend-id / x-backend-trailer)")
    ap.add_argument("--conn-window", type=int, default=16 << 20,
                    help="connection-level receive window in bytes (default 16 MiB; 65535 = no raise)")
    ap.add_argument("--refuse-every", type=int, default=0, metavar="N",
                    help="answer every Nth request with RST_STREAM(REFUSED_STREAM) (0: never)")
    ap.add_argument("--stall-all", action="store_true",
                    help="never answer any request but Stats (as x-stall)")
    ap.add_argument("--rst-all", type=int, default=None, metavar="CODE",
                    help="reset every request but Stats with RST_STREAM(CODE)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log connections and resets on stderr")
    args = ap.parse_args()
    VERBOSE = args.verbose
    if not 65535 <= args.conn_window <= 2**31 - 1:
        ap.error("--conn-window must be in 65535..2147483647")
    try:
        srv = Server(args.id, args.listen, args.conn_window, max(args.refuse_every, 0),
                     args.stall_all, args.rst_all)
    except (ValueError, OSError) as e:
        print("h2backend: listen %s: %s" % (args.listen, e), file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    srv.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
