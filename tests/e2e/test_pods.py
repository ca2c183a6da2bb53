"""Pods: clients and backends in network namespaces of their own, wired by a real CNI chain
(containernetworking-plugins' bridge + host-local, then h2steer-cni) run the way a container
runtime runs it, inside a "node" namespace the test creates — so no pod address ever touches
the machine's network. The daemon lives in the node's namespace."""
import json
import os
import random
import secrets
import subprocess
import sys
import uuid

import pytest

import h2slab

sys.path.insert(0, os.path.join(h2slab.TOP, "tools"))
import cnirun  # noqa: E402

CNI = os.path.join(h2slab.BUILD, "h2steer-cni")
POD_PORT = 15001


class PodNet:
    """A node namespace with a CNI bridge network; pods are namespaces added through the
    chain; the daemon (started by start_daemon) listens on the bridge's gateway for them."""

    def __init__(self, lab, pin_dir, dual_stack=False):
        self.lab = lab
        self.dual_stack = dual_stack
        self.node = self._netns()
        self.net = random.randint(200, 250)
        self.gateway = f"10.{self.net}.0.1"
        self.gateway6 = f"fd00:{self.net}::1"
        self.state_dir = os.path.join(lab.tmp, "pod-state")
        self.pin_dir = pin_dir
        self.conflist = {
            "cniVersion": "1.0.0", "name": f"h2s-pods-{lab.seq()}",
            "plugins": [
                {"type": "bridge", "bridge": f"h2sbr{lab.seq()}", "isGateway": True,
                 "ipMasq": False,
                 "ipam": {"type": "host-local",
                          "ranges": [[{"subnet": f"10.{self.net}.0.0/24"}]] +
                          ([[{"subnet": f"fd00:{self.net}::/64"}]] if dual_stack else []),
                          "dataDir": os.path.join(lab.tmp, "ipam"),
                          "routes": [{"dst": "0.0.0.0/0"}] +
                          ([{"dst": "::/0"}] if dual_stack else [])}},
                # The runtime's cgroup paths start at the lab's cgroup, not at the real root:
                # a pod's kubepods.slice/... is then the lab's and goes with it.
                {"type": "h2steer-cni", "pinDir": pin_dir, "stateDir": self.state_dir,
                 "port": POD_PORT, "cgroupRoot": lab.cgroup,
                 "capabilities": {"cgroupPath": True}},
            ]}
        self.chain = cnirun.Chain(self.conflist, ["/usr/lib/cni", os.path.dirname(CNI)],
                                  self.node)
        self.pods = {}  # name -> (netns, ip)

    def _netns(self):
        ns = self.lab.netns()
        if self.dual_stack:
            # Addresses usable at once: no duplicate address detection in a test's own links.
            subprocess.run(h2slab.in_netns(ns) + ["sysctl", "-qw",
                                                  "net.ipv6.conf.default.accept_dad=0",
                                                  "net.ipv6.conf.all.accept_dad=0"], check=True)
        return ns

    def add_pod(self, name, args="", capability_args=None):
        """A pod on the bridge; returns its namespace and its address (IPv6 when dual
        stack)."""
        ns = self._netns()
        result = self.chain.add(name, f"/run/netns/{ns}", args, capability_args)
        ips = [i["address"].split("/")[0] for i in result["ips"]]
        ip = next((i for i in ips if ":" in i), ips[0]) if self.dual_stack else ips[0]
        self.pods[name] = (ns, ip)
        return ns, ip

    def delete_pod(self, name):
        ns, _ = self.pods[name]
        self.chain.delete(name, f"/run/netns/{ns}")

    def start_daemon(self, services):
        # Listening on the gateway before the bridge has it would need IP_FREEBIND; the
        # daemon sets it, so the order does not matter (here the first pods exist already).
        listen = [f"127.0.0.1:{h2slab.free_port()}", f"{self.gateway}:{POD_PORT}"]
        if self.dual_stack:
            listen += [f"[::1]:{h2slab.free_port('::1')}", f"[{self.gateway6}]:{POD_PORT}"]
        return self.lab.daemon(
            services=services, pin_dir=self.pin_dir, wrap=h2slab.in_netns(self.node),
            listen=listen, extra=["--pod-state-dir", self.state_dir])


