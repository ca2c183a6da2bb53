"""The test Kubernetes API server itself (tests/kube/apiserver.py), through a real HTTPS client
that verifies its certificate against the CA: paging, selectors, watch order, bookmarks, 410
after compaction, tokens and their rotation, throttling, cut streams, restarts, and the shape
check that keeps its objects real. No h2steer daemon."""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "kube"))

import apiserver  # noqa: E402
import objects as o  # noqa: E402

SVC = "/api/v1/namespaces/a/services"


@pytest.fixture(scope="module")
def certs():
    """One CA and certificate for the module's servers (each test still makes its own
    server); test_cert_is_made_at_start covers making them."""
    d = tempfile.mkdtemp(prefix="kubeapi-certs-")
    apiserver.make_certs(d)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def api(certs):
    d = tempfile.mkdtemp(prefix="kubeapi-")
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(os.path.join(certs, name), d)
    server = apiserver.ApiServer(cert_dir=d).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(d)


def context(api):
    return ssl.create_default_context(cafile=api.ca_file)


def request(api, path, token=None, method="GET", host="127.0.0.1"):
    """(status, headers, body: parsed JSON if it is JSON)."""
    c = http.client.HTTPSConnection(host, api.port, context=context(api), timeout=10)
    try:
        tok = api.token if token is None else token
        c.request(method, path, headers={"Authorization": "Bearer " + tok} if tok else {})
        r = c.getresponse()
        data = r.read()
        if r.getheader("Content-Type") == "application/json":
            data = json.loads(data)
        return r.status, dict(r.getheaders()), data
    finally:
        c.close()


class Stream:
    """A watch response read line by line; .end is "clean" (chunk terminator), "cut" (the
    connection died) or None (still open)."""

    def __init__(self, api, path, token=None):
        self.conn = http.client.HTTPSConnection("127.0.0.1", api.port, context=context(api),
                                                timeout=10)
        self.conn.request("GET", path, headers={"Authorization": "Bearer " +
                                                (token or api.token)})
        self.resp = self.conn.getresponse()
        self.buf = b""
        self.end = None

    def _fill(self):
        try:
            data = self.resp.read1(65536)
        except http.client.IncompleteRead as e:
            self.buf += e.partial
            self.end = "cut"
            return
        if not data:
            self.end = "clean"
        self.buf += data

    def line(self):
        """The next complete line as bytes, or None once the stream ended."""
        while b"\n" not in self.buf and self.end is None:
            self._fill()
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def event(self):
        line = self.line()
        return None if line is None else json.loads(line)

    def events(self, n):
        return [self.event() for _ in range(n)]

    def rest(self):
        """Everything until the end of the stream."""
        while self.end is None:
            self._fill()
        return self.buf

    def close(self):
        self.conn.close()


def watch(api, path, **query):
    q = "&".join(f"{k}={v}" for k, v in {"watch": "1", **query}.items())
    return Stream(api, f"{path}?{q}")


