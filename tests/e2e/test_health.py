"""Backends that stop serving, fail, drain or die: grpc.health.v1 checks, passive ejection,
drain (by GOAWAY, by hand), kills and refusals under load — with no failed RPC where a
balancer can avoid one."""
import json
import signal
import time

import h2slab
from h2slab import metric


def finish(client, timeout=120):
    client.p.wait(timeout)
    return json.loads(client.text().strip().splitlines()[-1])


def health_svc(vip, bes, service=""):
    return (f"services:\n  - vip: \"{vip}\"\n    health: {{service: \"{service}\"}}\n"
            "    backends:\n" + "".join(f"      - address: \"{b.addr}\"\n" for b in bes))


def flip(backend, status):
    backend.proc.p.stdin.write(f"health {status}\n".encode())
    backend.proc.p.stdin.flush()


def wait_state(lab, d, vip, addr, field, value, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in lab.cli(d, "backend", "list", vip, json_out=True).json:
            if b["address"] == addr and b[field] == value:
                return b
        time.sleep(0.05)
    raise AssertionError(lab.cli(d, "backend", "list", vip).stdout)


def test_not_serving_gets_no_new_rpcs_within_1s_and_serving_brings_it_back(lab):
    bes = lab.backends(3, extra=["-health"])
    vip = lab.vip()
    d = lab.daemon(config=health_svc(vip, bes))
    for b in bes:
        wait_state(lab, d, vip, b.addr, "health", "serving")
    # Load over ONE connection for ~3 s; the backend turns NOT_SERVING after 1 s.
    client = lab.client_async(vip, "unary", "-n", 2400, "-c", 4, "-interval-us", 3000)
    time.sleep(1.0)
    t_flip = time.time() * 1000
    flip(bes[0], "NOT_SERVING")
    r = finish(client)
    assert r["ok"] == 2400 and r["errors"] == {}, r
    gone_ms = r["last_seen_unix_ms"][bes[0].id] - t_flip
    assert gone_ms <= 1000, f"still served {gone_ms:.0f} ms after NOT_SERVING"
    assert r["elapsed_s"] > 2.0 and r["by_backend"][bes[1].id] > r["by_backend"][bes[0].id]
    wait_state(lab, d, vip, bes[0].addr, "state", "down")
    flip(bes[0], "SERVING")
    wait_state(lab, d, vip, bes[0].addr, "health", "serving")
    later = lab.client(vip, "unary", "-n", 300, "-c", 3)
    assert later["by_backend"].get(bes[0].id, 0) == 100, later["by_backend"]
    print(f"NOT_SERVING honoured after {gone_ms:.0f} ms")


def test_health_check_of_a_named_service(lab):
    bes = lab.backends(2, extra=["-health"])
    vip = lab.vip()
    d = lab.daemon(config=health_svc(vip, bes, service="h2steer.test.Echo"))
    # The service name is unknown to the health servers until set: not picked.
    for b in bes:
        wait_state(lab, d, vip, b.addr, "health", "not_serving")
    flip(bes[1], "SERVING h2steer.test.Echo")
    wait_state(lab, d, vip, bes[1].addr, "health", "serving")
    r = lab.client(vip, "unary", "-n", 50)
    assert r["by_backend"] == {bes[1].id: 50}, r


def test_backend_without_health_service_counts_as_healthy(lab):
    bes = lab.backends(2)  # no -health: grpc.health.v1 is UNIMPLEMENTED
    vip = lab.vip()
    d = lab.daemon(config=health_svc(vip, bes))
    for b in bes:
        wait_state(lab, d, vip, b.addr, "health", "unimplemented")
    r = lab.client(vip, "unary", "-n", 100, "-c", 2)
    assert r["ok"] == 100 and len(r["by_backend"]) == 2


def test_failing_backend_is_ejected_after_consecutive_failures(lab):
    bad = h2slab.Backend(lab, "bad", extra=["-fail-status", "14"])
    good = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bad.addr] + [b.addr for b in good]})
    r = lab.client(vip, "unary", "-n", 300, "-c", 1, check=False)
    # 5 UNAVAILABLE in a row eject it (outlier_consecutive_failures), then none reach it.
    assert r["errors"] == {"Unavailable": 5}, r
    assert r["ok"] == 295 and bad.id not in r["by_backend"]
    b = wait_state(lab, d, vip, bad.addr, "state", "ejected")
    assert b["ejections"] == 1 and b["ejected_ms"] > 5000, b
    assert "ejected for" in d.proc.text()