@pytest.fixture
def podnet(lab):
    return PodNet(lab, f"/sys/fs/bpf/h2s-lab-{os.getpid()}-{lab.seq()}")


def pod_cgroup(lab, name):
    return lab.make_cgroup(os.path.relpath(os.path.join(lab.cgroup, name), lab.root))


def getpeername_in(lab, ns, cgroup, vip):
    """Connect to vip from a pod and say what getpeername() returns (or the error)."""
    host, port = vip.rsplit(":", 1)
    code = ("import socket,sys\n"
            "s=socket.socket()\ns.settimeout(3)\n"
            f"try:\n s.connect(({host!r},{port}))\n print(s.getpeername())\n"
            "except OSError as e:\n print('error', e.errno)\n")
    r = lab.run(h2slab.in_netns(ns) + [sys.executable, "-c", code], in_cgroup=cgroup)
    return r.stdout.strip()


def test_pod_client_rpcs_spread_over_backend_pods_through_a_real_cni_chain(lab, podnet):
    vip = f"10.96.{podnet.net}.10:50051"
    # Backend pods and one client pod set up while no daemon runs: h2steer-cni leaves records
    # that the daemon loads when it starts.
    backends = []
    for i in (1, 2, 3):
        ns, ip = podnet.add_pod(f"backend{i}")
        backends.append(h2slab.Backend(lab, f"pod-be{i}", host=ip, port=50051, netns=ns))
    early_ns, _ = podnet.add_pod("client-early")
    d = podnet.start_daemon({vip: [b.addr for b in backends]})
    # ... and one after it started: straight into the map.
    late_ns, late_ip = podnet.add_pod("client-late")
    podnet.chain.check("client-late", f"/run/netns/{late_ns}")

    listed = {p["container_id"]: p for p in lab.cli(d, "pod", "list", json_out=True).json}
    assert {"backend1", "backend2", "backend3", "client-early", "client-late"} <= set(listed)
    assert listed["client-late"]["addr4"] == late_ip
    assert listed["client-late"]["to4"] == f"{podnet.gateway}:{POD_PORT}"

    for name, ns in (("client-early", early_ns), ("client-late", late_ns)):
        cg = pod_cgroup(lab, name)
        r = lab.client(vip, "unary", "-n", 600, "-c", 4, netns=ns, in_cgroup=cg)
        assert r["dials"] == 1 and r["ok"] == 600, (name, r)
        shares = {k: v / 600 for k, v in r["by_backend"].items()}
        print(f"{name}: one connection from its pod -> {r['by_backend']}")
        assert set(shares) == {b.id for b in backends}, r["by_backend"]
        assert all(0.30 <= s <= 0.37 for s in shares.values()), r["by_backend"]
        # The pod still sees the address it dialled as its peer.
        assert getpeername_in(lab, ns, cg, vip) == str(tuple([vip.rsplit(":", 1)[0], 50051]))
    stats = lab.cli(d, "stats", json_out=True).json
    assert stats["kernel"]["captured_pod"] >= 4, stats["kernel"]