def test_cert_is_made_at_start_and_verified_against_the_ca():
    with apiserver.ApiServer() as api:
        assert api.url == f"https://127.0.0.1:{api.port}"
        status, _, body = request(api, "/version")
        assert status == 200 and body["major"] == "1"
        status, _, _ = request(api, "/version", host="localhost")     # the DNS SAN
        assert status == 200
        c = http.client.HTTPSConnection("127.0.0.1", api.port, timeout=5,
                                        context=ssl.create_default_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            c.request("GET", "/version")
        c.close()
        with open(api.token_file) as f:
            assert f.read() == api.token
        d = api.cert_dir
    assert not os.path.exists(d), "close() removes the directory it made"


def test_list_pages_are_one_consistent_snapshot(api):
    for ns, name in (("b", "s1"), ("a", "s3"), ("a", "s1"), ("b", "s0"), ("a", "s2")):
        api.apply(o.service(ns, name))
    rv = api.resource_version
    status, _, page = request(api, "/api/v1/services?limit=2")
    assert status == 200 and page["kind"] == "ServiceList" and page["apiVersion"] == "v1"
    o.validate(page)
    assert page["metadata"]["resourceVersion"] == rv
    assert page["metadata"]["remainingItemCount"] == 3
    # Changes between pages do not show in the later ones (they are read at the first's RV).
    api.apply(o.service("a", "s0"))
    api.apply(o.service("b", "s1", labels={"changed": "yes"}))
    pages = [page]
    while "continue" in pages[-1]["metadata"]:
        status, _, page = request(api, "/api/v1/services?limit=2&continue=" +
                                  pages[-1]["metadata"]["continue"])
        assert status == 200 and page["metadata"]["resourceVersion"] == rv
        pages.append(page)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    items = [i for p in pages for i in p["items"]]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("a", "s1"), ("a", "s2"), ("a", "s3"), ("b", "s0"), ("b", "s1")]
    assert all("kind" not in i and "apiVersion" not in i for i in items)
    assert "labels" not in items[-1]["metadata"]
    status, _, now = request(api, "/api/v1/services")
    assert len(now["items"]) == 6 and "continue" not in now["metadata"]
    assert int(now["metadata"]["resourceVersion"]) == int(rv) + 2
    # resourceVersionMatch=Exact reads the past too; a plain resourceVersion gets the latest.
    status, _, then = request(api, f"/api/v1/services?resourceVersion={rv}"
                                   "&resourceVersionMatch=Exact")
    assert then["metadata"]["resourceVersion"] == rv and len(then["items"]) == 5
    assert "labels" not in then["items"][-1]["metadata"]
    status, _, latest = request(api, f"/api/v1/services?resourceVersion={rv}")
    assert latest == now
    status, _, body = request(api, f"/api/v1/services?resourceVersion={int(rv) + 9}")
    assert status == 504 and body["reason"] == "Timeout"


def test_each_kind_and_its_paths(api):
    svc = api.apply(o.service("a", "greeter"))
    api.apply(o.endpoint_slice("a", "greeter", name="greeter-abcde",
                               service_uid=svc["metadata"]["uid"],
                               endpoints=[o.endpoint(["10.0.0.1"], node_name="n1", zone="z1",
                                                     hints_zones=["z1"], hints_nodes=["n1"],
                                                     target_pod="a/greeter-1")]))
    api.apply(o.endpoint_slice("b", "other", endpoints=[]))
    api.apply(o.node("n1", zone="z1", region="r1"))
    status, _, lst = request(api, "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices")
    assert (status, lst["kind"], lst["apiVersion"]) == (200, "EndpointSliceList",
                                                        "discovery.k8s.io/v1")
    o.validate(lst)
    [eps] = lst["items"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "greeter"
    assert eps["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert eps["endpoints"][0]["hints"] == {"forZones": [{"name": "z1"}],
                                            "forNodes": [{"name": "n1"}]}
    status, _, lst = request(api, "/apis/discovery.k8s.io/v1/endpointslices")
    assert len(lst["items"]) == 2 and lst["items"][1]["endpoints"] is None
    status, _, nodes = request(api, "/api/v1/nodes")
    assert nodes["kind"] == "NodeList" and len(nodes["items"]) == 1
    status, _, n1 = request(api, "/api/v1/nodes/n1")
    assert status == 200 and n1["kind"] == "Node"
    assert n1["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z1"
    status, _, one = request(api, SVC + "/greeter")
    assert status == 200 and one == api.get("Service", "a", "greeter")
    status, _, body = request(api, SVC + "/nope")
    assert status == 404 and body["reason"] == "NotFound" and body["kind"] == "Status"
    assert body["message"] == 'services "nope" not found'
    status, _, body = request(api, "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices/x")
    assert status == 404 and body["details"]["group"] == "discovery.k8s.io"
    for path in ("/apis/foo.io/v1/bars", "/api/v1/namespaces/a/nodes", "/api/v1/services/x",
                 "/nowhere"):
        status, _, body = request(api, path)
        assert status == 404 and body["code"] == 404, path
    status, _, body = request(api, "/healthz")
    assert (status, body) == (200, b"ok")
    status, _, body = request(api, SVC, method="POST")
    assert status == 405 and body["reason"] == "MethodNotAllowed"


def test_selectors(api):
    api.apply(o.service("a", "x", labels={"app": "x", "tier": "web"}))
    api.apply(o.service("a", "y", labels={"app": "y"}))
    api.apply(o.service("b", "x"))

    def names(query):
        status, _, body = request(api, "/api/v1/services?" + query)
        assert status == 200, body
        return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]]
    assert names("labelSelector=app%3Dx") == [("a", "x")]
    assert names("labelSelector=app%3D%3Dy") == [("a", "y")]
    assert names("labelSelector=app!%3Dx") == [("a", "y"), ("b", "x")]
    assert names("labelSelector=tier") == [("a", "x")]
    assert names("labelSelector=!tier") == [("a", "y"), ("b", "x")]
    assert names("labelSelector=app%3Dx,tier%3Dweb") == [("a", "x")]
    assert names("labelSelector=app%3Dx,tier%3Ddb") == []
    assert names("fieldSelector=metadata.name%3Dx") == [("a", "x"), ("b", "x")]
    assert names("fieldSelector=metadata.namespace%3Db") == [("b", "x")]
    assert names("fieldSelector=metadata.name!%3Dx") == [("a", "y")]
    status, _, body = request(api, "/api/v1/services?fieldSelector=spec.type%3DClusterIP")
    assert status == 400 and body["reason"] == "BadRequest"


