"""The experimental fast path (setting fastpath=1, off by default): a captured client's socket
and the daemon's accepted end of it exchange bytes by sk_msg redirects into each other's
receive queue (h2s_fast) instead of through loopback TCP. Nothing is parsed in the kernel, so
frames cannot lose sync; what must hold is that no byte is lost or reordered and that
backpressure still bounds memory. The scenarios of the ordinary path run again with it on,
and each checks that the fast path really carried the bytes."""
import pytest

import test_balance
import test_h2frames
import test_interop


class FastLab:
    """The lab, whose daemons run with the fast path on (in the lab's cgroup: sockops must
    see their accepted sockets)."""

    def __init__(self, lab):
        self._lab = lab
        self.daemons = []

    def __getattr__(self, name):
        return getattr(self._lab, name)

    def daemon(self, **kw):
        kw["extra"] = tuple(kw.get("extra", ())) + ("--set", "fastpath=1")
        kw["in_lab_cgroup"] = True
        d = self._lab.daemon(**kw)
        self.daemons.append(d)
        return d

    def fast_messages(self):
        return sum(self._lab.cli(d, "stats", json_out=True).json["kernel"]["fastpath_messages"]
                   for d in self.daemons)


@pytest.fixture
def fast(lab):
    f = FastLab(lab)
    yield f
    # Checked while the daemons still run: the scenario went through the fast path.
    assert f.fast_messages() > 0, "the fast path carried nothing"


def fast_svc(fast):
    bes = fast.backends(3)
    vip = fast.vip()
    fast.daemon(services={vip: [b.addr for b in bes]})
    return vip, bes


def test_fast_3000_rpcs_one_connection_spread(fast):
    test_balance.test_3000_rpcs_one_connection_spread_over_3_backends(fast)


def test_fast_8mb_message_each_way(fast):
    test_interop.test_8mb_message_each_way(fast, fast_svc(fast))


def test_fast_100_concurrent_streams(fast):
    test_interop.test_100_concurrent_streams_on_one_connection(fast, fast_svc(fast))


def test_fast_bidi_and_streaming(fast):
    svc = fast_svc(fast)
    test_interop.test_bidirectional_ping_pong(fast, svc)
    test_interop.test_server_streaming_1000_messages(fast, svc)
    test_interop.test_client_streaming(fast, svc)


def test_fast_slow_reader_memory_stays_bounded(fast):
    test_h2frames.test_slow_reader_memory_stays_bounded(fast)


def test_fast_client_that_never_reads_cannot_starve_others(fast):
    test_h2frames.test_client_that_never_reads_cannot_starve_other_clients(fast)
