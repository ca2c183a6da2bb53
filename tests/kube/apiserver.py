"""A test Kubernetes API server: the protocol of the real kube-apiserver (HTTPS, bearer tokens,
LIST with paging and selectors, WATCH streams with bookmarks and 410 Expired, Status errors)
for v1 Services, discovery.k8s.io/v1 EndpointSlices and v1 Nodes, over an in-memory store with
a global resourceVersion and an event history, plus the faults a client must survive (cut
streams, throttling, errors, garbage lines, restarts, compaction).

    api = ApiServer(); api.start()
    api.apply(objects.service("default", "greeter"))
    ... the client reads api.url, api.ca_file, api.token_file ...
    api.close()

Run by hand: python3 tests/kube/apiserver.py --dir DIR --port P (an empty store).

As the real server: resourceVersion is etcd's revision (one global integer, served as a
string); a LIST's pages are all read at the first page's RV; a WATCH from RV sends every change
after it, from a kept history, and once that history is compacted answers 200 with one ERROR
event (Status 410 Expired) and ends; a change that moves an object out of (into) a watch's
selector comes as DELETED (ADDED); errors are Status objects; ALPN offers h2 first, so a
libcurl client speaks HTTP/2 and multiplexes its watches on one connection (a cut then ends
them all). Where it differs, on purpose: every path needs the token (as with
--anonymous-auth=false); the store is read-only over HTTP (tests change it with apply/delete);
labelSelector takes the equality forms only; no sendInitialEvents, no protobuf, no tables.
"""
import argparse
import base64
import copy
import json
import os
import queue
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import objects  # noqa: E402


class Kind:
    """Where a kind lives in the API: group/version, URL plural, scope, list kind."""

    def __init__(self, kind, api_version, plural, namespaced):
        self.kind, self.api_version, self.plural = kind, api_version, plural
        self.namespaced = namespaced
        self.list_kind = kind + "List"
        self.group = api_version.split("/")[0] if "/" in api_version else ""
        # The resource name of error messages: "services", "endpointslices.discovery.k8s.io".
        self.resource = plural + ("." + self.group if self.group else "")


KINDS = {k.kind: k for k in (
    Kind("Service", "v1", "services", True),
    Kind("EndpointSlice", "discovery.k8s.io/v1", "endpointslices", True),
    Kind("Node", "v1", "nodes", False),
)}
BY_PREFIX = {("/api/v1" if k.api_version == "v1" else "/apis/" + k.api_version, k.plural): k
             for k in KINDS.values()}

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-h2steer.test",
           "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
           "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}

# The watch timeout when the client gives none. The real server picks a random one in
# [min-request-timeout, 2 x] (30..60 min by default); a test server keeps it short and bounded.
DEFAULT_WATCH_TIMEOUT = 300
MAX_WATCH_TIMEOUT = 3600

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    """An error answered with a Status body."""

    def __init__(self, code, message, details=None, headers=()):
        super().__init__(message)
        self.status = objects.status(code, REASONS.get(code, "InternalError"), message, details)
        self.headers = list(headers)


def make_token():
    """A token shaped like a service account's (a JWT: header.claims.signature)."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "RS256", "kid": secrets.token_hex(8)}).encode())
    claims = b64(json.dumps({"iss": "https://kubernetes.default.svc", "jti": str(uuid.uuid4()),
                             "sub": "system:serviceaccount:kube-system:h2steer"}).encode())
    return f"{head}.{claims}.{b64(secrets.token_bytes(64))}"


def make_certs(cert_dir):
    """A CA and a server certificate it signs (SAN IP:127.0.0.1, DNS:localhost), openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    ca_key, ca_crt = (os.path.join(cert_dir, n) for n in ("ca.key", "ca.crt"))
    key, csr, crt = (os.path.join(cert_dir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(cert_dir, "server.ext")
    # ECDSA P-256 keys (kubeadm's --encryption-algorithm=ECDSA-P256): made at once, where RSA
    # takes seconds on a loaded machine.
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt,
        "-days", "7", "-subj", "/CN=h2steer-test-kubernetes-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", key, "-out", csr,
        "-subj", "/CN=kube-apiserver")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "7", "-extfile", ext)
    return ca_crt, crt, key