def test_cni_del_removes_every_trace_and_add_del_are_idempotent(lab, podnet):
    vip = f"10.96.{podnet.net}.11:50051"
    ns_b, ip_b = podnet.add_pod("backend")
    be = h2slab.Backend(lab, "pod-be", host=ip_b, port=50051, netns=ns_b)
    d = podnet.start_daemon({vip: [be.addr]})
    ns, _ = podnet.add_pod("client")
    cg = pod_cgroup(lab, "client")
    record = os.path.join(podnet.state_dir, "client.eth0.json")
    assert os.path.exists(record)
    # h2steer-cni's ADD again (a runtime retrying): same registration, still one entry.
    h2s_cni = podnet.conflist["plugins"][1]
    again = podnet.chain.invoke(h2s_cni, "ADD", "client", f"/run/netns/{ns}",
                                prev=podnet.chain.results["client"])
    assert again["ips"] == podnet.chain.results["client"]["ips"], again
    pods = [p for p in lab.cli(d, "pod", "list", json_out=True).json
            if p["container_id"] == "client"]
    assert len(pods) == 1, pods
    assert lab.client(vip, "unary", "-n", 50, netns=ns, in_cgroup=cg)["ok"] == 50

    podnet.delete_pod("client")
    assert not os.path.exists(record)
    assert not [p for p in lab.cli(d, "pod", "list", json_out=True).json
                if p["container_id"] == "client"]
    # Not captured any more: the VIP is nowhere in the pod's reach.
    out = getpeername_in(lab, ns, cg, vip)
    assert out.startswith("error"), out
    # DEL again, and DEL of a pod whose namespace is gone: both succeed.
    podnet.delete_pod("client")
    podnet.chain.invoke(h2s_cni, "DEL", "never-added", "")
    # CHECK of the deleted pod fails with h2steer-cni's own code.
    with pytest.raises(cnirun.CniError) as e:
        podnet.chain.invoke(h2s_cni, "CHECK", "client", f"/run/netns/{ns}", prev=again)
    assert e.value.result["code"] == 101, e.value.result


def test_ipv6_pod_client_over_a_dual_stack_cni_network(lab):
    """The same over IPv6: a dual-stack bridge network, the client pod dials an IPv6 VIP
    (connect6), its connection goes to the daemon on the pod's IPv6 gateway, the backends are
    the other pods' IPv6 addresses."""
    podnet = PodNet(lab, f"/sys/fs/bpf/h2s-lab-{os.getpid()}-{lab.seq()}", dual_stack=True)
    vip = f"[fd00:96:{podnet.net}::10]:50051"
    backends = []
    for i in (1, 2, 3):
        ns, ip = podnet.add_pod(f"backend{i}")
        backends.append(h2slab.Backend(lab, f"pod6-be{i}", host=ip, port=50051, netns=ns))
    d = podnet.start_daemon({vip: [b.addr for b in backends]})
    ns, ip = podnet.add_pod("client")
    listed = {p["container_id"]: p for p in lab.cli(d, "pod", "list", json_out=True).json}
    assert listed["client"]["addr6"] == ip and listed["client"]["addr4"], listed["client"]
    assert listed["client"]["to6"] == f"[{podnet.gateway6}]:{POD_PORT}", listed["client"]
    cg = pod_cgroup(lab, "client")
    r = lab.client(vip, "unary", "-n", 600, "-c", 4, netns=ns, in_cgroup=cg)
    assert r["dials"] == 1 and r["ok"] == 600, r
    print(f"IPv6 pod client: {r['by_backend']}")
    assert r["by_backend"] == {b.id: 200 for b in backends}, r["by_backend"]


def kubernetes_sandbox(lab):
    """A sandbox as containerd's CRI plugin sets one up for kubelet with the systemd cgroup
    driver: a 64-hex ID, its CNI_ARGS, its cgroupPath; and that cgroup made (kubelet and systemd
    would) under the lab's cgroup, where the test's conflist says the paths start."""
    sandbox, uid = secrets.token_hex(32), str(uuid.uuid4())
    args = (f"IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=greeter-7d9f8c-x2x4k;"
            f"K8S_POD_INFRA_CONTAINER_ID={sandbox};K8S_POD_UID={uid}")
    pod_slice = f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
    cgroup_path = f"{pod_slice}:cri-containerd:{sandbox}"
    rel = os.path.relpath(lab.cgroup, lab.root)
    for step in ("kubepods.slice", "kubepods-besteffort.slice", pod_slice,
                 f"cri-containerd-{sandbox}.scope"):
        rel = os.path.join(rel, step)
        scope = lab.make_cgroup(rel)
    return sandbox, uid, args, cgroup_path, scope


