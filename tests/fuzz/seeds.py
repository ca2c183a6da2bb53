#!/usr/bin/python3
"""Write the seed corpus of every harness (tests/fuzz/corpus/<target>/): small inputs shaped as
the real thing, so that mutation starts from what the parsers see in production. The files are
committed; rerun this after changing a seed here (it rewrites the seed-* files and leaves any
other file, e.g. a crash input committed as a regression, alone).

    /usr/bin/python3 tests/fuzz/seeds.py
"""
import json
import os
import struct
import sys

import hpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
import objects  # noqa: E402  (tests/kube: objects shaped as the API server serves them)

# ---- HTTP/2 frames, by hand (RFC 9113 §4.1) ----
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WU, CONT = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


REQUEST = [(":method", "POST"), (":scheme", "http"), (":authority", "echo.test:50051"),
           (":path", "/test.Echo/Call"), ("content-type", "application/grpc"), ("te", "trailers")]
RESPONSE = [(":status", "200"), ("content-type", "application/grpc")]
GRPC_MSG = b"\x00\x00\x00\x00\x05hello"


def headers(enc, sid, fields, end_stream=False, flags=END_HEADERS):
    return frame(HEADERS, flags | (END_STREAM if end_stream else 0), sid, enc.encode(fields))


def client_seeds():
    """After the client magic: a gRPC client's frames (first byte: the harness's chunk size)."""
    out = {}
    e = hpack.Encoder()
    hello = settings((3, 100), (4, 65535)) + settings(ack=True)
    out["unary"] = hello + headers(e, 1, REQUEST) + frame(DATA, END_STREAM, 1, GRPC_MSG)
    e = hpack.Encoder()
    calls = hello
    for sid in (1, 3, 5):
        calls += headers(e, sid, REQUEST + [("x-tag", "call-%d" % sid)]) + frame(DATA, 0, sid, GRPC_MSG)
    calls += frame(WU, 0, 0, struct.pack(">I", 1 << 20)) + frame(RST, 0, 3, struct.pack(">I", 8))
    calls += frame(PING, 0, 0, b"12345678") + frame(DATA, END_STREAM, 1, GRPC_MSG)
    calls += headers(e, 5, [("grpc-trace", "x")], end_stream=True)  # trailers from the client
    out["three_calls_reset_trailers"] = b"\x03" + calls
    e = hpack.Encoder()
    block = e.encode(REQUEST + [("x-meta", "m" * 3000)])
    out["continuation"] = (b"\x01" + hello + frame(HEADERS, 0, 1, block[:1000]) +
                           frame(CONT, 0, 1, block[1000:2000]) + frame(CONT, END_HEADERS, 1, block[2000:]) +
                           frame(DATA, END_STREAM, 1, GRPC_MSG))
    # An HPACK indexed-reference bomb (issue 15): one big field into the dynamic table, then
    # one-byte references to it (index 62: the newest entry) in a CONTINUATION.
    lit = b"\x40" + bytes([6]) + b"x-bomb" + b"\x7f" + hpack_int(4000 - 127, 7) + b"b" * 4000
    e = hpack.Encoder()
    first = e.encode(REQUEST) + lit
    out["hpack_bomb"] = (b"\x0f" + hello + frame(HEADERS, 0, 1, first) +
                         frame(CONT, END_HEADERS, 1, b"\xbe" * 8000))
    e = hpack.Encoder()
    out["lower_stream_id"] = (hello + headers(e, 5, REQUEST, end_stream=True) +
                              headers(e, 3, REQUEST, end_stream=True))
    e = hpack.Encoder()
    out["padded_priority"] = (hello + frame(HEADERS, END_HEADERS | PADDED | PRIO, 1,
                                            b"\x04" + struct.pack(">IB", 0, 15) + e.encode(REQUEST) + b"\0" * 4) +
                              frame(PRIORITY, 0, 1, struct.pack(">IB", 3, 7)) +
                              frame(DATA, END_STREAM | PADDED, 1, b"\x02" + GRPC_MSG + b"\0\0"))
    e = hpack.Encoder()
    out["content_length_goaway"] = (hello + headers(e, 1, REQUEST + [("content-length", "3")]) +
                                    frame(DATA, END_STREAM, 1, GRPC_MSG) +
                                    frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
    return {k: (v if k in ("three_calls_reset_trailers", "continuation", "hpack_bomb") else b"\x07" + v)
            for k, v in out.items()}


def hpack_int(n, prefix):
    """The continuation bytes of an HPACK integer whose prefix is full (RFC 7541 §5.1)."""
    out = b""
    while n >= 128:
        out += bytes([n % 128 + 128])
        n //= 128
    return out + bytes([n])


def backend_seeds():
    """A backend's frames to the daemon's three calls (streams 1, 3, 5)."""
    out = {}
    hello = settings((3, 100), (4, 65535), (5, 16384)) + settings(ack=True)
    e = hpack.Encoder()
    ok = b""
    for sid in (1, 3, 5):
        ok += headers(e, sid, RESPONSE) + frame(DATA, 0, sid, GRPC_MSG)
        ok += headers(e, sid, [("grpc-status", "0"), ("grpc-message", "")], end_stream=True)
    out["answers"] = b"\x07" + hello + ok
    e = hpack.Encoder()
    out["refuse_goaway"] = (b"\x07" + hello + frame(RST, 0, 1, struct.pack(">I", 7)) +
                            frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye") +
                            headers(e, 3, [(":status", "200"), ("content-type", "application/grpc"),
                                           ("grpc-status", "14")], end_stream=True))
    e = hpack.Encoder()
    out["errors"] = (b"\x02" + hello + headers(e, 1, [(":status", "503")], end_stream=True) +
                     frame(RST, 0, 3, struct.pack(">I", 2)) +
                     headers(e, 5, RESPONSE) + frame(WU, 0, 5, struct.pack(">I", 100)) +
                     frame(PING, 0, 0, b"pingpong") + frame(DATA, END_STREAM, 5, GRPC_MSG))
    e = hpack.Encoder()
    block = e.encode(RESPONSE + [("x-big", "v" * 5000)])
    out["continuation_push"] = (b"\x04" + hello + frame(HEADERS, 0, 1, block[:2000]) +
                                frame(CONT, END_HEADERS, 1, block[2000:]) +
                                frame(PUSH, END_HEADERS, 1, struct.pack(">I", 2) + e.encode(REQUEST)) +
                                frame(DATA, END_STREAM, 1, GRPC_MSG))
    e = hpack.Encoder()
    out["no_settings"] = b"\x07" + headers(e, 1, RESPONSE, end_stream=True)
    return out


# ---- DNS messages (RFC 1035 §4) ----
def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def dns_msg(qname, qtype, answers, rcode=0):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(answers), 0, 0)
    q = dns_name(qname) + struct.pack(">HH", qtype, 1)
    rrs = b""
    for rtype, ttl, rdata in answers:
        rrs += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata
    return hdr + q + rrs