def test_watch_from_an_rv_sees_each_change_in_order(api):
    api.apply(o.service("a", "before"))
    rv0 = int(api.resource_version)
    api.apply(o.service("a", "s", labels={"v": "1"}))
    api.apply(o.service("b", "elsewhere"))                       # another namespace
    api.apply(o.endpoint_slice("a", "s"))                          # another kind
    api.apply(o.service("a", "s", labels={"v": "2"}))
    api.delete("Service", "a", "s")
    w = watch(api, SVC, resourceVersion=rv0)
    try:
        assert w.resp.status == 200
        assert w.resp.getheader("Content-Type") == "application/json"
        assert w.resp.getheader("Transfer-Encoding") == "chunked"
        evs = w.events(3)
        assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
        assert all(e["object"]["kind"] == "Service" and e["object"]["apiVersion"] == "v1"
                   for e in evs)
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
        assert rv0 < rvs[0] < rvs[1] < rvs[2] == int(api.resource_version)
        assert evs[1]["object"]["metadata"]["labels"] == {"v": "2"}
        assert evs[2]["object"]["metadata"]["labels"] == {"v": "2"}    # the last state
        for e in evs:
            o.validate(e["object"])
        api.apply(o.service("a", "live"))                              # after it started
        live = w.event()
        assert live["type"] == "ADDED" and live["object"]["metadata"]["name"] == "live"
    finally:
        w.close()
    # No resourceVersion: the current state first, as ADDED events.
    w = watch(api, "/api/v1/services", timeoutSeconds=1)
    try:
        evs = w.events(3)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
            ("ADDED", "before"), ("ADDED", "live"), ("ADDED", "elsewhere")]
        assert w.rest() == b"" and w.end == "clean"
    finally:
        w.close()


def test_watch_selector_turns_a_change_out_of_it_into_deleted(api):
    rv0 = api.resource_version
    api.apply(o.service("a", "s", labels={"app": "s"}))
    api.apply(o.service("a", "s", labels={"app": "other"}))
    api.apply(o.service("a", "s", labels={"app": "s"}))
    w = watch(api, SVC, resourceVersion=rv0, labelSelector="app%3Ds", timeoutSeconds=1)
    try:
        assert [e["type"] for e in w.events(3)] == ["ADDED", "DELETED", "ADDED"]
        assert w.rest() == b""
    finally:
        w.close()