def test_kubernetes_sandbox_with_a_runtime_id_args_and_systemd_cgroup(lab, podnet):
    """What containerd sends (64-hex CNI_CONTAINERID, K8S_POD_* in CNI_ARGS, a systemd-driver
    cgroupPath) registers through the real chain; the daemon, started afterwards, loads the
    record; the pod's RPCs are captured; DEL removes it all."""
    vip = f"10.96.{podnet.net}.12:50051"
    ns_b, ip_b = podnet.add_pod("backend")
    be = h2slab.Backend(lab, "pod-be", host=ip_b, port=50051, netns=ns_b)
    sandbox, uid, args, cgroup_path, scope = kubernetes_sandbox(lab)
    ns, _ = podnet.add_pod(sandbox, args, {"cgroupPath": cgroup_path})

    record_path = os.path.join(podnet.state_dir, f"{sandbox}.eth0.json")
    with open(record_path) as f:
        record = json.load(f)
    assert record["container_id"] == sandbox, record
    assert record["kubernetes"] == {"namespace": "demo", "name": "greeter-7d9f8c-x2x4k",
                                    "uid": uid, "infra_container_id": sandbox}, record
    assert record["cgroup"] == scope and record["cgroup_id"] == os.stat(scope).st_ino, record

    d = podnet.start_daemon({vip: [be.addr]})
    d.proc.wait_for(f"pod demo/greeter-7d9f8c-x2x4k registered from {record_path}")
    listed = [p for p in lab.cli(d, "pod", "list", json_out=True).json
              if p["netns_cookie"] == record["netns_cookie"]]
    # The map entry has 63 characters for the ID: its beginning, then a hash of the whole.
    assert len(listed) == 1 and listed[0]["container_id"].startswith(sandbox[:40]), listed
    podnet.chain.check(sandbox, f"/run/netns/{ns}")
    r = lab.client(vip, "unary", "-n", 50, netns=ns, in_cgroup=scope)
    assert r["ok"] == 50 and r["by_backend"] == {be.id: 50}, r

    podnet.delete_pod(sandbox)
    assert not os.path.exists(record_path)
    assert not [p for p in lab.cli(d, "pod", "list", json_out=True).json
                if p["netns_cookie"] == record["netns_cookie"]]


def test_cni_add_with_a_cgroup_that_does_not_exist_fails_clearly(lab, podnet):
    """A cgroupPath naming no cgroup fails ADD with h2steer-cni's code 100 and the path it
    looked for, and leaves no record."""
    sandbox = secrets.token_hex(32)
    cgroup_path = f"kubepods-besteffort-pod{uuid.uuid4().hex}.slice:cri-containerd:{sandbox}"
    with pytest.raises(cnirun.CniError) as e:
        podnet.add_pod(sandbox, "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo",
                       {"cgroupPath": cgroup_path})
    err = e.value.result
    assert e.value.plugin == "h2steer-cni" and err["code"] == 100, err
    assert "does not exist" in err["details"] and "/kubepods.slice/" in err["details"], err
    assert not os.path.exists(os.path.join(podnet.state_dir, f"{sandbox}.eth0.json"))
    podnet.chain.delete(sandbox, "")  # what a runtime does after a failed ADD


@pytest.mark.parametrize("conf,code,words", [
    ('{"cniVersion": "1.0.0", "name": "x", "port": 0}', 7, "port"),
    ('{"cniVersion": "0.1.0", "name": "x"}', 1, "not supported"),
    ('{"cniVersion": "1.0.0", "name": "x", "pinDir": "relative"}', 7, "absolute"),
    ('{"cniVersion": "1.0.0", "name": "x"', 6, "not JSON"),
    ('{"cniVersion": "1.0.0", "name": "x"}', 7, "prevResult"),
    ('{"cniVersion": "1.0.0", "name": "x", "prevResult": {"ips": [{"address": "10.1.0.2/24"}]}}',
     7, "gateway"),
])
def test_cni_bad_config_gets_a_cni_error(lab, conf, code, words):
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/proc/self/ns/net",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
    r = subprocess.run([CNI], input=conf, capture_output=True, text=True, env=env, timeout=10)
    assert r.returncode == 1, r
    err = json.loads(r.stdout)
    assert err["code"] == code and words in err["details"] + err["msg"], err
