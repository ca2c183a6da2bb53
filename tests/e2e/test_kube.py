"""The Kubernetes source end to end: a test API server (tests/kube/apiserver.py: HTTPS with its
own CA, bearer tokens, list + watch with bookmarks, 410, 429, cut streams; objects checked
against the python3-kubernetes models), real grpc-go backends, the daemon watching it, and ONE
client connection per load. No Kubernetes API server can run here; this one speaks its
protocol. Service VIPs are loopback addresses, pods are backends on 127.0.10.x."""
import json
import os
import sys
import time

import h2slab

sys.path.insert(0, os.path.join(h2slab.TOP, "tests", "kube"))
import apiserver  # noqa: E402
import objects as k8s  # noqa: E402

NS = "demo"


class Cluster:
    """The API server, the daemon watching it, and helpers to shape Services and slices."""

    def __init__(self, lab, node="node-a", zone="zone-1", extra=(), config=None):
        self.lab = lab
        self.api = apiserver.ApiServer(cert_dir=os.path.join(lab.tmp, "kubeapi"),
                                       bookmark_interval=1.0)
        self.api.start()
        self.api.apply(k8s.node(node, zone=zone))
        self.node = node
        argv = ["--kubernetes", self.api.url, "--kube-token-file", self.api.token_file,
                "--kube-ca-file", self.api.ca_file, "--node-name", node, *extra]
        self.d = lab.daemon(config=config, extra=argv)

    def close(self):
        self.api.close()

    def service(self, name, vip, port_name="grpc", app_protocol="grpc", **kw):
        host, port = vip.rsplit(":", 1)
        p = {"name": port_name, "port": int(port), "targetPort": port_name}
        if app_protocol:
            p["appProtocol"] = app_protocol
        svc = k8s.service(NS, name, cluster_ips=[host], ports=[p], **kw)
        self.api.apply(svc)
        return svc

    def slice(self, svc_name, backends, port_name="grpc", name=None, **ep_kw):
        """One EndpointSlice of backends (all on one port: a slice has one port per name).
        ep_kw: per-backend overrides, as {backend.id: {ready:..., node_name:...}}."""
        port = backends[0].port if backends else 1
        eps = []
        for b in backends:
            kw = {"node_name": "node-x"}
            kw.update(ep_kw.get(b.id, {}))
            eps.append(k8s.endpoint(addresses=[b.host], target_pod=f"{NS}/{svc_name}-{b.id}",
                                    **kw))
        sl = k8s.endpoint_slice(NS, svc_name, name=name or f"{svc_name}-abcde",
                                ports=[{"name": port_name, "port": port, "protocol": "TCP"}],
                                endpoints=eps)
        self.api.apply(sl)
        return sl

    def status(self):
        """The daemon's Kubernetes source as `h2steer status` shows it."""
        st = self.lab.cli(self.d, "status", json_out=True, check=False).json
        return (st.get("daemon") or {}).get("kubernetes") or {}

    def backends(self, vip):
        return self.lab.cli(self.d, "backend", "list", vip, json_out=True, check=False)


def pods(lab, n, first=1):
    """n grpc-go backends on 127.0.10.first.. sharing one port (a slice's port)."""
    port = h2slab.free_port(f"127.0.10.{first}")
    return [h2slab.Backend(lab, f"p{i}", host=f"127.0.10.{i}", port=port)
            for i in range(first, first + n)]


