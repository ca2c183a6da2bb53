"""Busy polling (`--set busy_poll_us=N`, off by default): with it on, RPCs one at a time over
one connection are still spread evenly and all succeed, and the time polled shows in /metrics;
with more streams open than busy_poll_max_streams it (nearly) stops; off (the default), nothing
is polled. Its latency and CPU effect is `make bench`'s to measure (the h2steer-poll row), not
a test's."""

POLLED = ("h2steer_busy_poll_seconds_total", frozenset())


def polled(daemon):
    scraped = daemon.scrape()
    assert POLLED in scraped, sorted(n for n, _ in scraped)
    return scraped[POLLED]


def test_busy_polling_serves_counts_and_stops_with_many_streams(lab):
    bes = lab.backends(3)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]},
                   extra=("--set", "busy_poll_us=500", "--set", "busy_poll_max_streams=2"))
    t0 = polled(d)
    r = lab.client(vip, "unary", "-n", 600, "-c", 1)
    assert r["ok"] == 600, r
    assert sorted(r["by_backend"].values()) == [200, 200, 200], r["by_backend"]
    t1 = polled(d)
    # One at a time: the loop waits for the client or a backend twice per RPC, each time
    # within 500 us (loopback), so it polls then.
    one_at_a_time = (t1 - t0) / 600
    assert one_at_a_time > 0, (t0, t1)
    # 16 in flight, more than busy_poll_max_streams open nearly all the time: next to no
    # polling per RPC.
    r = lab.client(vip, "unary", "-n", 1600, "-c", 16)
    assert r["ok"] == 1600, r
    sixteen = (polled(d) - t1) / 1600
    print(f"polled per RPC: {one_at_a_time * 1e6:.1f} us at 1 in flight, "
          f"{sixteen * 1e6:.1f} us at 16")
    assert sixteen < one_at_a_time / 4, (one_at_a_time, sixteen)


def test_busy_polling_is_off_by_default(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    r = lab.client(vip, "unary", "-n", 300, "-c", 1)
    assert r["ok"] == 300, r
    assert polled(d) == 0