def test_bookmarks_carry_the_rv_when_asked_for(api):
    api.bookmark_interval = 0.2
    api.apply(o.service("a", "s"))
    w = watch(api, SVC, resourceVersion=api.resource_version, allowWatchBookmarks="true")
    try:
        t = time.monotonic()
        mark = w.event()
        assert time.monotonic() - t < 1.5
        assert mark == {"type": "BOOKMARK", "object": {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"resourceVersion": api.resource_version}}}
        api.apply(o.service("b", "not-this-namespace"))
        mark = w.event()
        assert mark["type"] == "BOOKMARK"
        assert mark["object"]["metadata"]["resourceVersion"] == api.resource_version
    finally:
        w.close()
    w = watch(api, SVC, resourceVersion=api.resource_version, timeoutSeconds=1)
    try:
        assert w.rest() == b"" and w.end == "clean"      # none unless asked for
    finally:
        w.close()


def test_watch_from_before_a_compaction_gets_410_expired(api):
    api.apply(o.service("a", "s"))
    api.apply(o.service("a", "s2"))
    old = api.resource_version
    _, _, page = request(api, "/api/v1/services?limit=1")
    api.apply(o.service("a", "t"))
    api.compact()
    now = api.resource_version
    w = watch(api, SVC, resourceVersion=old)
    try:
        assert w.resp.status == 200
        err = w.event()
        assert err["type"] == "ERROR"
        assert err["object"] == o.status(410, "Expired",
                                         f"too old resource version: {old} ({now})")
        assert w.rest() == b"" and w.end == "clean"
    finally:
        w.close()
    status, _, body = request(api, "/api/v1/services?limit=1&continue=" +
                              page["metadata"]["continue"])
    assert status == 410 and body["reason"] == "Expired"
    w = watch(api, SVC, resourceVersion=now)
    try:
        api.apply(o.service("a", "u"))
        assert w.event()["object"]["metadata"]["name"] == "u"
    finally:
        w.close()
    status, _, body = request(api, SVC + f"?watch=1&resourceVersion={int(now) + 5}")
    assert status == 504 and body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_bad_token_401_and_the_rotated_one_accepted(api):
    for token in ("", "wrong"):
        status, _, body = request(api, "/api/v1/services", token=token)
        assert status == 401
        assert body == o.status(401, "Unauthorized", "Unauthorized")
    old = api.token
    assert request(api, "/api/v1/services")[0] == 200
    inode = os.stat(api.token_file).st_ino
    api.set_token("rotated-token")
    with open(api.token_file) as f:
        assert f.read() == "rotated-token"
    assert os.stat(api.token_file).st_ino != inode, "a rename, not a rewrite in place"
    assert request(api, "/api/v1/services", token=old)[0] == 401
    assert request(api, "/api/v1/services", token="rotated-token")[0] == 200
    assert [r["token"] for r in api.requests] == [None, "wrong", old, old, "rotated-token"]
    assert api.requests[0]["path"] == "/api/v1/services" and api.requests[0]["method"] == "GET"


def test_throttle_gives_429_with_retry_after_then_errors(api):
    api.throttle(2, retry_after=3)
    api.fail(1, code=503)
    for _ in range(2):
        status, headers, body = request(api, "/api/v1/services?limit=5")
        assert status == 429 and headers["Retry-After"] == "3"
        assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
        o.validate(body)
    status, _, body = request(api, "/api/v1/services")
    assert status == 503 and body["reason"] == "ServiceUnavailable"
    api.fail(1)
    status, _, body = request(api, "/api/v1/services")
    assert status == 500 and body["reason"] == "InternalError"
    assert request(api, "/api/v1/services")[0] == 200
    assert api.requests[0]["query"] == {"limit": "5"}


def test_cut_mid_object_leaves_a_partial_line_and_no_terminator(api):
    w = watch(api, SVC)
    try:
        assert api.wait_watches(1, kind="Service")
        api.apply(o.service("a", "s"))
        assert w.event()["type"] == "ADDED"
        assert api.cut_watches(mid_object=True) == 1
        tail = w.rest()
        assert w.end == "cut" and tail and not tail.endswith(b"\n")
        with pytest.raises(ValueError):
            json.loads(tail)
        assert api.watch_count() == 0
    finally:
        w.close()
    w = watch(api, SVC, resourceVersion=api.resource_version)
    try:
        assert api.wait_watches(1)
        assert api.cut_watches() == 1
        assert w.rest() == b"" and w.end == "cut"
    finally:
        w.close()