# ---- selectors (the equality forms of labels.Parse, and the metadata field selectors) ----

def parse_label_selector(text):
    """[(op, key, value)] for "a=b", "a==b", "a!=b", "a", "!a", comma-joined."""
    reqs = []
    for term in (t.strip() for t in (text or "").split(",")):
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                key, value = (s.strip() for s in term.split(op, 1))
                reqs.append(("!=" if op == "!=" else "=", key, value))
                break
        else:
            if term.startswith("!"):
                reqs.append(("!", term[1:].strip(), None))
            else:
                reqs.append(("exists", term, None))
        if not reqs[-1][1] or " " in reqs[-1][1] or (reqs[-1][2] or "").count(" "):
            raise ApiError(400, f"unable to parse requirement: {term!r} (only the equality "
                                "forms are supported by this test server)")
    return reqs


def parse_field_selector(text):
    reqs = []
    for term in (t.strip() for t in (text or "").split(",")):
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                field, value = term.split(op, 1)
                break
        else:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{term}'")
        if field not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, f'"{field}" is not a known field selector: only '
                                '"metadata.name", "metadata.namespace"')
        reqs.append(("!=" if op == "!=" else "=", field.split(".")[1], value))
    return reqs


def matches(obj, labels, fields):
    meta = obj["metadata"]
    have = meta.get("labels") or {}
    for op, key, value in labels:
        if op == "=" and have.get(key) != value:
            return False
        # "a!=b" also matches objects without the label, as in the real server.
        if op == "!=" and have.get(key) == value:
            return False
        if op == "exists" and key not in have:
            return False
        if op == "!" and key in have:
            return False
    for op, key, value in fields:
        if (meta.get(key, "") == value) != (op == "="):
            return False
    return True


class Filter:
    """What one LIST or WATCH asked for: kind, namespace (None: all) and selectors."""

    def __init__(self, kind, namespace, query):
        self.kind, self.namespace = kind, namespace
        self.labels = parse_label_selector(query.get("labelSelector"))
        self.fields = parse_field_selector(query.get("fieldSelector"))

    def wants(self, obj):
        if obj is None or obj["kind"] != self.kind.kind:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return matches(obj, self.labels, self.fields)


