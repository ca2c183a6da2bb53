"""Locality-first picks (service local-first, backends flagged local): one client connection's
RPCs stay on the local backends while enough of them are usable (locality_min_usable_percent),
go to every backend within a second when too few are, and come back when they recover — with
no failed RPC. Also what `h2steer backend list` shows of it (LOCAL, NODE, ZONE)."""
import json
import subprocess
import time

import pytest

import h2slab


def finish(client, timeout=120):
    assert client.p.wait(timeout) == 0, client.tail()
    return json.loads(client.text().strip().splitlines()[-1])


def flip(backend, status):
    backend.proc.p.stdin.write(f"health {status}\n".encode())
    backend.proc.p.stdin.flush()


def wait_health(lab, d, vip, addr, value, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in lab.cli(d, "backend", "list", vip, json_out=True).json:
            if b["address"] == addr and b["health"] == value:
                return
        time.sleep(0.02)
    raise AssertionError(lab.cli(d, "backend", "list", vip).stdout)


def health_svc(vip, bes):
    return (f"services:\n  - vip: \"{vip}\"\n    health: {{service: \"\"}}\n"
            "    backends:\n" + "".join(f"      - address: \"{b.addr}\"\n" for b in bes))


def local_first_service(lab, d, vip, local):
    """Set by hand with the CLI, as the Kubernetes source would set the flags."""
    lab.cli(d, "service", "set", vip, "--local-first")
    for b in local:
        lab.cli(d, "backend", "set", vip, b.addr, "--local")


def buckets(r, lo_ms, hi_ms, period_ms):
    """by_backend summed over the timeline periods that lie wholly in [lo_ms, hi_ms)
    (unix ms)."""
    got = {}
    for k, counts in enumerate(r["timeline"]):
        start = r["start_unix_ms"] + k * period_ms
        if start >= lo_ms and start + period_ms <= hi_ms:
            for be, n in counts.items():
                got[be] = got.get(be, 0) + n
    return got


@pytest.mark.parametrize("min_pct", [50, 100])
def test_local_first_falls_back_within_1s_and_returns(lab, min_pct):
    """2 local + 2 remote backends, one connection: all RPCs on the local two; both stop
    serving -> the remote two within 1 s; one comes back -> with the default 50 % (1 of 2 is
    enough) only that one again; with 100 % (1 of 2 is not) every usable backend."""
    period = 100
    bes = lab.backends(4, extra=["-health"])
    local, remote = bes[:2], bes[2:]
    vip = lab.vip()
    extra = [] if min_pct == 50 else ["--set", f"locality_min_usable_percent={min_pct}"]
    d = lab.daemon(config=health_svc(vip, bes), extra=extra)
    for b in bes:
        wait_health(lab, d, vip, b.addr, "serving")
    local_first_service(lab, d, vip, local)

    # About 800-1000 RPCs/s over ONE connection for about 5 s (the return needs > 1 s after
    # the flip at 2.7 s, however fast the machine runs the client).
    client = lab.client_async(vip, "unary", "-n", 5000, "-c", 4, "-interval-us", 3000,
                              "-timeline-ms", period)
    time.sleep(1.2)
    t_down = time.time() * 1000
    for b in local:
        flip(b, "NOT_SERVING")
    time.sleep(1.5)
    t_up = time.time() * 1000
    flip(local[0], "SERVING")
    r = finish(client)
    assert r["dials"] == 1, r
    assert r["ok"] == 5000 and r["errors"] == {}, r
    assert r["elapsed_s"] > t_up / 1000 - r["start_unix_ms"] / 1000 + 1.0, \
        "the run ended too early to see the return"

    before = buckets(r, 0, t_down, period)
    assert sum(before.values()) >= 200, before
    assert set(before) <= {b.id for b in local}, f"remote picks while local was up: {before}"
    for b in remote:
        assert r["first_seen_unix_ms"][b.id] >= t_down - period, \
            f"{b.id} served before the local backends went down"

    # Both local down: within 1 s nothing more on them, all on the remote two.
    gone_ms = r["last_seen_unix_ms"][local[1].id] - t_down
    assert gone_ms <= 1000, f"a local backend served {gone_ms:.0f} ms after it went down"
    down = buckets(r, t_down + 1000, t_up, period)
    assert sum(down.values()) > 0 and set(down) <= {b.id for b in remote}, down
    assert all(down.get(b.id, 0) > 0 for b in remote), down

    back = buckets(r, t_up + 1000, float("inf"), period)
    assert sum(back.values()) > 100, back
    if min_pct == 50:
        assert set(back) == {local[0].id}, f"1 of 2 local usable is enough at 50 %: {back}"
    else:
        assert set(back) == {local[0].id} | {b.id for b in remote}, \
            f"1 of 2 is not enough at 100 %: every usable backend: {back}"
    print(f"min {min_pct} %: before {before}, down {down}, back {back}, "
          f"last local RPC {gone_ms:.0f} ms after the flip")


def test_without_local_members_or_flag_it_balances_as_before(lab):
    """local-first with no local backend, and local backends of a service that is not
    local-first: both spread over every backend."""
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    lab.cli(d, "service", "set", vip, "--local-first")
    r = lab.client(vip, "unary", "-n", 300, "-c", 2)
    assert r["ok"] == 300 and all(r["by_backend"].get(b.id) == 100 for b in bes), r
    lab.cli(d, "service", "set", vip, "--no-local-first")
    lab.cli(d, "backend", "set", vip, bes[0].addr, "--local")
    r = lab.client(vip, "unary", "-n", 300, "-c", 2)
    assert r["ok"] == 300 and all(r["by_backend"].get(b.id) == 100 for b in bes), r
    # And the flag is what moves them: local-first again, all on the local one.
    lab.cli(d, "service", "set", vip, "local-first", "on")
    r = lab.client(vip, "unary", "-n", 300, "-c", 2)
    assert r["by_backend"] == {bes[0].id: 300}, r


def topo_bytes(addr, node, zone):
    """struct h2s_addr of an IPv4 ADDR:PORT (v4-mapped, port in network order) and struct
    h2s_backend_topo, as bpftool takes them (hex bytes)."""
    host, port = addr.rsplit(":", 1)
    key = bytes(10) + b"\xff\xff" + bytes(int(x) for x in host.split(".")) + \
        int(port).to_bytes(2, "big") + bytes(2)
    value = node.encode().ljust(64, b"\0") + zone.encode().ljust(64, b"\0")
    return [f"0x{b:02x}" for b in key], [f"0x{b:02x}" for b in value]


def test_backend_list_shows_local_node_and_zone(lab):
    bes = lab.backends(2)
    vip, other = lab.vip(), lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes], other: [bes[0].addr]})
    lab.cli(d, "service", "set", vip, "--local-first")
    lab.cli(d, "backend", "set", vip, bes[0].addr, "local", "on")
    # What the Kubernetes source will write; here straight into the pinned map.
    key, value = topo_bytes(bes[0].addr, "node-a", "zone-1")
    subprocess.run(["bpftool", "map", "update", "pinned", f"{d.pin_dir}/h2s_be_topo",
                    "key", *key, "value", *value], check=True, capture_output=True)

    rows = {(b["service"], b["address"]): b
            for b in lab.cli(d, "backend", "list", json_out=True).json}
    assert rows[(vip, bes[0].addr)]["local"] is True
    assert rows[(vip, bes[1].addr)]["local"] is False
    assert rows[(other, bes[0].addr)]["local"] is None, "not local-first: does not apply"
    assert rows[(vip, bes[0].addr)]["node"] == "node-a"
    assert rows[(vip, bes[0].addr)]["zone"] == "zone-1"
    assert rows[(vip, bes[1].addr)]["node"] is None and rows[(vip, bes[1].addr)]["zone"] is None
    svc = {s["service"]: s for s in lab.cli(d, "service", "list", json_out=True).json}
    assert svc[vip]["local_first"] is True and svc[other]["local_first"] is False

    text = lab.cli(d, "backend", "list").stdout.splitlines()
    head = text[0].split()
    assert head[-3:] == ["NODE", "ZONE", "LOCAL"], text[0]
    by_addr = {}
    for f in (line.split() for line in text[1:]):
        addr = next(x for x in f if x in (bes[0].addr, bes[1].addr))
        by_addr.setdefault(addr, []).append(f[-3:])
    assert ["node-a", "zone-1", "yes"] in by_addr[bes[0].addr], text
    assert ["node-a", "zone-1", "-"] in by_addr[bes[0].addr], text
    assert ["-", "-", "no"] in by_addr[bes[1].addr], text
    lab.cli(d, "backend", "set", vip, bes[0].addr, "--no-local")
    rows = {(b["service"], b["address"]): b
            for b in lab.cli(d, "backend", "list", vip, json_out=True).json}
    assert rows[(vip, bes[0].addr)]["local"] is False
