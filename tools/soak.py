#!/usr/bin/python3
"""make soak: a bounded soak of the release daemon (build/h2steerd): mixed load over many
connections against backends that churn, with attacks running beside it.

For --minutes (SOAK_MINUTES, default 30), all on loopback (127.0.0.0/8) in an h2slab Lab:
  services  A: 4 static backends, health-checked (grpc.health.v1): s1 and s2 flip NOT_SERVING
               and back (one at a time, every --health-s); s3 sends GOAWAY (grpc-go
               MaxConnectionAge 10 s); k1 is stopped every --kill-s, alternately by SIGTERM
               (GracefulStop: GOAWAY, in-flight RPCs finish) and SIGKILL, and restarted on its
               port 3 s later.
            B: resolved by DNS (a real dnsmasq, TTL 1 s) to 2..4 of 4 backends; the set
               changes every --dns-s.
  load      well-behaved Go clients (h2s-grpc-peer client), each run on ONE connection, paced:
            4 unary clients (2 on A, 2 on B; runs of <= 60 s, back to back) and 3 streaming
            ones (bidi and cstream on A, sstream on B: one stream per run, in a loop); 150 idle
            HTTP/2 connections held the whole time and 20 more opened and closed every 20 s
            (tools/h2conns.py).
  attacks   in a loop each, beside the load: Rapid Reset and a PING flood (tests/grpc/h2raw.py;
            cut off by GOAWAY ENHANCE_YOUR_CALM), Rapid Reset from 24 connections in turn, each
            under its own budget, from 127.0.0.9 (cut off by its source's), a slowloris HEADERS trickler (closed by
            client_frame_timeout_ms), 2 connections that ask for server streams and never read
            (tests/grpc/mem_peers.py noread; closed within 2 x client_write_timeout_ms).
Every loop is bounded in count and time; everything is removed by Lab.close().

Measured: RPCs of the well-behaved clients ok / failed by code, failures a SIGKILL can explain
(a run overlapping k kills of k1 may lose k x its concurrency, code Unavailable) and the rest;
the daemon's RSS and open fds every 10 s (min/max/first/last), its CPU, /metrics at the end
(abuse, timeouts, ejections, ...); the attacks' outcomes. Printed, and written to
build/soak/soak.json. Exit 1 when a well-behaved client saw a failure no kill explains, when
RSS or fds are not flat (the last third of the run's samples above the first third's, in
their maximum or their median, by more than --rss-slack-mib or --fd-slack; the thirds span
the same cycles of churn and attacks), when RSS once every client left is more than
--rss-slack-mib above the idle daemon's before the load, or the daemon died or did not stop
cleanly.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2slab  # noqa: E402
from h2slab import metric  # noqa: E402

RELEASE = os.path.join(h2slab.BUILD, "h2steerd")
GRPC = os.path.join(h2slab.TOP, "tests", "grpc")
H2RAW = os.path.join(GRPC, "h2raw.py")
MEM_PEERS = os.path.join(GRPC, "mem_peers.py")
H2CONNS = os.path.join(h2slab.TOP, "tools", "h2conns.py")
NAME = "api." + h2slab.Dns.DOMAIN
SAMPLE_S = 10
KILL_CODES = {"Unavailable"}  # what an RPC in flight on a killed backend ends with
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# HEADERS of 200 bytes, one byte every 2 s (40 s to finish); the daemon closes it after
# client_frame_timeout_ms (10 s by default). At most 16 bytes are sent.
SLOWLORIS = f"""
import json, select, socket, struct, time
def frame(t, f, sid, p=b"", n=None):
    n = len(p) if n is None else n
    return struct.pack(">I", n)[1:] + bytes([t, f]) + struct.pack(">I", sid) + p
def closed(s, wait):
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        if select.select([s], [], [], left)[0]:
            try:
                if not s.recv(65536):
                    return True
            except OSError:
                return True
host, port = TARGET.rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall({PREFACE!r} + frame(4, 0, 0))
t0 = time.monotonic()
hdr = frame(1, 5, 1, b"", n=200) + b"\\x82" * 200
sent, shut = 0, False
for b in hdr[:16]:
    try:
        s.sendall(bytes([b]))
    except OSError:
        shut = True
        break
    sent += 1
    if closed(s, 2.0):
        shut = True
        break
