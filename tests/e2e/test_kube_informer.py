"""The kube informer (user/discovery/kube_informer.c over kube_client.c) against a real HTTPS
test API server (tests/kube/apiserver.py): build/kube-informer-probe (sanitizers on) runs one
informer and prints what it sees; the server's request log says what it asked for and when.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "kube"))
import apiserver  # noqa: E402
import objects  # noqa: E402

PROBE = os.path.join(TOP, os.environ.get("BUILD", "build"), "kube-informer-probe")
SERVICES = "/api/v1/services"


class Probe:
    """The probe process, its output lines (with arrival times) read by a thread."""

    def __init__(self, api, *extra, ca_file=None, token_file=None, seconds=60):
        if not os.path.exists(PROBE):
            pytest.fail(f"{PROBE} missing: make {os.path.relpath(PROBE, TOP)}")
        self.lines, self.cond = [], threading.Condition()
        self.err = tempfile.TemporaryFile(mode="w+")   # a pipe nobody reads could fill up
        self.proc = subprocess.Popen(
            [PROBE, "--url", api.url, "--token-file", token_file or api.token_file,
             "--ca-file", ca_file or api.ca_file, "--path", SERVICES,
             "--seconds", str(seconds), *extra],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.stderr = ""

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, pattern, start=0, timeout=10):
        """(index, time, line) of the first line from index start matching pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i][1]):
                        return i, self.lines[i][0], self.lines[i][1]
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.reader.is_alive():
                    pytest.fail(f"no line matching {pattern!r} in {timeout} s; got:\n"
                                + "\n".join(text for _, text in self.lines))
                self.cond.wait(min(left, 0.1))

    def texts(self, start=0):
        with self.cond:
            return [text for _, text in self.lines[start:]]

    def stop(self):
        """SIGTERM; the probe must exit 0 with no sanitizer report. Returns its STATS."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("probe did not exit on SIGTERM")
        self.reader.join(5)
        self.err.seek(0)
        self.stderr = self.err.read()
        self.err.close()
        assert "Sanitizer" not in self.stderr and "runtime error" not in self.stderr, self.stderr
        assert self.proc.returncode == 0, self.stderr
        stats = [t for t in self.texts() if t.startswith("STATS ")]
        assert len(stats) == 1, self.texts()
        return dict(kv.split("=", 1) for kv in stats[0].split()[1:])


@pytest.fixture
def api():
    server = apiserver.ApiServer(bookmark_interval=0.5).start()
    yield server
    server.close()


@pytest.fixture
def probes():
    started = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def run(probes, api, *extra, **kw):
    p = Probe(api, *extra, **kw)
    probes.append(p)
    return p


def lists(api):
    return [r for r in api.requests if r["path"] == SERVICES and "watch" not in r["query"]]


def watches(api):
    return [r for r in api.requests if r["path"] == SERVICES and "watch" in r["query"]]


def events(texts):
    return [t for t in texts if t.startswith("EVENT ")]


def test_initial_list_then_a_watch_event_within_a_second(api, probes):
    for name in ("a", "b", "c"):
        api.apply(objects.service("default", name))
    api.apply(objects.service("kube-system", "dns"))
    p = run(probes, api)
    i, _, synced = p.wait(r"^SYNCED ")
    got = sorted(events(p.texts()[:i]))
    assert got == sorted(f"EVENT ADDED {k} {api.get('Service', *k.split('/'))['metadata']['resourceVersion']}"
                         for k in ("default/a", "default/b", "default/c", "kube-system/dns"))
    assert "objects=4" in synced
    assert api.wait_watches(1, "Service")
    w = watches(api)[0]["query"]
    assert w["resourceVersion"] == re.search(r"rv=(\S+)", synced).group(1)
    assert w["allowWatchBookmarks"] == "true" and 300 <= int(w["timeoutSeconds"]) < 600
    assert lists(api)[0]["query"]["limit"] == "500"
    t0 = time.monotonic()
    api.apply(objects.service("default", "d"))
    _, t1, _ = p.wait(r"^EVENT ADDED default/d ", start=i)
    assert t1 - t0 < 1.0
    api.delete("Service", "default", "a")
    p.wait(r"^EVENT DELETED default/a ", start=i)
    st = p.stop()
    assert st["synced"] == "1" and st["objects"] == "4" and st["relists"] == "0"
    assert int(st["sockets"]) >= 1   # every socket went through the hook (daemon marking)


def test_410_relists_with_events_only_for_what_changed(api, probes):
    for name in ("same", "changed", "gone"):
        api.apply(objects.service("default", name))
    p = run(probes, api)
    i, _, _ = p.wait(r"^SYNCED ")
    assert api.wait_watches(1, "Service")
    # The client misses changes while the server is down, and their history is compacted:
    # its next watch is from an expired resourceVersion.
    api.stop()
    api.apply(objects.service("default", "changed", labels={"v": "2"}))
    api.delete("Service", "default", "gone")
    api.apply(objects.service("default", "new"))
    api.compact()
    api.start()
    j, _, synced = p.wait(r"^SYNCED ", start=i + 1, timeout=15)
    after = events(p.texts()[i + 1:j])
    rv = {n: api.get("Service", "default", n)["metadata"]["resourceVersion"]
          for n in ("changed", "new")}
    assert sorted(e.rsplit(" ", 1)[0] for e in after) == [
        "EVENT ADDED default/new", "EVENT DELETED default/gone", "EVENT MODIFIED default/changed"]
    assert f"EVENT MODIFIED default/changed {rv['changed']}" in after
    assert "relists=1" in synced and "objects=3" in synced
    assert len(lists(api)) == 2
    st = p.stop()
    assert st["relists"] == "1" and st["objects"] == "3"


def test_a_cut_watch_resumes_from_the_last_resource_version(api, probes):
    api.apply(objects.service("default", "a"))
    p = run(probes, api)
    i, _, _ = p.wait(r"^SYNCED ")
    assert api.wait_watches(1, "Service")
    api.apply(objects.service("default", "b"))
    p.wait(r"^EVENT ADDED default/b ", start=i)
    time.sleep(0.7)   # a bookmark carries the current resourceVersion
    rv = api.resource_version
    before = len(watches(api))
    assert api.cut_watches(mid_object=True) == 1
    k, _, cut = p.wait(r"^ERROR .*cut", start=i)
    assert "resuming from " + rv in cut
    assert api.wait_watches(1, "Service")
    assert watches(api)[before]["query"]["resourceVersion"] == rv
    assert len(lists(api)) == 1   # no relist
    api.apply(objects.service("default", "c"))
    p.wait(r"^EVENT ADDED default/c ", start=k)
    st = p.stop()
    assert st["objects"] == "3" and st["relists"] == "0"


def test_429_retry_after_is_waited_out(api, probes):
    api.apply(objects.service("default", "a"))
    api.throttle(2, retry_after=2)
    p = run(probes, api)
    p.wait(r"^ERROR .*HTTP 429", timeout=5)
    p.wait(r"^SYNCED ", timeout=15)
    times = [r["time"] for r in lists(api)]
    assert len(times) == 3
    assert times[1] - times[0] >= 2.0 and times[2] - times[1] >= 2.0
    p.stop()


def test_a_rotated_token_is_sent_on_the_next_request(api, probes):
    api.apply(objects.service("default", "a"))
    p = run(probes, api)
    i, _, _ = p.wait(r"^SYNCED ")
    assert api.wait_watches(1, "Service")
    old = api.token
    api.set_token(apiserver.make_token())
    time.sleep(1.2)   # the client looks at the token file at most once a second
    before = len(api.requests)
    api.cut_watches()
    assert api.wait_watches(1, "Service")
    nxt = api.requests[before]
    assert nxt["token"] == api.token != old
    assert not [t for t in p.texts(i) if "401" in t]
    p.stop()


def test_a_wrong_token_names_the_token_file(api, probes, tmp_path):
    bad = tmp_path / "token"
    bad.write_text("not-the-token\n")
    p = run(probes, api, token_file=str(bad))
    _, _, err = p.wait(r"^ERROR .*401")
    assert str(bad) in err
    assert not [t for t in p.texts() if t.startswith("SYNCED")]
    p.stop()


def test_a_ca_mismatch_is_a_clear_tls_error(api, probes):
    with tempfile.TemporaryDirectory() as other:
        other_ca, _, _ = apiserver.make_certs(other)
        p = run(probes, api, ca_file=other_ca)
        _, _, err = p.wait(r"^ERROR ")
        assert re.search(r"SSL certificate problem|certificate verify failed", err), err
        assert not api.requests   # nothing got past TLS
        st = p.stop()
        assert st["synced"] == "0"


def test_garbage_lines_are_skipped_and_the_store_kept(api, probes):
    api.apply(objects.service("default", "a"))
    p = run(probes, api)
    i, _, _ = p.wait(r"^SYNCED ")
    assert api.wait_watches(1, "Service")
    api.inject_line("Service", b"this is not json\n")
    api.inject_line("Service", b'{"type":"ADDED","object":{"metadata":{}}}\n')
    api.inject_line("Service", b'{"object":{"metadata":{"name":"x"}}}\n')
    p.wait(r"^ERROR .*not JSON", start=i)
    p.wait(r"^ERROR .*without a usable metadata.name", start=i)
    p.wait(r"^ERROR .*without a type", start=i)
    api.apply(objects.service("default", "b"))
    p.wait(r"^EVENT ADDED default/b ", start=i)
    st = p.stop()
    assert st["objects"] == "2" and st["relists"] == "0"


def test_an_idle_watch_is_taken_as_cut():
    server = apiserver.ApiServer(bookmark_interval=30).start()   # no byte for 30 s
    started = []
    try:
        server.apply(objects.service("default", "a"))
        p = run(started, server, "--idle-ms", "1500")
        i, _, _ = p.wait(r"^SYNCED ")
        t0 = time.monotonic()
        _, t1, _ = p.wait(r"^ERROR .*no byte for 1 s", start=i, timeout=5)
        assert 1.3 <= t1 - t0 <= 3.0
        deadline = time.monotonic() + 5
        while len(watches(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(watches(server)) >= 2 and len(lists(server)) == 1
        p.stop()
    finally:
        for q in started:
            if q.proc.poll() is None:
                q.proc.kill()
                q.proc.wait()
        server.close()


def test_a_large_list_is_read_in_pages_of_500(api, probes):
    names = [f"s{i:04d}" for i in range(1100)]
    for n in names:
        api.apply(objects.service("default", n))
    p = run(probes, api)
    i, _, synced = p.wait(r"^SYNCED ", timeout=20)
    assert sorted(e.split()[2] for e in events(p.texts()[:i])) == [f"default/{n}" for n in names]
    assert "objects=1100" in synced and f"rv={api.resource_version}" in synced
    pages = lists(api)
    assert [r["query"]["limit"] for r in pages] == ["500"] * 3
    assert "continue" not in pages[0]["query"]
    assert pages[1]["query"]["continue"] and pages[2]["query"]["continue"]
    assert api.wait_watches(1, "Service")
    st = p.stop()
    assert st["objects"] == "1100"


def test_5xx_backs_off_exponentially_and_keeps_the_store(api, probes):
    api.apply(objects.service("default", "a"))
    p = run(probes, api)
    i, _, _ = p.wait(r"^SYNCED ")
    assert api.wait_watches(1, "Service")
    before = len(watches(api))
    api.fail(3, 503)
    t0 = time.monotonic()
    api.cut_watches()
    p.wait(r"^ERROR .*HTTP 503", start=i)
    deadline = time.monotonic() + 20
    while api.watch_count("Service") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    w = watches(api)[before:]
    assert len(w) == 4   # three refused, the fourth open
    gaps = [b["time"] - a["time"] for a, b in zip(w, w[1:])]
    # the first retry after a healthy watch is at once, then 0.8 s doubling (+ jitter <= 50 %)
    assert w[0]["time"] - t0 < 0.5
    assert 0.8 <= gaps[0] <= 1.3 and 1.6 <= gaps[1] <= 2.5 and 3.2 <= gaps[2] <= 4.9, gaps
    assert len(lists(api)) == 1 and not [t for t in p.texts(i) if "DELETED" in t]
    st = p.stop()
    assert st["objects"] == "1"