def test_no_more_than_max_percent_ejected(lab):
    bad = [h2slab.Backend(lab, f"bad{i}", extra=["-fail-status", "14"]) for i in (1, 2)]
    good = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bad + good]})
    lab.client(vip, "unary", "-n", 60, check=False)
    states = {b["address"]: b["state"] for b in
              lab.cli(d, "backend", "list", vip, json_out=True).json}
    # Both failing backends are ejected, but at most 50 % of this service may be out: it
    # still uses one of them (the later), so its calls still fail half the time.
    assert sorted(states[b.addr] for b in bad) == ["ejected", "ejected"], states
    assert "is ejected but still used here" in d.proc.text()
    r = lab.client(vip, "unary", "-n", 40, "-c", 1, check=False)
    assert r["errors"] == {"Unavailable": 20} and r["by_backend"] == {good[0].id: 20}, r
    assert metric(d.scrape(), "h2steer_ejections_spared_total") >= 1


def test_drain_by_hand_then_undrain(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    running = lab.client_async(vip, "concurrent", "-streams", 9, "-sleep-ms", 1500)
    time.sleep(0.5)
    lab.cli(d, "backend", "drain", vip, bes[0].addr)
    r = lab.client(vip, "unary", "-n", 100, "-c", 2)
    assert bes[0].id not in r["by_backend"] and r["ok"] == 100, r
    assert finish(running)["ok"] == 9  # its in-flight RPCs finished
    listed = wait_state(lab, d, vip, bes[0].addr, "state", "draining")
    assert listed["drain"] is True
    lab.cli(d, "backend", "undrain", vip, bes[0].addr)
    r = lab.client(vip, "unary", "-n", 90, "-c", 2)
    assert r["by_backend"].get(bes[0].id) == 30, r


def test_goaway_drain_under_load_fails_nothing(lab):
    """grpc-go MaxConnectionAge: GOAWAY every 2 s on every connection, 20 s of load."""
    bes = lab.backends(3, extra=["-max-conn-age", "2s", "-max-conn-age-grace", "1s"])
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    # Bounded by count (about 20 s here), not by -max-time, whose end would cut RPCs short.
    r = lab.client(vip, "unary", "-n", 60000, "-c", 8, "-interval-us", 1000,
                   "-max-time", "90s", check=False)
    served = sum(r["by_backend"].values())
    assert r["errors"] == {} and served == 60000, r
    assert r["elapsed_s"] >= 12, r
    conns = sum(b.stats(lab)["conns"] for b in bes)
    assert conns >= 3 * 8, f"only {conns} backend connections: GOAWAYs did not happen"
    print(f"{r['elapsed_s']:.0f} s under GOAWAY every 2 s: {served} RPCs, 0 failed, "
          f"{conns} connections")


def test_kill_under_load_fails_at_most_what_was_in_flight(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]})
    c = 12
    client = lab.client_async(vip, "unary", "-n", 6000, "-c", c, "-interval-us", 2000,
                              "-meta", "x-sleep-ms=20")
    time.sleep(2.0)
    bes[0].stop(signal.SIGKILL)
    t_kill = time.time() * 1000
    r = finish(client)
    failed = sum(r["errors"].values())
    assert set(r["errors"]) <= {"Unavailable"}, r["errors"]
    assert failed <= c, f"{failed} failed, more than the {c} that could be in flight"
    assert r["last_seen_unix_ms"][bes[0].id] <= t_kill, r["last_seen_unix_ms"]
    print(f"kill under load: {failed} failed (<= {c} in flight), {r['ok']} ok")


def test_backend_with_one_stream_per_connection_fails_nothing(lab):
    """A backend allowing one stream per connection and a slow handler: whatever it refuses
    before h2steer knows its limit is replayed; the client sees no failure."""
    narrow = h2slab.Backend(lab, "narrow", extra=["-max-streams", "1"])
    others = lab.backends(2)
    vip = lab.vip()
    lab.daemon(services={vip: [narrow.addr] + [b.addr for b in others]})
    r = lab.client(vip, "concurrent", "-streams", 30, "-sleep-ms", 300)
    assert r["ok"] == 30 and r["errors"] == {}, r
    r = lab.client(vip, "unary", "-n", 600, "-c", 12, "-meta", "x-sleep-ms=10")
    assert r["ok"] == 600 and r["errors"] == {}, r
    assert narrow.stats(lab)["conns"] >= 2


def test_refused_streams_are_replayed_without_client_failures(lab):
    """A backend answering every 3rd stream with REFUSED_STREAM (not processed)."""
    refusing = h2slab.Backend(lab, "refusing", raw=True, extra=["--refuse-every", "3"])
    others = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [refusing.addr] + [b.addr for b in others]})
    r = lab.client(vip, "unary", "-n", 900, "-c", 12, "-meta", "x-sleep-ms=5")
    assert r["ok"] == 900 and r["errors"] == {}, r
    refused = refusing.stats(lab)["resets_sent"]
    assert refused >= 50, refused
    assert d.proc.text().count("replaying it") == refused
    print(f"{refused} refused streams replayed, 0 client failures")