def dns_seeds():
    srv = lambda prio, w, port, host: struct.pack(">HHH", prio, w, port) + dns_name(host)
    return {
        "srv": dns_msg("_grpc._tcp.api.default.svc.cluster.local", 33,
                       [(33, 30, srv(10, 5, 50051, "a.api.default.svc.cluster.local")),
                        (33, 20, srv(10, 0, 50052, "b.api.default.svc.cluster.local")),
                        (33, 60, srv(20, 1, 50053, "c.example"))]),
        "a": dns_msg("api.default.svc.cluster.local", 1,
                     [(1, 30, bytes([10, 244, 1, 7])), (1, 5, bytes([10, 244, 2, 9]))]),
        "aaaa": dns_msg("api.default.svc.cluster.local", 28,
                        [(28, 30, bytes(15) + b"\x01"), (5, 10, dns_name("alias.example"))]),
        "nxdomain": dns_msg("missing.example", 1, [], rcode=3),
    }


# ---- the rest ----
CONFIG = """\
listen: ["127.0.0.1:15001", "[::1]:15001"]
cgroup: /sys/fs/cgroup/clients
log_level: info
metrics: 127.0.0.1:9464
outlier_consecutive_failures: 5
max_header_list: 16777216
dns_servers: ["127.0.0.53"]
services:
  - vip: 10.96.0.10:50051
    algo: least_request
    backends:
      - address: 10.244.1.7:50051
      - address: 10.244.2.9:50051
        weight: 2
  - vip: 10.96.0.11:50051
    resolver: {dns: "api.default.svc.cluster.local:50051"}
    health: {service: ""}
"""
CONFIG_KUBE = """\
kubernetes:
  api: https://127.0.0.1:6443
  namespaces: [default, demo]
  label_selector: app=grpc
  all_ports: false
keep_state: true
"""


def nul(*words):
    return b"\0".join(w.encode() for w in words)