def strip_type(obj):
    """A LIST item: the real server leaves out kind and apiVersion (the list carries them)."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def event_line(etype, obj):
    return (json.dumps({"type": etype, "object": obj}, separators=(",", ":")) + "\n").encode()


class Watch:
    """One open WATCH: its filter and the queue its handler thread serves from."""

    def __init__(self, flt):
        self.filter = flt
        self.queue = queue.Queue()
        self.done = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive and chunked responses, as a client expects
    server_version = "kube-apiserver-test"
    timeout = 60                    # an idle keep-alive connection or a stuck writer

    def setup(self):
        # The TLS handshake here, in this connection's thread, not in the accept loop.
        self.request.settimeout(10)
        self.request.do_handshake()
        self.server.api._track(self.request, True)
        super().setup()

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.api._track(self.request, False)

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.api._serve(self, "GET")

    def do_POST(self):
        self.server.api._serve(self, "POST")

    def do_PUT(self):
        self.server.api._serve(self, "PUT")

    def do_DELETE(self):
        self.server.api._serve(self, "DELETE")

    def do_PATCH(self):
        self.server.api._serve(self, "PATCH")

    def send_json(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.write(data)

    # What the server writes through, over HTTP/1.1 here and HTTP/2 in H2Stream.

    def write(self, data):
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def watching(self, w):
        self.request.settimeout(30)     # a client that stops reading ends its watch

    def cut(self, half):
        """A dead connection: half (if any) of a line, its chunk header promising all of it."""
        if half:
            self.wfile.write(b"%x\r\n%s" % (len(half) * 2, half))
        self.close_connection = True
        _abort(self.request)

    def handle(self):
        if self.request.selected_alpn_protocol() == "h2":
            H2Connection(self).serve()
        else:
            super().handle()


class _Headers(dict):
    def get(self, key, default=None):
        return super().get(key.lower(), default)


class _StreamSocket:
    """What a stream's code may do to "its" socket: aborting it kills the whole connection, as
    a cut does over HTTP/2 (every stream of it dies)."""

    def __init__(self, conn):
        self.conn = conn

    def shutdown(self, how):
        self.conn.abort()


class H2Stream:
    """One HTTP/2 request, with the writing methods of Handler, run in its own thread."""

    def __init__(self, conn, stream_id, headers):
        self.conn, self.id = conn, stream_id
        self.headers = _Headers((k.lower(), v) for k, v in headers if not k.startswith(":"))
        self.path = dict(headers).get(":path", "/")
        self.method = dict(headers).get(":method", "GET")
        self.request = _StreamSocket(conn)
        self.close_connection = False
        self.ended = False
        self.watch = None
        self._status, self._headers = 200, []

    def run(self):
        try:
            self.conn.api._serve(self, self.method)
            if not self.ended and not self.close_connection:
                self.conn.send(self.id, b"", end=True)
        except OSError:
            pass

    def send_response(self, code):
        self._status, self._headers = code, []

    def send_header(self, key, value):
        # Hop-by-hop framing has no place in HTTP/2 (DATA frames and END_STREAM do it).
        if key.lower() not in ("transfer-encoding", "connection"):
            self._headers.append((key.lower(), value))

    def end_headers(self):
        self.conn.send_headers(self.id, [(":status", str(self._status))] + self._headers)

    send_json = Handler.send_json

    def write(self, data):
        self.conn.send(self.id, data)

    def chunk(self, data):
        # An empty chunk is HTTP/1.1's clean end; here, END_STREAM.
        self.conn.send(self.id, data, end=not data)
        self.ended = self.ended or not data

    def watching(self, w):
        self.watch = w

    def cut(self, half):
        if half:
            self.conn.send(self.id, half)
        self.close_connection = True
        self.conn.flush_and_abort()


class H2Connection:
    """An HTTP/2 connection (ALPN h2, as kube-apiserver prefers): this thread alone touches the
    TLS socket (OpenSSL objects are not for two threads at once); streams run in their own
    threads and hand it frames through the h2 state machine, under one lock."""

    def __init__(self, handler):
        import h2.config
        import h2.connection
        self.api = handler.server.api
        self.sock = handler.request
        self.cond = threading.Condition()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        self.streams = {}
        self.dead = False
        self.wake_r, self.wake_w = os.pipe()
        self.abort_after_flush = False

    def serve(self):
        import h2.events
        import h2.exceptions
        import h2.settings
        with self.cond:
            self.h2.initiate_connection()
            # Go's net/http2 server default, which kube-apiserver keeps.
            self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 250})
        self.sock.settimeout(30)
        try:
            while not self.dead:
                # The flag first: what a cut queued before raising it is in this batch.
                last = self.abort_after_flush
                with self.cond:
                    out = self.h2.data_to_send()
                if out:
                    self.sock.sendall(out)
                if last:
                    break
                if not self.sock.pending():
                    import select
                    ready, _, _ = select.select([self.sock, self.wake_r], [], [], 1.0)
                    if self.wake_r in ready:
                        os.read(self.wake_r, 4096)
                    if self.sock not in ready:
                        continue
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.cond:
                    events = self.h2.receive_data(data)
                    self.cond.notify_all()      # window updates, resets
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        st = H2Stream(self, ev.stream_id, ev.headers)
                        self.streams[ev.stream_id] = st
                        threading.Thread(target=st.run, daemon=True).start()
                    elif isinstance(ev, h2.events.StreamReset):
                        st = self.streams.pop(ev.stream_id, None)
                        if st and st.watch:
                            st.watch.queue.put(("stop", None))   # the client let it go
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        self.dead = True
        except (OSError, ssl.SSLError, h2.exceptions.H2Error):
            pass
        finally:
            self.abort()
            for st in list(self.streams.values()):
                if st.watch:
                    st.watch.queue.put(("stop", None))
            os.close(self.wake_r)
            os.close(self.wake_w)

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def send_headers(self, sid, headers):
        with self.cond:
            if self.dead:
                raise OSError("connection closed")
            self.h2.send_headers(sid, headers)
        self._wake()

    def send(self, sid, data, end=False):
        """DATA on stream sid, as its flow-control window lets it (bounded wait)."""
        import h2.exceptions
        deadline = time.monotonic() + 30
        with self.cond:
            while True:
                if self.dead:
                    raise OSError("connection closed")
                try:
                    window = min(self.h2.local_flow_control_window(sid),
                                 self.h2.max_outbound_frame_size)
                except h2.exceptions.StreamClosedError:
                    raise OSError("stream closed")
                if window > 0 or (not data and end):
                    piece, data = data[:window], data[window:]
                    self.h2.send_data(sid, piece, end_stream=end and not data)
                    self._wake()
                    if not data:
                        return
                    continue
                if time.monotonic() >= deadline:
                    raise OSError("flow-control window stayed closed")
                self.cond.wait(0.5)

    def flush_and_abort(self):
        self.abort_after_flush = True
        self._wake()

    def abort(self):
        with self.cond:
            self.dead = True
            self.cond.notify_all()
        _abort(self.sock)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Peers that hang up, time out or fail the handshake are part of the tests.
        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            super().handle_error(request, client_address)


class ApiServer:
    """The server and its store. Every public method is safe from any thread.

    url, port, ca_file, token_file, cert_dir, token: what a client needs (the certificates and
    the token file live in cert_dir, a temporary one unless given; close() removes it then).
    requests: every request, {method, path, query (last value of each key), token (the bearer
    token sent, None without one), time (time.monotonic())}, faults and 401s included.
    bookmark_interval (s) and history_limit (events kept before an automatic compaction) may
    be changed at any time."""

    def __init__(self, cert_dir=None, port=0, token=None, bookmark_interval=1.0,
                 history_limit=100000, http2=True):
        self._own_dir = cert_dir is None
        self.cert_dir = cert_dir or tempfile.mkdtemp(prefix="kubeapi-")
        os.makedirs(self.cert_dir, exist_ok=True)
        self.ca_file = os.path.join(self.cert_dir, "ca.crt")
        self.token_file = os.path.join(self.cert_dir, "token")
        self.port = port
        self.bookmark_interval = bookmark_interval
        # ALPN: h2 first, as the real server offers it (libcurl then takes it, and multiplexes
        # its watches on one connection); http2=False: HTTP/1.1 only.
        self.http2 = http2
        self.history_limit = history_limit
        self.requests = []
        self._lock = threading.RLock()
        self._objects = {}       # (kind, namespace or "", name) -> stored object (never mutated)
        self._rv = 1             # the global resourceVersion (etcd's revision)
        self._history = []       # (rv, type, object, previous object) of every change
        self._compacted = 1      # events at or below this RV are gone
        self._watches = set()
        self._conns = set()
        self._throttle = (0, 0)  # (requests left, Retry-After seconds)
        self._fail = (0, 0)      # (requests left, code)
        self._httpd = None
        self._thread = None
        self.set_token(token or make_token())

    # ---- lifecycle ----

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self):
        if self._httpd is not None:
            return self
        if not os.path.exists(os.path.join(self.cert_dir, "server.crt")):
            make_certs(self.cert_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(self.cert_dir, "server.crt"),
                            os.path.join(self.cert_dir, "server.key"))
        ctx.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
        httpd = _HTTPServer(("127.0.0.1", self.port), Handler)   # SO_REUSEADDR: same port
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                       do_handshake_on_connect=False)
        httpd.api = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"kubeapi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and drop every connection (open watches end without a terminator)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self._thread.join(5)
        with self._lock:
            conns = list(self._conns)
            for w in self._watches:
                w.queue.put(("stop", None))
        for c in conns:
            _abort(c)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    break
            time.sleep(0.01)

    def restart(self):
        """A restarted API server: same port, certificate, token and store."""
        self.stop()
        self.start()

    def close(self):
        self.stop()
        if self._own_dir:
            for name in os.listdir(self.cert_dir):
                os.unlink(os.path.join(self.cert_dir, name))
            os.rmdir(self.cert_dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _track(self, conn, add):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ---- token ----

    def set_token(self, token):
        """Accept only this token from now on, and write it to token_file atomically (a
        temporary file renamed over it, as kubelet refreshes a projected token)."""
        tmp = self.token_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(token)
        os.replace(tmp, self.token_file)
        with self._lock:
            self.token = token

    # ---- faults ----

    def throttle(self, n, retry_after=1):
        """The next n requests get 429 Too Many Requests with Retry-After (API priority and
        fairness rejecting them)."""
        with self._lock:
            self._throttle = (n, retry_after)

    def fail(self, n, code=500):
        with self._lock:
            self._fail = (n, code)

    def cut_watches(self, mid_object=False):
        """Close every open watch's connection, without the chunked terminator (HTTP/1.1) or
        END_STREAM (HTTP/2: the connection, so its other streams too). mid_object: first
        write half of an event line (a BOOKMARK's: never one the client needs)."""
        with self._lock:
            ws = list(self._watches)
        for w in ws:
            w.queue.put(("cut", mid_object))
        for w in ws:
            w.done.wait(5)
        return len(ws)

    def inject_line(self, kind, data):
        """Raw bytes into the open watches of kind, as one chunk."""
        with self._lock:
            for w in self._watches:
                if w.filter.kind.kind == kind:
                    w.queue.put(("raw", data))

    def compact(self):
        """Drop the event history up to now: a watch from an older RV gets 410 Expired."""
        with self._lock:
            self._history = []
            self._compacted = self._rv

    def watch_count(self, kind=None):
        with self._lock:
            return sum(1 for w in self._watches if kind is None or w.filter.kind.kind == kind)

    def wait_watches(self, count=1, kind=None, timeout=10):
        """True once at least count watches (of kind) are open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watch_count(kind) >= count:
                return True
            time.sleep(0.02)
        return False

    @property
    def resource_version(self):
        with self._lock:
            return str(self._rv)

    # ---- store ----

    @staticmethod
    def _key(kind, namespace, name):
        return (kind, namespace or "", name)

    def get(self, kind, namespace, name):
        with self._lock:
            obj = self._objects.get(self._key(kind, namespace, name))
            return copy.deepcopy(obj)

    def apply(self, obj, validate=True):
        """Create or update obj (a dict as `kubectl get -o json` prints it); returns the stored
        copy. Refuses a shape the client models do not know (objects.validate); validate=False
        skips that check, for the benchmark's thousands of copies of one checked shape."""
        obj = copy.deepcopy(obj)
        spec = KINDS.get(obj.get("kind"))
        if spec is None or obj.get("apiVersion") != spec.api_version:
            raise ValueError(f"apply: unsupported {obj.get('apiVersion')}/{obj.get('kind')}")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("apply: metadata.name is required")
        if spec.namespaced != bool(meta.get("namespace")):
            raise ValueError(f"apply: {spec.kind} is {'' if spec.namespaced else 'not '}"
                             "namespaced")
        if validate:
            objects.validate(obj)
        key = self._key(spec.kind, meta.get("namespace"), meta["name"])
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                if spec.kind == "EndpointSlice":     # its strategy starts generation at 1
                    meta["generation"] = 1
            else:
                # Optimistic concurrency: an update that names a resourceVersion must name the
                # current one (409 Conflict on the real server).
                if meta.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
                    raise ValueError(f"apply: conflict: {meta['name']} is at resourceVersion "
                                     f"{old['metadata']['resourceVersion']}")
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                if spec.kind == "EndpointSlice":
                    changed = any(obj.get(f) != old.get(f)
                                  for f in ("addressType", "endpoints", "ports"))
                    meta["generation"] = old["metadata"]["generation"] + changed
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            self._objects[key] = obj
            self._record("MODIFIED" if old else "ADDED", obj, old)
            return copy.deepcopy(obj)

    def delete(self, kind, namespace, name):
        """Delete an object; its DELETED event carries the last state at a new RV."""
        with self._lock:
            old = self._objects.pop(self._key(kind, namespace, name))
            self._rv += 1
            last = copy.deepcopy(old)
            last["metadata"]["resourceVersion"] = str(self._rv)
            self._record("DELETED", last, old)
            return copy.deepcopy(last)

    def _record(self, etype, obj, prev):
        entry = (self._rv, etype, obj, prev)
        self._history.append(entry)
        if len(self._history) > self.history_limit:     # etcd compacts too
            dropped = self._history[:len(self._history) - self.history_limit]
            del self._history[:len(dropped)]
            self._compacted = dropped[-1][0]
        for w in self._watches:
            if w.filter.kind.kind == obj["kind"]:
                w.queue.put(("event", entry))

    def _state_at(self, rv):
        """The store as it was at rv (etcd's MVCC read), by undoing the later history."""
        state = dict(self._objects)
        for erv, etype, obj, prev in reversed(self._history):
            if erv <= rv:
                break
            key = self._key(obj["kind"], obj["metadata"].get("namespace"),
                            obj["metadata"]["name"])
            if etype == "ADDED":
                del state[key]
            else:
                state[key] = prev
        return state

    # ---- HTTP ----

    def _serve(self, h, method):
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        auth = h.headers.get("Authorization", "")
        sent = auth[7:].strip() if auth.startswith("Bearer ") else None
        with self._lock:
            self.requests.append({"method": method, "path": url.path, "query": query,
                                  "token": sent, "time": time.monotonic()})
            token = self.token
            fault = None
            if self._throttle[0] > 0:
                self._throttle = (self._throttle[0] - 1, self._throttle[1])
                secs = self._throttle[1]
                fault = ApiError(429, "Too many requests, please try again later.",
                                 {"retryAfterSeconds": secs}, [("Retry-After", str(secs))])
            elif self._fail[0] > 0:
                self._fail = (self._fail[0] - 1, self._fail[1])
                fault = ApiError(self._fail[1], "injected failure")
        try:
            if fault:
                raise fault
            # Anonymous requests are refused too (kube-apiserver --anonymous-auth=false).
            if sent is None or not secrets.compare_digest(sent.encode(), token.encode()):
                raise ApiError(401, "Unauthorized")
            self._route(h, method, url.path, query)
        except ApiError as e:
            h.send_json(e.status["code"], e.status, e.headers)

    def _route(self, h, method, path, query):
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            h.send_response(200)
            h.send_header("Content-Type", "text/plain; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.write(data)
            return
        if path == "/version":
            return h.send_json(200, VERSION)
        found = self._parse_path(path)
        if found is None:
            raise ApiError(404, "the server could not find the requested resource")
        kind, ns, name = found
        if method != "GET":
            raise ApiError(405, f"{method} is not supported by this test server (read only: "
                                "the store changes through ApiServer.apply)")
        if name is not None:
            with self._lock:
                obj = self._objects.get(self._key(kind.kind, ns, name))
            if obj is None:
                raise ApiError(404, f'{kind.resource} "{name}" not found',
                               {"name": name, "group": kind.group, "kind": kind.plural}
                               if kind.group else {"name": name, "kind": kind.plural})
            return h.send_json(200, obj)
        flt = Filter(kind, ns, query)
        if query.get("watch") in ("1", "true", "True"):
            return self._watch(h, flt, query)
        return self._list(h, flt, query)

    @staticmethod
    def _parse_path(path):
        """(Kind, namespace or None, name or None) of a resource path, or None."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            base, rest = "/api/" + "/".join(parts[1:2]), parts[2:]
        elif parts[:1] == ["apis"]:
            base, rest = "/apis/" + "/".join(parts[1:3]), parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return None
        kind = BY_PREFIX.get((base, rest[0]))
        if kind is None or (ns is not None and not kind.namespaced):
            return None
        name = rest[1] if len(rest) == 2 else None
        if name is not None and kind.namespaced and ns is None:
            return None
        return kind, ns, name

    def _list(self, h, flt, query):
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, f"invalid limit: {query['limit']!r}")
        with self._lock:
            if query.get("continue"):
                # The token names the RV of the first page: later pages are read at it (etcd's
                # MVCC), so a paged LIST is one consistent snapshot, until compaction.
                try:
                    tok = json.loads(base64.urlsafe_b64decode(query["continue"]))
                    rv, start = int(tok["rv"]), tok["start"]
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "continue key is not valid")
                if rv < self._compacted:
                    raise ApiError(410, "The provided continue parameter is too old to display "
                                        "a consistent list result. You can start a new list "
                                        "without the continue parameter.")
                state = self._state_at(rv)
            else:
                rv, start, state = self._list_rv(query), None, None
                state = self._objects if rv == self._rv else self._state_at(rv)
            # The real server lists in etcd key order: namespace, then name.
            keys = sorted(k for k, o in state.items() if flt.wants(o)
                          and (start is None or [k[1], k[2]] > start))
            page = keys[:limit] if limit > 0 else keys
            items = [strip_type(state[k]) for k in page]
        meta = {"resourceVersion": str(rv)}
        if len(page) < len(keys):
            last = page[-1]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"v": "meta.k8s.io/v1", "rv": rv, "start": [last[1], last[2]]}).encode()).decode()
            if not flt.labels and not flt.fields:   # counted only without selectors
                meta["remainingItemCount"] = len(keys) - len(page)
        h.send_json(200, {"kind": flt.kind.list_kind, "apiVersion": flt.kind.api_version,
                          "metadata": meta, "items": items})

    def _list_rv(self, query):
        """The RV a first page is read at: resourceVersionMatch=Exact reads at the given one
        (410 once compacted), otherwise the latest state, which is "not older than" any RV the
        client gives (504 for one the server has not reached)."""
        text = query.get("resourceVersion", "")
        if text in ("", "0"):
            return self._rv
        try:
            rv = int(text)
        except ValueError:
            raise ApiError(400, f"resourceVersion: Invalid value: {text!r}")
        if rv > self._rv:
            raise ApiError(504, f"Too large resource version: {rv}, current: {self._rv}",
                           {"causes": [{"reason": "ResourceVersionTooLarge",
                                        "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})
        if query.get("resourceVersionMatch") != "Exact":
            return self._rv
        if rv < self._compacted:
            raise ApiError(410, f"too old resource version: {rv} ({self._compacted})")
        return rv

    def _bookmark(self, kind, rv):
        return event_line("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version,
                                       "metadata": {"resourceVersion": str(rv)}})

    def _watch(self, h, flt, query):
        try:
            timeout = min(int(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT),
                          MAX_WATCH_TIMEOUT)
        except ValueError:
            raise ApiError(400, "invalid timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        rv_text = query.get("resourceVersion", "")
        w = Watch(flt)
        expired = None
        with self._lock:
            if rv_text in ("", "0"):
                # No RV (or "any"): the current state as synthetic ADDED events, then changes.
                first = [("ADDED", o) for _, o in sorted(self._objects.items()) if flt.wants(o)]
                sent_rv = self._rv
            else:
                try:
                    rv = int(rv_text)
                except ValueError:
                    raise ApiError(400, f"resourceVersion: Invalid value: {rv_text!r}")
                if rv > self._rv:
                    # The real server waits ~3 s for its cache, then answers this (our store
                    # has no lag, so at once).
                    raise ApiError(504, f"Too large resource version: {rv}, current: {self._rv}",
                                   {"causes": [{"reason": "ResourceVersionTooLarge",
                                                "message": "Too large resource version"}],
                                    "retryAfterSeconds": 1})
                if rv < self._compacted:
                    expired = objects.status(410, "Expired", f"too old resource version: {rv} "
                                                             f"({self._compacted})")
                first = [(t, o, p) for erv, t, o, p in self._history if erv > rv
                         and o["kind"] == flt.kind.kind]
                first = [e for e in (self._filtered(flt, *f) for f in first) if e]
                sent_rv = rv
            if expired is None:
                self._watches.add(w)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.send_header("Audit-Id", str(uuid.uuid4()))
            h.send_header("Cache-Control", "no-cache, private")
            h.end_headers()
            if expired is not None:
                # The real server answers 200 and says it in the stream: one ERROR event.
                h.chunk(event_line("ERROR", expired))
                h.chunk(b"")
                return
            h.watching(w)
            for etype, obj in first:
                h.chunk(event_line(etype, obj))
            self._stream(h, w, sent_rv, bookmarks, time.monotonic() + timeout)
        except OSError:
            h.close_connection = True
        finally:
            with self._lock:
                self._watches.discard(w)
            w.done.set()

    @staticmethod
    def _filtered(flt, etype, obj, prev):
        """(type, object) the watch sends for one change, or None. As the real watch cache does,
        a change that makes an object match a selector is ADDED, one that makes it stop
        matching is DELETED."""
        now, before = flt.wants(obj), flt.wants(prev)
        if etype == "MODIFIED":
            if now and before:
                return ("MODIFIED", obj)
            if now:
                return ("ADDED", obj)
            if before:
                return ("DELETED", obj)
            return None
        return (etype, obj) if now else None

    def _stream(self, h, w, sent_rv, bookmarks, deadline):
        next_mark = time.monotonic() + self.bookmark_interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                h.chunk(b"")        # the clean end of a watch that timed out
                return
            wait = deadline - now
            if bookmarks:
                wait = max(0, min(wait, next_mark - now))
            try:
                what, arg = w.queue.get(timeout=wait)
            except queue.Empty:
                if bookmarks and time.monotonic() >= next_mark:
                    with self._lock:
                        # Only with nothing queued is the global RV a promise that the client
                        # has every event up to it (changes queue under this lock).
                        if w.queue.empty():
                            sent_rv = self._rv
                    h.chunk(self._bookmark(w.filter.kind, sent_rv))
                    next_mark = time.monotonic() + self.bookmark_interval
                continue
            if what == "event":
                erv, etype, obj, prev = arg
                sent_rv = erv
                ev = self._filtered(w.filter, etype, obj, prev)
                if ev:
                    h.chunk(event_line(*ev))
            elif what == "raw":
                h.chunk(arg)
            elif what == "cut":
                line = self._bookmark(w.filter.kind, sent_rv)
                h.cut(line[:len(line) // 2] if arg else None)
                return
            else:   # stop: the server is going away; its connections are being dropped
                h.close_connection = True
                return


def _abort(conn):
    """Close a connection with no TLS close_notify and no chunk terminator: a dead peer."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description="a test Kubernetes API server (empty store)")
    ap.add_argument("--dir", required=True, help="where the CA, certificate and token go")
    ap.add_argument("--port", type=int, default=0, help="127.0.0.1 port (0: a free one)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--http1-only", action="store_true", help="no h2 in ALPN")
    args = ap.parse_args()
    api = ApiServer(cert_dir=args.dir, port=args.port, bookmark_interval=args.bookmark_interval,
                    http2=not args.http1_only)
    api.start()
    print(f"url {api.url}\nca {api.ca_file}\ntoken {api.token_file}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    api.stop()


if __name__ == "__main__":
    main()
