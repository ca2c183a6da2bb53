"""HTTP/2 floods from one client (issue 15): frames that make the daemon work for nothing, and
streams reset as fast as they open (Rapid Reset, CVE-2023-44487) or that make the daemon reset
them (MadeYouReset, CVE-2025-8671). Each flood is bounded: within its budget (settings
client_flood_* and client_reset_*, 1000 frames or resets by default) the connection gets GOAWAY
ENHANCE_YOUR_CALM and is closed, the cause is counted in h2steer_client_abuse_total and logged
once, and a gRPC client beside it on its own connection loses nothing.

Each flood is bounded on the client side too (frames and seconds), so that a daemon without the
budgets (the tree before them) fails the test by not closing, instead of running forever. What
each run measured (daemon CPU during the flood, the side client's p99 and errors) is printed."""
import json
import os
import time

import pytest

import h2slab
from h2slab import metric

RAW = "h2raw.py"
FLOOD_S = 6          # the longest a flood runs (client side)
FLOOD_MAX = 300_000  # and the most frames it sends
SIDE_N = 2400        # 2 x 1200 RPCs 5 ms apart: over FLOOD_S


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


OPEN_1 = [["headers", 1, "grpc", False]]
DONE_1 = [["headers", 1, "grpc", False], ["data", 1, {"grpc": "x"}, True],
          ["until", 10000, "stream_end", 1]]

# (kind as counted, the script before the flood, the flooding step)
FLOODS = [
    ("settings", [], ["flood", FLOOD_S, FLOOD_MAX, ["settings", [[4, 65535]]]]),
    ("ping", [], ["flood", FLOOD_S, FLOOD_MAX, ["ping"]]),
    ("window_update", [], ["flood", FLOOD_S, FLOOD_MAX, ["window_update", 0, 1]]),
    ("priority", [], ["flood", FLOOD_S, FLOOD_MAX, ["priority", 1, 0]]),
    ("empty_data", OPEN_1, ["flood", FLOOD_S, FLOOD_MAX, ["data", 1, "", False]]),
    ("unknown_frame", [], ["flood", FLOOD_S, FLOOD_MAX, ["raw", 0x20, 0, 0, ""]]),
    ("closed_stream", DONE_1, ["flood", FLOOD_S, FLOOD_MAX, ["rst", 1, 8]]),
    ("rapid_reset", [], ["streams", FLOOD_MAX // 2, FLOOD_S, "rst"]),
    ("made_you_reset", [], ["streams", FLOOD_MAX // 2, FLOOD_S, "window_overflow"]),
    ("made_you_reset", [], ["streams", FLOOD_MAX // 2, FLOOD_S, "malformed"]),
]

KINDS = sorted({k for k, _, _ in FLOODS} | {"protocol_error"})


@pytest.mark.parametrize("kind,before,flood", FLOODS,
                         ids=[f"{k}-{f[-1] if f[0] == 'streams' else f[3][0]}"
                              for k, _, f in FLOODS])
def test_flood_is_cut_off_with_enhance_your_calm(lab, kind, before, flood):
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]})
    pid = d.proc.pid
    rss0 = rss_kib(pid)
    # Beside it, a gRPC client on its own connection for at least as long as a flood runs.
    side = lab.client_async(vip, "unary", "-n", SIDE_N, "-c", 2, "-interval-us", 5000,
                            "-rpc-timeout", "5s")
    time.sleep(0.5)
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    r = lab.pyclient(RAW, vip, json.dumps(before + [flood, ["until", 5000, "goaway", 0],
                                                    ["read", 200]]), timeout=60)
    wall = time.monotonic() - t0
    cpu_pct = 100.0 * (cpu_ticks(pid) - c0) / os.sysconf("SC_CLK_TCK") / wall
    rss1 = rss_kib(pid)
    side_rc = side.p.wait(60)
    s = json.loads(side.text().strip().splitlines()[-1])
    m = d.scrape()
    g = [f for f in r["frames"] if f["type"] == "GOAWAY"]
    bs = be.stats(lab)
    print("flood", kind, flood[-1] if flood[0] == "streams" else flood[3][0], json.dumps({
        "frames_sent": r["sent"], "goaway": g[0]["code"] if g else None,
        "flood_s": round(wall, 2), "daemon_cpu_pct": round(cpu_pct, 1),
        "rss_kib": [rss0, rss1], "side_ok": s["ok"], "side_p99_us": s["p99_us"],
        "side_errors": s.get("errors"), "backend_rpcs_of_flood": bs["rpcs"] - s["ok"],
        "backend_max_in_flight": bs["max_in_flight"]}))
    assert side_rc == 0, side.tail()
    assert g and g[0]["code"] == "ENHANCE_YOUR_CALM" and r["closed"], \
        {k: v for k, v in r.items() if k != "frames"}
    # Cut off while it went on, not after the client gave up; streams: within the budget
    # (1000 resets, and a little refill).
    assert g[0]["ms"] < FLOOD_S * 1000, g
    if flood[0] == "streams":
        assert g[0]["last"] < 2 * 1200, g
    assert metric(m, "h2steer_client_abuse_total", kind=kind) == 1, \
        {k: metric(m, "h2steer_client_abuse_total", kind=k) for k in KINDS}
    assert sum(metric(m, "h2steer_client_abuse_total", kind=k) for k in KINDS) == 1, \
        "counted once, under its own kind"
    assert d.proc.text().count("GOAWAY ENHANCE_YOUR_CALM") == 1
    assert s["ok"] == SIDE_N and not s.get("errors"), s
    # What reached the backend at once: at most max_streams (256) of the flood's, besides the
    # side client's 2, however the resets raced.
    assert bs["max_in_flight"] <= 256 + 2, bs


def test_cancels_and_pings_of_a_busy_client_stay_within_the_budgets(lab):
    """What a real client does at a high rate is not a flood: 3000 streams, every other one
    cancelled at once, each answered one paying back a reset; a PING and a WINDOW_UPDATE
    per stream. None of it closes the connection."""
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]})
    script = []
    sid = 1
    for _ in range(15):  # in rounds of 100, as a client within max_streams (256) does
        for _ in range(100):
            script += [["headers", sid, "grpc", False], ["data", sid, {"grpc": "x"}, True],
                       ["ping"], ["window_update", 0, 100]]
            script += [["headers", sid + 2, "grpc", False], ["rst", sid + 2, 8]]
            sid += 4
        script += [["until", 10000, "stream_end", sid - 4]]
    script += [["read", 500]]
    path = os.path.join(lab.tmp, "busy.json")
    with open(path, "w") as f:
        json.dump(script, f)
    r = lab.pyclient(RAW, vip, "@" + path, timeout=120)
    assert not [f for f in r["frames"] if f["type"] == "GOAWAY"], r["frames"][-5:]
    assert not r["closed"], r
    m = d.scrape()
    assert sum(metric(m, "h2steer_client_abuse_total", kind=k) for k in KINDS) == 0