def cni_seeds():
    sandbox = "a3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef012345"
    prev = {"cniVersion": "1.0.0",
            "interfaces": [{"name": "h2sbr9", "mac": "92:af:73:81:d4:4f"},
                           {"name": "veth9afe9e93", "mac": "3a:7f:3e:77:01:c9"},
                           {"name": "eth0", "mac": "a2:f2:33:a2:70:58", "sandbox": "/run/netns/tpod"}],
            "ips": [{"interface": 1, "address": "10.229.0.9/24", "gateway": "10.229.0.7"},
                    {"interface": 2, "address": "10.229.0.2/24", "gateway": "10.229.0.1"},
                    {"interface": 2, "address": "fd00:229::2/64", "gateway": "fd00:229::1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}
    conf = {"cniVersion": "1.0.0", "name": "pods", "type": "h2steer-cni", "port": 15006,
            "stateDir": "/run/h2steer/pods", "prevResult": prev}
    args = ("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=greeter-7d9f8c-x2x4k;"
            "K8S_POD_INFRA_CONTAINER_ID=" + sandbox + ";K8S_POD_UID=0f6e5c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b")
    conf_cg = dict(conf, runtimeConfig={"cgroupPath": "kubepods-besteffort-pod0f6e.slice:cri-containerd:" + sandbox})
    return {
        "add": nul(json.dumps(conf), sandbox, "eth0", args),
        "add_cgroup": nul(json.dumps(conf_cg), "tpod", "eth0", ""),
        "v04_no_prev": nul(json.dumps({"cniVersion": "0.4.0", "name": "n"}), "x", "eth0", "A=1"),
    }


def pod_seeds():
    rec = {"netns_cookie": 8197, "container_id": "tpod", "ifname": "eth0",
           "to4": "10.229.0.1:15001", "to6": "[fd00:229::1]:15001", "addr4": "10.229.0.2",
           "addr6": "fd00:229::2",
           "kubernetes": {"namespace": "demo", "name": "greeter-7d9f8c-x2x4k", "uid": "0f6e"},
           "cgroup": "/sys/fs/cgroup/kubepods.slice", "cgroup_id": 8841}
    return {"record": json.dumps(rec).encode(),
            "record_v4_only": json.dumps(dict(rec, to6=None, addr6=None)).encode()}


def kube_objects():
    svc = objects.service("default", "api", cluster_ips=("10.96.0.10", "fd00:96::10"),
                          annotations={"h2steer.io/algo": "least_request"})
    sl = objects.endpoint_slice("default", "api",
                                endpoints=[objects.endpoint(("10.0.0.1",)),
                                           objects.endpoint(("10.0.0.2",), ready=False, terminating=True)])
    nd = objects.node("node-a", zone="zone-1")
    return svc, sl, nd


def kube_seeds():
    svc, sl, nd = kube_objects()
    svc = dict(svc, metadata=dict(svc["metadata"], resourceVersion="101", uid="u1"))
    sl = dict(sl, metadata=dict(sl["metadata"], resourceVersion="102", uid="u2"))
    events = [{"type": "ADDED", "object": svc}, {"type": "MODIFIED", "object": sl},
              {"type": "BOOKMARK", "object": {"kind": "Service", "apiVersion": "v1",
                                              "metadata": {"resourceVersion": "103"}}},
              {"type": "DELETED", "object": svc},
              {"type": "ERROR", "object": objects.status(410, "Expired", "too old resource version")}]
    watch = "\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\r\n"
    lst = {"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "104", "continue": "c1"},
           "items": [svc, dict(svc, metadata=dict(svc["metadata"], name="web"))]}
    return {"watch": b"\x10" + watch.encode(), "list": json.dumps(lst).encode()}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.unlink(os.path.join(d, name))
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


def main():
    svc, sl, nd = kube_objects()
    write("h2_server", client_seeds())
    write("h2_upstream", backend_seeds())
    write("config_yaml", {"example": CONFIG, "kubernetes": CONFIG_KUBE,
                          "bad_key": "services:\n  - vip: 10.96.0.10:50051\n    wieght: 2\n"})
    write("daemon_args", {
        "listen": nul("--listen", "127.0.0.1:15001", "--listen", "[::1]:15001", "--cgroup", "clients"),
        "sets": nul("--set", "max_streams=100", "--max-streams", "50", "-v", "--metrics", "off",
                    "--dns-server", "127.0.0.53", "--keep-state", "--takeover"),
        "kube": nul("--kubernetes", "--node-name", "node-a", "--log-level", "debug"),
        "help": nul("--help"),
    })
    write("cli_args", {
        "service_add": nul("service", "add", "10.96.0.10:50051", "algo", "least_request"),
        "backend_add": nul("-j", "backend", "add", "10.96.0.10:50051", "10.244.1.7:50051", "weight", "2"),
        "route": nul("route", "add", "10.96.0.10:50051", "/test.Echo/", "to", "10.96.0.11:50051"),
        "stats": nul("stats", "show"), "help": nul("help"), "pod": nul("pod", "list"),
    })
    write("control", {"conns": "conns\n", "status": "status\n", "methods": "methods\n",
                      "streams": "streams\n", "unknown": "help\n", "nul": "conns\0\n",
                      "no_newline": "status"})
    write("cni", cni_seeds())
    write("pods", pod_seeds())
    write("dns", dns_seeds())
    write("health", {"serving": b"\x08\x01", "not_serving": b"\x08\x02", "empty": b"",
                     "unknown_fields": b"\x12\x03abc\x08\x01\x19" + bytes(8) + b"\x25" + bytes(4)})
    write("kube_informer", kube_seeds())
    write("kube_model", {"service": json.dumps(svc).encode(), "slice": json.dumps(sl).encode(),
                         "node": json.dumps(nd).encode()})


if __name__ == "__main__":
    main()