print(json.dumps({{"closed": shut, "after_s": round(time.monotonic() - t0, 2), "sent": sent}}))
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Runner:
    """Short-lived child processes, tracked so that they can be killed by PID at the end."""

    def __init__(self, lab):
        self.lab = lab
        self.live = set()
        self.lock = threading.Lock()

    def run(self, argv, timeout, in_cgroup=True):
        cg = self.lab.cgroup if in_cgroup else None
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, close_fds=True,
                             preexec_fn=(lambda: h2slab._join_cgroup(cg)) if cg else None)
        with self.lock:
            self.live.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        finally:
            with self.lock:
                self.live.discard(p)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def json(self, argv, timeout, in_cgroup=True):
        rc, out, err = self.run(argv, timeout, in_cgroup)
        try:
            r = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"exit": rc, "nojson": (out[-300:] + err[-300:]).strip()}
        r["exit"] = rc
        return r

    def kill_all(self):
        with self.lock:
            procs = list(self.live)
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Soak:
    def __init__(self, args, lab):
        self.args = args
        self.lab = lab
        self.runner = Runner(lab)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.t_start = None
        self.t_end = None
        self.threads = []
        self.kills = []        # (monotonic time, in_flight asked just before) of each SIGKILL
        self.events = {"sigterm_restarts": 0, "sigkill_restarts": 0, "restart_failures": 0,
                       "dns_changes": 0, "health_flips": 0, "idle_churns": 0}
        self.runs = []         # one record per well-behaved client run
        self.attacks = {}      # kind -> {"runs", "cut_off", "not_cut_off", samples}
        self.samples = []
        self.problems = []

    # ---- the lab ----

    def setup(self):
        lab, a = self.lab, self.args
        self.dns = lab.dns(ttl=1)
        port = h2slab.free_port("127.0.10.1")
        self.dns_bes = [h2slab.Backend(lab, f"d{i}", host=f"127.0.10.{i}", port=port)
                        for i in range(1, 5)]
        self.dns_port = port
        self.dns_set = [b.host for b in self.dns_bes[:3]]
        self.dns.set_hosts({NAME: self.dns_set})
        self.s1 = h2slab.Backend(lab, "s1", extra=["-health"])
        self.s2 = h2slab.Backend(lab, "s2", extra=["-health"])
        self.s3 = h2slab.Backend(lab, "s3", extra=["-max-conn-age", "10s",
                                                   "-max-conn-age-grace", "5s"])
        self.k1 = h2slab.Backend(lab, "k1")
        self.vip_a, self.vip_b = lab.vip(), lab.vip()
        static = [self.s1, self.s2, self.s3, self.k1]
        cfg = (f'dns_servers: ["{self.dns.addr}"]\nservices:\n'
               f'  - vip: "{self.vip_a}"\n    algo: round_robin\n    health: {{service: ""}}\n'
               "    backends:\n" + "".join(f'      - address: "{b.addr}"\n' for b in static) +
               f'  - vip: "{self.vip_b}"\n    resolver: {{dns: "{NAME}:{port}"}}\n')
        self.daemon = lab.daemon(config=cfg, binary=a.daemon,
                                 extra=["--log-level", "info"] + sum(
                                     (["--set", s] for s in a.set), []))
        self.pid = self.daemon.proc.pid
        lab.wait_backends(self.daemon, self.vip_a, 4, timeout=10)
        lab.wait_backends(self.daemon, self.vip_b, 3, timeout=10)
        time.sleep(2)  # the first health checks
        self.idle_before = {"rss_kib": rss_kib(self.pid), "fds": fd_count(self.pid)}

    # ---- helpers ----

    def left(self):
        return self.t_end - time.monotonic()

    def running(self, margin=0.0):
        return not self.stop.is_set() and self.left() > margin

    def spawn_thread(self, fn, *args):
        t = threading.Thread(target=self._guard, args=(fn, *args), daemon=True)
        t.start()
        self.threads.append(t)

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # a loop that broke is a problem of the soak, reported
            if not self.stop.is_set():
                with self.lock:
                    self.problems.append(f"{fn.__name__}{args[:1]}: {type(e).__name__}: {e}")

    def client(self, vip, mode, args, timeout):
        argv = [h2slab.PEER, "client", "-target", vip, mode, *map(str, args)]
        return self.runner.json(argv, timeout)

    def record(self, name, vip, c, t0, t1, r):
        errors = r.get("errors") or {}
        failed = sum(errors.values())
        # A run that printed nothing, or failed a check with no failed RPC (a dial that timed
        # out, an echo that differed): one failure that no kill explains.
        broken = "nojson" in r or (not failed and not r.get("pass", False))
        kills = 0
        if vip == self.vip_a:
            with self.lock:
                kills = sum(1 for t, _ in self.kills if t0 <= t <= t1)
        explained = min(sum(v for k, v in errors.items() if k in KILL_CODES),
                        kills * c * self.args.kill_allowance)
        rec = {"client": name, "svc": "A" if vip == self.vip_a else "B", "t0": round(
            t0 - self.t_start, 1), "t1": round(t1 - self.t_start, 1), "ok": r.get("ok", 0),
               "errors": errors, "dials": r.get("dials", 0), "kills": kills,
               "explained": explained, "unexplained": failed - explained + (1 if broken else 0)}
        if failed or broken:
            rec["failures"] = (r.get("failures") or [r.get("nojson", "")])[:5]
        with self.lock:
            self.runs.append(rec)

    # ---- well-behaved clients ----

    def unary(self, name, vip, c, interval_us, meta):
        rate = c / (interval_us / 1e6 + 0.002)  # RPCs/s, guessed by the first 10 s run
        first = True
        while self.running(5):
            dur = min(10.0 if first else 60.0, self.left() - 2)
            first = False
            n = max(int(rate * dur), 10)
            args = ["-n", n, "-c", c, "-interval-us", interval_us, "-rpc-timeout", "10s",
                    "-max-time", f"{int(dur * 3 + 30)}s"] + sum((["-meta", m] for m in meta), [])
            t0 = time.monotonic()
            r = self.client(vip, "unary", args, timeout=dur * 3 + 60)
            t1 = time.monotonic()
            self.record(name, vip, c, t0, t1, r)
            done = r.get("ok", 0) + sum((r.get("errors") or {}).values())
            if done and r.get("elapsed_s"):
                rate = done / r["elapsed_s"]

    def stream(self, name, vip, mode, args):
        while self.running(3):
            t0 = time.monotonic()
            r = self.client(vip, mode, args + ["-rpc-timeout", "30s", "-max-time", "40s"],
                            timeout=60)
            self.record(name, vip, 1, t0, time.monotonic(), r)
            self.stop.wait(0.3)

    def idle_holder(self):
        """150 idle connections, the whole run."""
        p = self.lab.spawn("idle", [h2slab.PYTHON, H2CONNS, self.vip_a, "-n", "150",
                                    "--open-s", "30", "--hold-s", str(int(self.left()) + 600)],
                           cgroup=self.lab.cgroup)
        p.exit_expected = True
        p.wait_for("OPEN ", timeout=40)
        self.idle_open = p.text().split("OPEN ", 1)[1].split()[0]
        self.idle_proc = p

    def idle_churn(self):
        """20 more idle connections, opened and closed every 20 s."""
        while self.running(25):
            argv = [h2slab.PYTHON, H2CONNS, self.vip_b, "-n", "20", "--open-s", "10",
                    "--hold-s", "15"]
            rc, out, _ = self.runner.run(argv, timeout=40)
            with self.lock:
                self.events["idle_churns"] += 1
                if rc != 0:
                    self.events.setdefault("idle_churn_short", []).append(out.strip()[-40:])
            self.stop.wait(5)

    # ---- churn ----

    def killer(self):
        """k1: SIGTERM (graceful) or SIGKILL every kill_s, alternately; back 3 s later."""
        graceful = True
        while not self.stop.wait(self.args.kill_s) and self.running(10):
            be = self.k1
            if graceful:
                be.stop(signal.SIGTERM)
            else:
                st = self.runner.json([h2slab.PEER, "client", "-target", be.addr, "stats"], 10,
                                      in_cgroup=False)
                be.proc.exit_expected = True
                # Listed before the signal, at a time before it: a run that ends after t
                # (from what the kill failed) finds it listed, however soon it ends.
                with self.lock:
                    self.kills.append((time.monotonic(),
                                       (st.get("stats") or {}).get("in_flight")))
                os.kill(be.proc.pid, signal.SIGKILL)
                be.proc.p.wait(10)
                be.stop()
            self.stop.wait(3)
            if self.stop.is_set():
                return
            try:
                self.k1 = h2slab.Backend(self.lab, "k1", port=be.port)
                with self.lock:
                    self.events["sigterm_restarts" if graceful else "sigkill_restarts"] += 1
            except h2slab.LabError as e:
                with self.lock:
                    self.events["restart_failures"] += 1
                    self.problems.append(f"k1 did not come back: {str(e)[:200]}")
                return
            graceful = not graceful

    def dns_changer(self):
        hosts = [b.host for b in self.dns_bes]
        while not self.stop.wait(self.args.dns_s) and self.running(5):
            while True:
                new = sorted(random.sample(hosts, random.randint(2, 4)))
                if new != sorted(self.dns_set):
                    break
            self.dns_set = new
            self.dns.set_hosts({NAME: new})
            with self.lock:
                self.events["dns_changes"] += 1

    def health_flipper(self):
        steps = [(self.s1, "NOT_SERVING"), (self.s1, "SERVING"),
                 (self.s2, "NOT_SERVING"), (self.s2, "SERVING")]
        i = 0
        while not self.stop.wait(self.args.health_s / 2) and self.running(3):
            be, status = steps[i % 4]
            be.proc.p.stdin.write(f"health {status}\n".encode())
            be.proc.p.stdin.flush()
            i += 1
            with self.lock:
                self.events["health_flips"] += 1
        for be in (self.s1, self.s2):  # leave both serving
            be.proc.p.stdin.write(b"health SERVING\n")
            be.proc.p.stdin.flush()

    # ---- attacks ----

    def attack_record(self, kind, cut, sample):
        with self.lock:
            a = self.attacks.setdefault(kind, {"runs": 0, "cut_off": 0, "not_cut_off": 0,
                                               "last": None})
            a["runs"] += 1
            a["cut_off" if cut else "not_cut_off"] += 1
            a["last"] = sample

    def raw_attack(self, kind, step, period):
        script = json.dumps([step, ["until", 5000, "goaway", 0], ["read", 200]])
        while self.running(10):
            r = self.runner.json([h2slab.PYTHON, H2RAW, self.vip_a, script], 60)
            g = [f for f in r.get("frames", []) if f.get("type") == "GOAWAY"]
            cut = bool(g) and g[0].get("code") == "ENHANCE_YOUR_CALM"
            self.attack_record(kind, cut, {"sent": r.get("sent"), "goaway": g[0] if g else None,
                                           "elapsed_ms": r.get("elapsed_ms")})
            self.stop.wait(period)

    def reconnecting_reset(self):
        """Rapid Reset spread over connections: 768 streams reset on each of 24 in turn."""
        script = json.dumps([["streams", 768, 6, "rst"], ["until", 300, "goaway", 0]])
        while self.running(20):
            r = self.runner.json([h2slab.PYTHON, H2RAW, self.vip_a, script, "--source",
                                  "127.0.0.9", "--connections", "24", "--seconds", "12"], 60)
            conns = r.get("connections", [])
            cut = [c for c in conns if c.get("goaway") == "ENHANCE_YOUR_CALM"]
            taken = sum(768 if c["goaway"] is None else ((c["last"] or 0) + 1) // 2
                        for c in conns)
            self.attack_record("rapid_reset_reconnecting", bool(cut), {
                "connections": len(conns), "cut": len(cut), "streams_taken": taken,
                "wall_ms": r.get("wall_ms")})
            self.stop.wait(5)

    def slowloris(self):
        code = f"TARGET = {self.vip_b!r}\n" + SLOWLORIS
        while self.running(15):
            r = self.runner.json([h2slab.PYTHON, "-c", code], 60)
            self.attack_record("slowloris", bool(r.get("closed")), r)
            self.stop.wait(2)

    def noread(self):
        """2 connections x 20 server streams of 4 MiB, never read; until the daemon closes
        them or 75 s (it closes a connection whose socket took nothing over a whole
        client_write_timeout_ms, 30 s by default: 30 to 60 s after it stopped)."""
        while self.running(80):
            p = self.lab.spawn("noread", [h2slab.PYTHON, MEM_PEERS, self.vip_a, "noread", "2",
                                          "20", str(4 << 20)], cgroup=self.lab.cgroup,
                               stdin=True)
            p.exit_expected = True
            before = metric(self.daemon.scrape(), "h2steer_clients_not_reading_closed_total")
            closed = 0
            try:
                p.wait_for("HOLDING", timeout=40)
                end = time.monotonic() + 75
                while time.monotonic() < end and not self.stop.is_set():
                    closed = metric(self.daemon.scrape(),
                                    "h2steer_clients_not_reading_closed_total") - before
                    if closed >= 2:
                        break
                    self.stop.wait(1)
            except h2slab.LabError:
                pass
            finally:
                p.p.stdin.close()
                p.stop()
            self.attack_record("noread", closed >= 2, {"closed": closed})
            self.stop.wait(3)

    # ---- sampling ----

    def sample(self):
        s = {"t": round(time.monotonic() - self.t_start, 1), "rss_kib": rss_kib(self.pid),
             "fds": fd_count(self.pid), "cpu_s": round(cpu_s(self.pid), 2)}
        try:
            s["client_connections"] = metric(self.daemon.scrape(), "h2steer_client_connections")
        except Exception:
            pass
        self.samples.append(s)

    def sampler(self):
        while not self.stop.wait(SAMPLE_S) and self.left() > -120:
            if not self.daemon.proc.alive():
                self.problems.append("the daemon died during the soak")
                self.stop.set()
                return
            self.sample()

    # ---- the run ----

    def run(self):
        a = self.args
        self.t_start = time.monotonic()
        self.t_end = self.t_start + a.minutes * 60
        self.cpu0 = cpu_s(self.pid)
        self.idle_holder()
        A, B = self.vip_a, self.vip_b
        self.spawn_thread(self.sampler)
        self.spawn_thread(self.unary, "unary-a1", A, 4, 4000, ["x-sleep-ms=10"])
        self.spawn_thread(self.unary, "unary-a2", A, 2, 6000, [])
        self.spawn_thread(self.unary, "unary-b1", B, 4, 4000, ["x-sleep-ms=5"])
        self.spawn_thread(self.unary, "unary-b2", B, 1, 3000, ["x-response-size=1024"])
        self.spawn_thread(self.stream, "bidi-a", A, "bidi", ["-count", 300, "-size", 64])
        self.spawn_thread(self.stream, "cstream-a", A, "cstream", ["-count", 200, "-size", 4096])
        self.spawn_thread(self.stream, "sstream-b", B, "sstream", ["-count", 2000, "-size", 512])
        self.spawn_thread(self.idle_churn)
        self.spawn_thread(self.killer)
        self.spawn_thread(self.dns_changer)
        self.spawn_thread(self.health_flipper)
        self.spawn_thread(self.raw_attack, "rapid_reset", ["streams", 150000, 6, "rst"], 5)
        self.spawn_thread(self.raw_attack, "ping_flood", ["flood", 6, 300000, ["ping"]], 7)
        self.spawn_thread(self.reconnecting_reset)
        self.spawn_thread(self.slowloris)
        self.spawn_thread(self.noread)
        last_print = 0
        while self.left() > 0 and not self.stop.is_set():
            time.sleep(1)
            if time.monotonic() - last_print >= 60:
                last_print = time.monotonic()
                self.progress()
        # Load ends: the clients finish their last runs (sized to end by now), then the rest.
        for t in self.threads[1:8]:
            t.join(timeout=120)
        self.wall = time.monotonic() - self.t_start
        self.sample()
        self.cpu1 = cpu_s(self.pid)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=70)
        self.runner.kill_all()
        self.idle_proc.stop()
        self.metrics = self.daemon.scrape()
        # After: every client gone; the daemon's RSS and fds once it settled.
        deadline = time.monotonic() + 30
        while (metric(self.daemon.scrape(), "h2steer_client_connections") and
               time.monotonic() < deadline):
            time.sleep(0.5)
        time.sleep(3)
        self.idle_after = {"rss_kib": rss_kib(self.pid), "fds": fd_count(self.pid)}

    def progress(self):
        with self.lock:
            ok = sum(r["ok"] for r in self.runs)
            failed = sum(sum(r["errors"].values()) for r in self.runs)
        s = self.samples[-1] if self.samples else {}
        print(f"  {time.monotonic() - self.t_start:5.0f} s: {ok} RPCs ok, {failed} failed "
              f"(finished runs); RSS {s.get('rss_kib', 0) / 1024:.1f} MiB, fds {s.get('fds')}",
              flush=True)

    # ---- the report ----

    def report(self, close_problems):
        a = self.args
        with self.lock:
            runs = list(self.runs)
        by_client = {}
        for r in runs:
            c = by_client.setdefault(r["client"], {"runs": 0, "ok": 0, "errors": {}, "dials": 0,
                                                   "explained": 0, "unexplained": 0})
            c["runs"] += 1
            c["ok"] += r["ok"]
            c["dials"] += r["dials"]
            c["explained"] += r["explained"]
            c["unexplained"] += r["unexplained"]
            for k, v in r["errors"].items():
                c["errors"][k] = c["errors"].get(k, 0) + v
        ok = sum(c["ok"] for c in by_client.values())
        errors = {}
        for c in by_client.values():
            for k, v in c["errors"].items():
                errors[k] = errors.get(k, 0) + v
        explained = sum(c["explained"] for c in by_client.values())
        unexplained = sum(c["unexplained"] for c in by_client.values())
        under = [s for s in self.samples if s["t"] >= SAMPLE_S - 1]

        def span(key):
            v = [s[key] for s in under]
            if not v:
                return {}
            third = max(1, len(v) // 3)

            def med(x):
                return sorted(x)[len(x) // 2]

            return {"first": v[0], "min": min(v), "max": max(v), "last": v[-1],
                    "first_third": {"max": max(v[:third]), "median": med(v[:third])},
                    "last_third": {"max": max(v[-third:]), "median": med(v[-third:])}}

        rss, fds = span("rss_kib"), span("fds")
        cpu = self.cpu1 - self.cpu0
        m = self.metrics

        def by_label(name, label):
            out = {}
            for (n, labels), v in m.items():
                if n == name and v:
                    key = dict(labels).get(label, "")
                    out[key] = out.get(key, 0) + v
            return out

        def total(name):
            return sum(v for (n, _), v in m.items() if n == name)

        counters = {
            "client_abuse": by_label("h2steer_client_abuse_total", "kind"),
            "client_timeouts": by_label("h2steer_client_timeouts_total", "reason"),
            "ejections": by_label("h2steer_ejections_total", "reason"),
            "ejections_by_backend": by_label("h2steer_ejections_total", "backend"),
            "ejections_spared": total("h2steer_ejections_spared_total"),
            "clients_not_reading_closed": total("h2steer_clients_not_reading_closed_total"),
            "client_connections_accepted": total("h2steer_client_connections_accepted_total"),
            "client_connections_refused": total("h2steer_client_connections_refused_total"),
            "backend_connect_failures": total("h2steer_backend_connect_failures_total"),
            "backend_goaways": total("h2steer_backend_goaways_total"),
            "backend_ping_timeouts": total("h2steer_backend_ping_timeouts_total"),
            "drains": total("h2steer_drains_total"),
            "retries": total("h2steer_retries_total"),
            "retries_denied": total("h2steer_retries_denied_total"),
            "try_timeouts": total("h2steer_try_timeouts_total"),
            "memory_refused_streams": total("h2steer_memory_refused_streams_total"),
            "memory_reset_streams": total("h2steer_memory_reset_streams_total"),
            "malloc_trims": total("h2steer_malloc_trims_total"),
            "rpcs": by_label("h2steer_rpcs_total", "grpc_status"),
        }
        checks = []
        if unexplained:
            checks.append(f"{unexplained} failure(s) of well-behaved clients that no SIGKILL "
                          "explains")
        if not runs:
            checks.append("no client run finished")
        for what, sp, slack, unit in (("RSS", rss, a.rss_slack_mib * 1024, "KiB"),
                                      ("fds", fds, a.fd_slack, "")):
            for stat in ("max", "median"):
                if sp and sp["last_third"][stat] > sp["first_third"][stat] + slack:
                    checks.append(f"{what} not flat: {stat} of the first third of the run "
                                  f"{sp['first_third'][stat]} {unit}, of the last third "
                                  f"{sp['last_third'][stat]} {unit} (slack {slack:g})")
        if self.idle_after["rss_kib"] > self.idle_before["rss_kib"] + a.rss_slack_mib * 1024:
            checks.append(f"RSS not given back: idle {self.idle_before['rss_kib']} KiB before "
                          f"the load, {self.idle_after['rss_kib']} KiB after it (slack "
                          f"{a.rss_slack_mib} MiB)")
        # Attacks that were not cut off are findings, reported (not the soak's exit criteria).
        findings = [f"{kind}: {at['not_cut_off']} of {at['runs']} runs not cut off"
                    for kind, at in sorted(self.attacks.items()) if at["not_cut_off"]]
        checks += self.problems + close_problems
        out = {
            "minutes": a.minutes, "wall_s": round(self.wall, 1), "daemon": a.daemon,
            "well_behaved": {"ok": ok, "failed": sum(errors.values()), "errors": errors,
                             "explained_by_sigkill": explained, "unexplained": unexplained,
                             "by_client": by_client},
            "kills": [{"t": round(t - self.t_start, 1), "in_flight": f} for t, f in self.kills],
            "events": self.events, "idle_connections_held": self.idle_open,
            "attacks": self.attacks,
            "daemon_rss_kib": rss, "daemon_fds": fds,
            "idle_before": self.idle_before, "idle_after": self.idle_after,
            "daemon_cpu": {"seconds": round(cpu, 1), "pct_of_one_core": round(
                100 * cpu / self.wall, 1), "ms_per_1000_rpcs": round(
                1000 * 1000 * cpu / ok, 1) if ok else None},
            "daemon_log_bytes": os.path.getsize(self.daemon.proc.log),
            "metrics": counters, "samples": self.samples,
            "failed_runs": [r for r in runs if r["errors"] or r["unexplained"]][:50],
            "slack": {"rss_mib": a.rss_slack_mib, "fds": a.fd_slack},
            "pass": not checks, "failed_checks": checks, "findings": findings,
        }
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
        mib = lambda k: f"{k / 1024:.1f}"  # noqa: E731
        print(f"\nsoak: {a.minutes} min ({self.wall:.0f} s) of the release daemon {a.daemon}")
        print(f"  well-behaved RPCs: {ok} ok, {sum(errors.values())} failed {errors}: "
              f"{explained} explained by {len(self.kills)} SIGKILLs of k1 "
              f"(in flight when asked: {[f for _, f in self.kills]}), {unexplained} not")
        for name, c in sorted(by_client.items()):
            print(f"    {name:10} {c['runs']:4} runs {c['ok']:8} ok  errors {c['errors']}  "
                  f"dials {c['dials']}")
        print(f"  churn: {self.events}")
        print(f"  idle connections held: {self.idle_open}")
        for kind, at in sorted(self.attacks.items()):
            print(f"  attack {kind:24} {at['runs']:4} runs, {at['cut_off']} cut off; last "
                  f"{json.dumps(at['last'])[:150]}")
        if rss:
            print(f"  daemon RSS MiB: first {mib(rss['first'])} min {mib(rss['min'])} max "
                  f"{mib(rss['max'])} last {mib(rss['last'])}; max / median of the first "
                  f"third {mib(rss['first_third']['max'])} / "
                  f"{mib(rss['first_third']['median'])}, of the last "
                  f"{mib(rss['last_third']['max'])} / {mib(rss['last_third']['median'])} (idle "
                  f"before {mib(self.idle_before['rss_kib'])}, after "
                  f"{mib(self.idle_after['rss_kib'])})")
            print(f"  daemon fds:     first {fds['first']} min {fds['min']} max {fds['max']} "
                  f"last {fds['last']} (idle before {self.idle_before['fds']}, after "
                  f"{self.idle_after['fds']})")
        print(f"  daemon CPU: {cpu:.1f} s ({out['daemon_cpu']['pct_of_one_core']} % of one "
              f"core; {out['daemon_cpu']['ms_per_1000_rpcs']} ms per 1000 well-behaved RPCs, "
              f"attacks included); log {out['daemon_log_bytes']} bytes")
        for k in ("client_abuse", "client_timeouts", "ejections", "rpcs"):
            print(f"  /metrics {k}: {counters[k]}")
        print("  /metrics " + ", ".join(f"{k} {v:g}" for k, v in counters.items()
                                        if not isinstance(v, dict)))
        print(f"  written to {a.out}")
        if findings:
            print("findings (attacks not cut off):\n  " + "\n  ".join(findings))
        if checks:
            print("FAIL:\n  " + "\n  ".join(checks))
            return 1
        print("PASS")
        return 0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("SOAK_MINUTES") or 30),
                    help="length of the load (default $SOAK_MINUTES or 30)")
    ap.add_argument("--rss-slack-mib", type=float, default=8,
                    help="allowed RSS growth: the last third of the run over the first, and "
                         "idle after over idle before (default 8)")
    ap.add_argument("--fd-slack", type=int, default=50,
                    help="allowed growth of open fds, the last third over the first "
                         "(default 50)")
    ap.add_argument("--kill-s", type=float, default=30, help="k1 stopped every (default 30)")
    ap.add_argument("--kill-allowance", type=int, default=1,
                    help="failed RPCs a SIGKILL may explain per unit of a client's concurrency "
                         "(default 1; 0: none, to see the check fire)")
    ap.add_argument("--dns-s", type=float, default=20, help="DNS set changed every (20)")
    ap.add_argument("--health-s", type=float, default=20,
                    help="a health flip (NOT_SERVING and back) every (default 20)")
    ap.add_argument("--daemon", default=RELEASE, help="daemon binary (default build/h2steerd)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a daemon setting (--set of h2steerd), repeatable")
    ap.add_argument("--out", default=os.path.join(h2slab.BUILD, "soak", "soak.json"))
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the lab's logs (their directory is printed)")
    a = ap.parse_args()
    if not 0.5 <= a.minutes <= 24 * 60:
        ap.error("--minutes: 0.5 to 1440")
    return a


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("make soak needs root: sudo make soak", file=sys.stderr)
        return 1
    for path in (args.daemon, h2slab.PEER, h2slab.CLI):
        if not os.access(path, os.X_OK):
            print(f"{path} missing: make all", file=sys.stderr)
            return 1
    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    lab = h2slab.Lab("soak")
    soak = Soak(args, lab)
    done = False
    try:
        soak.setup()
        print(f"soak: {args.minutes:g} min; services A {soak.vip_a} (static, health, GOAWAY, "
              f"kills) and B {soak.vip_b} (DNS); daemon pid {soak.pid}; logs in {lab.tmp}",
              flush=True)
        soak.run()
        done = True
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except Exception:
        print(lab.logs()[-6000:], file=sys.stderr)
        raise
    finally:
        soak.stop.set()
        soak.runner.kill_all()
        for t in soak.threads:
            t.join(timeout=15)
        soak.runner.kill_all()
        close_problems = lab.close(keep_logs=True)
        if not done or args.keep_logs:
            print(f"logs kept in {lab.tmp}", file=sys.stderr)
    if not done:
        return 130
    rc = soak.report(close_problems)
    if not args.keep_logs:
        lab.remove_logs()
    return rc

if __name__ == "__main__":
    sys.exit(main())