RECONNECTS = 24      # connections of the reconnecting attacker, at most
PER_CONN = 768       # Rapid Reset streams on each: under client_reset_burst (1000)
SOURCE_BURST = 4000  # client_reset_source_burst, client_reset_source_rate: the defaults
SOURCE_RATE = 400


def test_rapid_reset_over_reconnecting_connections_is_bounded_per_source(lab):
    """A client that stays under each connection's reset budget and opens a new connection
    for more (CVE-2023-44487 as the botnets ran it) is paid per source address: after
    client_reset_source_burst resets its connections are cut with ENHANCE_YOUR_CALM at their
    first reset over the budget. A gRPC client from another address loses nothing."""
    be = lab.backends(1)[0]
    vip = lab.vip()
    d = lab.daemon(services={vip: [be.addr]})
    side = lab.client_async(vip, "unary", "-n", SIDE_N, "-c", 2, "-interval-us", 5000,
                            "-rpc-timeout", "5s")
    time.sleep(0.5)
    r = lab.pyclient(RAW, vip, json.dumps([["streams", PER_CONN, FLOOD_S, "rst"],
                                           ["until", 300, "goaway", 0]]),
                     "--source", "127.0.0.9", "--connections", RECONNECTS,
                     "--seconds", 2 * FLOOD_S, timeout=90)
    conns, wall_s = r["connections"], r["wall_ms"] / 1000
    side_rc = side.p.wait(60)
    s = json.loads(side.text().strip().splitlines()[-1])
    m = d.scrape()
    # The streams the daemon took in: all of a connection it let be, up to GOAWAY's last
    # stream id of one it cut off.
    taken = sum(PER_CONN if c["goaway"] is None else (c["last"] + 1) // 2 for c in conns)
    cut = [c for c in conns if c["goaway"] == "ENHANCE_YOUR_CALM"]
    print("reconnecting rapid reset", json.dumps({
        "connections": len(conns), "cut": len(cut), "streams_taken": taken,
        "wall_s": wall_s, "side_ok": s["ok"], "side_p99_us": s["p99_us"],
        "side_errors": s.get("errors")}))
    assert side_rc == 0, side.tail()
    assert len(conns) == RECONNECTS, conns[-3:]
    # Each connection alone stays within its own budget: only the source's cuts them.
    assert cut, conns[:8]
    assert all(c["goaway"] in (None, "ENHANCE_YOUR_CALM") for c in conns), conns
    # The source's burst, its refill over the run, and what a batch of 64 in flight adds to
    # each connection the budget cut.
    assert taken <= SOURCE_BURST + SOURCE_RATE * wall_s + 64 * len(cut) + 100, \
        (taken, wall_s, len(cut))
    assert metric(m, "h2steer_client_abuse_total", kind="rapid_reset") == len(cut)
    assert d.proc.text().count("client_reset_source_burst (4000)") == 1, "logged once"
    assert s["ok"] == SIDE_N and not s.get("errors"), s