def test_inject_line_reaches_the_watches_of_its_kind(api):
    ws = watch(api, SVC)
    we = watch(api, "/apis/discovery.k8s.io/v1/endpointslices", timeoutSeconds=1)
    try:
        assert api.wait_watches(2)
        api.inject_line("Service", b"not json\n")
        assert ws.line() == b"not json"
        assert we.rest() == b"" and we.end == "clean"
    finally:
        ws.close()
        we.close()


def test_restart_keeps_state_port_and_certificate(api):
    api.apply(o.service("a", "s"))
    rv, port = api.resource_version, api.port
    w = watch(api, SVC, resourceVersion=rv)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context(api), timeout=5)
    c.connect()
    cert = c.sock.getpeercert(binary_form=True)
    c.close()
    try:
        assert api.wait_watches(1)
        api.restart()
        assert w.rest() == b"" and w.end == "cut"
    finally:
        w.close()
    assert api.port == port
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context(api), timeout=5)
    c.connect()
    assert c.sock.getpeercert(binary_form=True) == cert
    c.close()
    status, _, body = request(api, SVC)
    assert status == 200 and body["metadata"]["resourceVersion"] == rv
    assert [i["metadata"]["name"] for i in body["items"]] == ["s"]
    w = watch(api, SVC, resourceVersion=rv)          # the history survived too
    try:
        api.apply(o.service("a", "t"))
        assert w.event()["object"]["metadata"]["name"] == "t"
    finally:
        w.close()
    api.stop()
    with pytest.raises(OSError):
        request(api, SVC)
    api.start()
    assert request(api, SVC)[0] == 200


