"""Busy polling (`--set busy_poll_us=N`, off by default): with it on, RPCs one at a time over
one connection are still spread evenly and all succeed, and the time polled shows in /metrics;
with it off (the default) nothing is polled. Its latency and CPU effect is `make bench`'s to
measure (the h2steer-poll row), not a test's."""
from h2slab import metric


def polled(daemon):
    return metric(daemon.scrape(), "h2steer_busy_poll_seconds_total")


def test_busy_polling_serves_and_is_counted(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]},
                   extra=("--set", "busy_poll_us=500", "--set", "busy_poll_max_streams=2"))
    before = polled(d)
    r = lab.client(vip, "unary", "-n", 600, "-c", 1)
    assert r["ok"] == 600, r
    assert sorted(r["by_backend"].values()) == [200, 200, 200], r["by_backend"]
    # 600 RPCs one at a time: the loop waited for a client or a backend at least once per RPC,
    # polling first.
    assert polled(d) > before, (before, polled(d))
    # Many streams open (16 > busy_poll_max_streams): still every RPC served.
    r = lab.client(vip, "unary", "-n", 1600, "-c", 16)
    assert r["ok"] == 1600, r


def test_busy_polling_is_off_by_default(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    r = lab.client(vip, "unary", "-n", 300, "-c", 1)
    assert r["ok"] == 300, r
    assert polled(d) == 0