def wait_until(what, cond, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def n_backends(c, vip):
    r = c.backends(vip)
    return len(r.json) if r.returncode == 0 and getattr(r, "json", None) is not None else -1


def finish(client):
    assert client.p.wait(120) == 0, client.tail()
    return json.loads(client.text().strip().splitlines()[-1])


def test_service_created_through_the_api_is_balanced_per_rpc_within_1s(lab):
    c = Cluster(lab)
    try:
        bes = pods(lab, 3)
        vip = lab.vip()
        wait_until("synced", lambda: c.status().get("synced"))
        t0 = time.monotonic()
        c.slice("greeter", bes)
        c.service("greeter", vip)
        wait_until("3 backends", lambda: n_backends(c, vip) == 3, timeout=5)
        took = time.monotonic() - t0
        assert took < 1.0, f"the service took {took:.2f} s to be balanced"
        r = lab.client(vip, "unary", "-n", 300, "-c", 4)
        assert r["ok"] == 300 and r["errors"] == {} and r["dials"] == 1, r
        for b in bes:
            assert 80 <= r["by_backend"].get(b.id, 0) <= 120, r["by_backend"]
        # Named as Kubernetes knows it, no config naming it.
        out = lab.cli(c.d, "service", "list").stdout
        assert "demo/greeter:grpc" in out, out
        st = c.status()
        assert st["synced"] and st["balanced"] == 1, st
        scraped = c.d.scrape()
        labels = dict(namespace="demo", kube_service="greeter", kube_port="grpc")
        assert h2slab.metric(scraped, "h2steer_service_info", service=vip, **labels) == 1
        ok = sum(v for (name, ls), v in scraped.items() if name == "h2steer_rpcs_total" and
                 dict(ls).get("namespace") == "demo" and dict(ls).get("grpc_status") == "0")
        assert ok == 300, [k for k in scraped if k[0] == "h2steer_rpcs_total"]
        print(f"service balanced {took * 1000:.0f} ms after its objects; {r['by_backend']}")
        # Removed through the API: gone from the maps.
        c.api.delete("Service", NS, "greeter")
        wait_until("service gone", lambda: n_backends(c, vip) == -1, timeout=5)
    finally:
        c.close()


def test_endpoints_3_to_6_to_3_under_load_fail_nothing(lab):
    c = Cluster(lab)
    try:
        bes = pods(lab, 6)
        vip = lab.vip()
        c.service("greeter", vip)
        c.slice("greeter", bes[:3])
        wait_until("3 backends", lambda: n_backends(c, vip) == 3)
        # ~9 s of paced RPCs over one connection: scale up at 1.5 s, down at 4.5 s.
        client = lab.client_async(vip, "unary", "-n", 10000, "-c", 4, "-interval-us", 3000,
                                  "-tail", 2500)
        time.sleep(1.5)
        t_add = time.time() * 1000
        c.slice("greeter", bes)  # the same slice now lists six
        time.sleep(3)
        c.slice("greeter", bes[:3])
        t_del = time.time()
        r = finish(client)
        assert time.time() - t_del > 2.5, "the load ended too soon after the scale down"
        assert r["ok"] == 10000 and r["errors"] == {} and r["dials"] == 1, r
        shift = max(r["first_seen_unix_ms"][b.id] - t_add for b in bes[3:])
        assert shift < 1000, f"new endpoints first served {shift:.0f} ms after the event"
        for b in bes[3:]:
            assert r["by_backend"][b.id] > 300, r["by_backend"]
            assert r["tail_by_backend"].get(b.id, 0) == 0, r["tail_by_backend"]
        print(f"3 -> 6 -> 3: new endpoints served after {shift:.0f} ms; {r['by_backend']}")
    finally:
        c.close()


def test_rolling_update_over_one_connection_fails_nothing(lab):
    """A Deployment's rolling update as the EndpointSlice controller shows it: a new pod not
    ready, then ready; an old one terminating (serving), then not serving, then gone."""
    c = Cluster(lab)
    try:
        old = pods(lab, 3, first=1)
        new = pods(lab, 3, first=21)
        vip = lab.vip()
        c.service("greeter", vip)
        c.slice("greeter", old, name="greeter-old")
        wait_until("3 backends", lambda: n_backends(c, vip) == 3)
        client = lab.client_async(vip, "unary", "-n", 8000, "-c", 4, "-interval-us", 3000,
                                  "-tail", 1500)
        time.sleep(1)
        live_old = list(old)
        live_new = []
        for i in range(3):
            c.slice("greeter", live_new + [new[i]], name="greeter-new",
                    **{new[i].id: {"ready": False, "serving": False}})
            time.sleep(0.4)
            live_new.append(new[i])
            c.slice("greeter", live_new, name="greeter-new")
            time.sleep(0.4)
            leaving = live_old[0]
            c.slice("greeter", live_old, name="greeter-old",
                    **{leaving.id: {"ready": False, "serving": True, "terminating": True}})
            time.sleep(0.6)
            c.slice("greeter", live_old, name="greeter-old",
                    **{leaving.id: {"ready": False, "serving": False, "terminating": True}})
            time.sleep(0.3)
            live_old = live_old[1:]
            if live_old:
                c.slice("greeter", live_old, name="greeter-old")
            else:
                c.api.delete("EndpointSlice", NS, "greeter-old")
            leaving.stop()  # the pod exits after its grace period
            time.sleep(0.3)
        r = finish(client)
        assert r["ok"] == 8000 and r["errors"] == {} and r["dials"] == 1, r
        for b in new:
            assert r["tail_by_backend"].get(b.id, 0) > 300, r["tail_by_backend"]
        print(f"rolling update, one connection: {r['by_backend']}")
    finally:
        c.close()


def test_terminating_endpoint_gets_no_new_rpcs_and_fails_nothing(lab):
    c = Cluster(lab)
    try:
        bes = pods(lab, 3)
        vip = lab.vip()
        c.service("greeter", vip)
        c.slice("greeter", bes)
        wait_until("3 backends", lambda: n_backends(c, vip) == 3)
        client = lab.client_async(vip, "unary", "-n", 3000, "-c", 4, "-interval-us", 3000,
                                  "-tail", 1500)
        time.sleep(1.5)
        c.slice("greeter", bes, **{"p1": {"ready": False, "serving": True, "terminating": True}})
        r = finish(client)
        assert r["ok"] == 3000 and r["errors"] == {}, r
        assert r["tail_by_backend"].get("p1", 0) == 0, r["tail_by_backend"]
        listed = c.backends(vip).json
        p1 = [b for b in listed if b["address"].startswith("127.0.10.1:")]
        assert p1 and p1[0].get("terminating"), listed
    finally:
        c.close()


def lists(api):
    return sum(1 for q in api.requests if q["query"].get("watch") not in ("1", "true"))


def test_api_restart_cut_watch_and_410_keep_state_and_resync(lab):
    c = Cluster(lab)
    try:
        bes = pods(lab, 4)
        vip = lab.vip()
        c.service("greeter", vip)
        c.slice("greeter", bes[:3])
        wait_until("3 backends", lambda: n_backends(c, vip) == 3)
        client = lab.client_async(vip, "unary", "-n", 6000, "-c", 4, "-interval-us", 3000)
        time.sleep(0.5)
        # A stream cut mid-object: resumed from the last version seen, no new list.
        before = lists(c.api)
        c.api.cut_watches(mid_object=True)
        c.api.wait_watches(2, timeout=10)
        assert lists(c.api) == before, "a cut watch made the daemon list again"
        # The API server goes away: the state stays and status says why.
        c.api.stop()
        time.sleep(2.5)
        assert n_backends(c, vip) == 3
        st = c.status()
        assert st["last_error"] and st["state"] == "degraded", st
        # Meanwhile a change, then the history is compacted: the daemon's version is too old
        # when the server is back (410 Gone), so it lists again and finds the change.
        c.slice("greeter", bes)
        c.api.compact()
        c.api.start()
        wait_until("4 backends after the relist", lambda: n_backends(c, vip) == 4, timeout=15)
        r = finish(client)
        assert r["ok"] == 6000 and r["errors"] == {} and r["dials"] == 1, r
        assert lists(c.api) > before, "no list after 410"
        st = c.status()
        assert st["endpointslices"]["relists"] >= 1, st
        assert st["synced"], st
    finally:
        c.close()


def test_rotated_token_is_used_by_the_next_request(lab):
    c = Cluster(lab)
    try:
        vip = lab.vip()
        bes = pods(lab, 2)
        c.service("greeter", vip)
        c.slice("greeter", bes)
        wait_until("2 backends", lambda: n_backends(c, vip) == 2)
        old = c.api.requests[-1]["token"]
        c.api.set_token(old + "-rotated")
        time.sleep(1.2)  # the client looks at the file at most once a second
        n = len(c.api.requests)
        c.api.cut_watches()
        wait_until("a request with the new token",
                   lambda: any(q["token"] == old + "-rotated" for q in c.api.requests[n:]),
                   timeout=10)
        assert all(q["token"] == old + "-rotated" for q in c.api.requests[n:]), \
            [q["token"][-8:] for q in c.api.requests[n:]]
        c.slice("greeter", bes[:1])
        wait_until("1 backend", lambda: n_backends(c, vip) == 1, timeout=5)
    finally:
        c.close()


def _locality(lab, distribution, local_kw, remote_kw):
    c = Cluster(lab, node="node-a", zone="zone-1")
    try:
        bes = pods(lab, 4)
        vip = lab.vip()
        c.service("greeter", vip, traffic_distribution=distribution)
        kw = {b.id: dict(local_kw) for b in bes[:2]}
        kw.update({b.id: dict(remote_kw) for b in bes[2:]})
        c.slice("greeter", bes, **kw)
        wait_until("4 backends", lambda: n_backends(c, vip) == 4)
        r = lab.client(vip, "unary", "-n", 200, "-c", 4)
        assert r["ok"] == 200 and r["errors"] == {}, r
        assert set(r["by_backend"]) == {"p1", "p2"}, r["by_backend"]
        listed = {b["address"]: b for b in c.backends(vip).json}
        assert listed[bes[0].addr].get("local") is True, listed
        assert listed[bes[3].addr].get("local") is False, listed
        # The local ones stop serving: within 1 s every RPC goes elsewhere, none fails.
        client = lab.client_async(vip, "unary", "-n", 1500, "-c", 4, "-interval-us", 2000,
                                  "-timeline-ms", 250)
        time.sleep(0.8)
        t_off = time.time()
        off = {b.id: dict(local_kw, ready=False, serving=False) for b in bes[:2]}
        off.update({b.id: dict(remote_kw) for b in bes[2:]})
        c.slice("greeter", bes, **off)
        r = finish(client)
        assert r["ok"] == 1500 and r["errors"] == {}, r
        tail = {k: v for k, v in r["tail_by_backend"].items()} if "tail_by_backend" in r else {}
        assert not tail.get("p1") and not tail.get("p2"), tail
        print(f"{distribution}: local-only, then elsewhere; {r['by_backend']}")
        _ = t_off
    finally:
        c.close()


def test_prefer_same_node_keeps_rpcs_on_this_node_while_its_endpoints_serve(lab):
    _locality(lab, "PreferSameNode", {"node_name": "node-a", "zone": "zone-1"},
              {"node_name": "node-b", "zone": "zone-1"})


def test_prefer_close_keeps_rpcs_in_this_zone_while_its_endpoints_serve(lab):
    _locality(lab, "PreferClose", {"node_name": "node-b", "zone": "zone-1"},
              {"node_name": "node-c", "zone": "zone-2"})


def test_bad_annotation_and_garbage_lines_harm_nothing_else(lab):
    c = Cluster(lab)
    try:
        bes = pods(lab, 2)
        good, bad = lab.vip(), lab.vip()
        c.service("greeter", good)
        c.slice("greeter", bes)
        c.service("broken", bad, annotations={"h2steer.io/algo": "fastest"})
        c.slice("broken", bes)
        wait_until("good service", lambda: n_backends(c, good) == 2)
        c.d.proc.wait_for("Service demo/broken skipped: annotation h2steer.io/algo", timeout=5)
        st = c.status()
        assert "demo/broken" in st["skipped"], st
        assert n_backends(c, bad) == -1
        # Garbage on the watch streams: logged, skipped, nothing emptied.
        c.api.inject_line("Service", b"this is not json\n")
        c.api.inject_line("EndpointSlice", b'{"type":"ADDED","object":{"kind":"EndpointSl')
        c.api.cut_watches()
        time.sleep(1)
        r = lab.client(good, "unary", "-n", 100, "-c", 2)
        assert r["ok"] == 100 and r["errors"] == {}, r
        assert n_backends(c, good) == 2
        # Fixed: balanced from the next event on, and no longer listed as skipped.
        c.service("broken", bad, annotations={"h2steer.io/algo": "peak_ewma"})
        wait_until("fixed service", lambda: n_backends(c, bad) == 2)
        assert "demo/broken" not in c.status()["skipped"]
    finally:
        c.close()


def test_throttled_api_is_retried_after_retry_after(lab):
    c = Cluster(lab)
    try:
        wait_until("synced", lambda: c.status().get("synced"))
        n = len(c.api.requests)
        c.api.throttle(2, retry_after=2)
        c.api.cut_watches()  # both watches come back at once: both get 429

        def by_path():
            out = {}
            for q in c.api.requests[n:]:
                out.setdefault(q["path"], []).append(q["time"])
            return out
        wait_until("each watch retried",
                   lambda: len(by_path()) >= 2 and all(len(t) >= 2 for t in by_path().values()),
                   timeout=15)
        for path, times in by_path().items():
            assert times[1] - times[0] >= 1.9, (path, times)
        # And it goes on working.
        bes = pods(lab, 1)
        vip = lab.vip()
        c.service("greeter", vip)
        c.slice("greeter", bes)
        wait_until("1 backend", lambda: n_backends(c, vip) == 1)
    finally:
        c.close()


def test_not_ready_until_listed_and_ready_while_the_api_is_away_after(lab):
    """/readyz waits for the first complete picture (a node that has not listed yet would
    serve nothing right), and stays ready once it has it, the API server gone or not."""
    api = apiserver.ApiServer(cert_dir=os.path.join(lab.tmp, "kubeapi"))
    api.start()
    api.stop()  # down from the start: the daemon comes up without it
    try:
        d = lab.daemon(extra=["--kubernetes", api.url, "--kube-token-file", api.token_file,
                              "--kube-ca-file", api.ca_file, "--node-name", "node-a"])
        status, text = d.http("/readyz")
        assert status == 503 and "kubernetes" in text, (status, text)
        api.start()
        wait_until("ready", lambda: d.http("/readyz")[0] == 200, timeout=15)
        api.stop()
        time.sleep(1.5)
        status, text = d.http("/readyz")
        assert status == 200 and "last known state" in text, (status, text)
    finally:
        api.close()


def test_in_cluster_outside_a_pod_is_a_clear_start_error(lab):
    env_had = {k: os.environ.pop(k, None) for k in ("KUBERNETES_SERVICE_HOST",
                                                     "KUBERNETES_SERVICE_PORT")}
    try:
        d = lab.daemon(extra=["--kubernetes", "in-cluster", "--node-name", "n1"], wait=False)
        d.proc.exit_expected = True
        assert d.proc.p.wait(30) != 0
        text = d.proc.text()
        assert "KUBERNETES_SERVICE_HOST/PORT are not set" in text, text
        assert "Sanitizer" not in text, text
    finally:
        for k, v in env_had.items():
            if v is not None:
                os.environ[k] = v


def test_a_vip_the_config_declares_is_never_taken_over(lab):
    """The same address in the config and in the API: the config's service stays as it is
    (the Service is skipped, said in status), and stays when the Service goes away."""
    bes = pods(lab, 3)
    vip = lab.vip()
    config = f'services:\n  - vip: "{vip}"\n    backends:\n      - address: "{bes[0].addr}"\n'
    c = Cluster(lab, config=config)
    try:
        c.service("greeter", vip)
        c.slice("greeter", bes[1:])
        wait_until("skipped", lambda: "demo/greeter" in c.status().get("skipped", {}))
        assert "declared by the config" in c.status()["skipped"]["demo/greeter"]
        listed = c.backends(vip).json
        assert [b["address"] for b in listed] == [bes[0].addr], listed
        c.api.delete("Service", NS, "greeter")
        time.sleep(0.5)
        listed = c.backends(vip).json
        assert [b["address"] for b in listed] == [bes[0].addr], listed
        r = lab.client(vip, "unary", "-n", 50, "-c", 2)
        assert r["ok"] == 50 and set(r["by_backend"]) == {"p1"}, r
    finally:
        c.close()