def test_apply_refuses_shapes_that_are_not_real(api):
    svc = o.service("a", "s")
    svc["spec"]["clusterIp"] = svc["spec"].pop("clusterIP")          # misspelled
    with pytest.raises(ValueError, match="clusterIp"):
        api.apply(svc)
    eps = o.endpoint_slice("a", "s")
    eps["adressType"] = eps.pop("addressType")
    with pytest.raises(ValueError):
        api.apply(eps)
    eps = o.endpoint_slice("a", "s")
    eps["endpoints"][0]["conditions"]["redy"] = True
    with pytest.raises(ValueError, match="redy"):
        api.apply(eps)
    with pytest.raises(ValueError, match="trafficDistribution"):
        api.apply(o.service("a", "s", traffic_distribution="PreferFar"))
    with pytest.raises(ValueError, match="addresses"):                 # not a list
        api.apply(o.endpoint_slice("a", "s", endpoints=[{"addresses": "10.0.0.1"}]))
    with pytest.raises(ValueError, match="port"):                      # not an integer
        api.apply(o.endpoint_slice("a", "s", ports=[{"name": "grpc", "port": "8080"}]))
    assert api.resource_version == "1", "nothing was stored"
    assert api.get("Service", "a", "s") is None
    # What the builders make is taken, and the server's fields are filled in.
    first = api.apply(o.service("a", "s", traffic_distribution="PreferClose"))
    assert first["metadata"]["uid"] and first["metadata"]["creationTimestamp"].endswith("Z")
    again = api.apply(first)
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(again["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    with pytest.raises(ValueError, match="conflict"):
        api.apply(first)                                  # a stale resourceVersion
    s1 = api.apply(o.endpoint_slice("a", "s", name="s-aaaaa"))
    s2 = api.apply(o.endpoint_slice("a", "s", name="s-aaaaa",
                                    endpoints=[o.endpoint(["10.0.0.2"], ready=False)]))
    assert (s1["metadata"]["generation"], s2["metadata"]["generation"]) == (1, 2)


def test_cli_serves_an_empty_store():
    d = tempfile.mkdtemp(prefix="kubeapi-cli-")
    p = subprocess.Popen([sys.executable, os.path.join(TOP, "tests", "kube", "apiserver.py"),
                          "--dir", d, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        info = dict(p.stdout.readline().split(" ", 1) for _ in range(3))
        info = {k: v.strip() for k, v in info.items()}
        with open(info["token"]) as f:
            token = f.read()
        port = int(info["url"].rsplit(":", 1)[1])
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                        context=ssl.create_default_context(cafile=info["ca"]))
        c.request("GET", "/api/v1/services", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        assert r.status == 200 and body["items"] == [] and body["kind"] == "ServiceList"
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        p.stdout.close()
        shutil.rmtree(d)


# ---- through curl (libcurl, the daemon's client): HTTP/2 as with a real server, and 1.1 ----

def curl(api, *args, proto="--http2", token=None):
    return ["curl", "-sS", proto, "--cacert", api.ca_file, "-H",
            "Authorization: Bearer " + (token or api.token),
            "-w", "\\n%{http_version} %{http_code}\\n", *args]


@pytest.mark.parametrize("proto,version", [("--http2", "2"), ("--http1.1", "1.1")])
def test_curl_lists_and_watches(api, proto, version):
    api.apply(o.service("a", "s"))
    r = subprocess.run(curl(api, api.url + SVC, proto=proto), capture_output=True, text=True,
                       timeout=20)
    body, tail = r.stdout.rsplit("\n", 2)[:2]
    assert r.returncode == 0 and tail == f"{version} 200", r.stderr
    assert [i["metadata"]["name"] for i in json.loads(body)["items"]] == ["s"]
    r = subprocess.run(curl(api, api.url + SVC, proto=proto, token="bad"), capture_output=True,
                       text=True, timeout=20)
    assert r.stdout.endswith(f"{version} 401\n")
    # Two watches in one curl: over HTTP/2 they share a connection, and the flow-control
    # windows must open for events bigger than the initial 64 KiB.
    url = api.url + SVC + "?watch=1&timeoutSeconds=2&resourceVersion=" + api.resource_version
    p = subprocess.Popen(curl(api, "--parallel", url, url, proto=proto), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert api.wait_watches(2)
        for i in range(40):
            api.apply(o.service("a", f"big{i}", annotations={"pad": "x" * 4000}))
        out, err = p.communicate(timeout=20)
    finally:
        p.kill() if p.poll() is None else None
    assert p.returncode == 0, err
    assert out.count('{"type":"ADDED"') == 80 and out.count(f"{version} 200") == 2


@pytest.mark.parametrize("proto", ["--http2", "--http1.1"])
def test_curl_sees_a_cut_mid_object_as_an_error(api, proto):
    url = api.url + SVC + "?watch=1&resourceVersion=" + api.resource_version
    p = subprocess.Popen(curl(api, url, proto=proto), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert api.wait_watches(1)
        api.apply(o.service("a", "s"))       # queued before the cut, so sent whole first
        assert api.cut_watches(mid_object=True) == 1
        out, err = p.communicate(timeout=10)
    finally:
        p.kill() if p.poll() is None else None
    assert p.returncode == 18, err        # CURLE_PARTIAL_FILE: the stream did not end cleanly
    lines = out.split(b"\n")
    assert json.loads(lines[0])["object"]["metadata"]["name"] == "s"
    assert lines[1].startswith(b'{"type":"BOOKMARK"') and not lines[1].endswith(b"}")


def test_http1_only_server_keeps_curl_on_1_1(certs):
    d = tempfile.mkdtemp(prefix="kubeapi-")
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(os.path.join(certs, name), d)
    try:
        with apiserver.ApiServer(cert_dir=d, http2=False) as api:
            r = subprocess.run(curl(api, api.url + "/version"), capture_output=True, text=True,
                               timeout=20)
            assert r.stdout.endswith("1.1 200\n"), r.stderr
    finally:
        shutil.rmtree(d)
