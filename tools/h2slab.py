"""h2slab — a throwaway lab for h2steer on this machine: a cgroup for clients, real gRPC
backends, an h2steerd with its own pin dir and listener, clients run inside the cgroup, and the
h2steer CLI. Used by the end-to-end tests, the demo and the benchmark.

Everything a Lab starts or creates is removed by Lab.close(), also after failures: processes by
PID (SIGTERM, then SIGKILL), BPF pins, cgroups, temp files. Addresses are loopback only: backends
on 127.0.0.1 (or ::1), service VIPs in 127.0.100.0/24.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("H2S_BUILD", os.path.join(TOP, "build"))
# The daemon under test; the e2e tests use the sanitizer build (see tests/tests.mk).
DAEMON = os.environ.get("H2S_DAEMON", os.path.join(BUILD, "h2steerd"))
CLI = os.path.join(BUILD, "h2steer")
PEER = os.path.join(BUILD, "h2s-grpc-peer")
PYTHON = "/usr/bin/python3"  # Debian's, which sees python3-grpcio


def cgroup2_root():
    """Mount point of cgroup v2, read from /proc/self/mountinfo (never hard-coded)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split(" ")[0] == "cgroup2":
                return pre.split(" ")[4].replace("\\040", " ")
    raise RuntimeError("no cgroup v2 hierarchy mounted")


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def in_netns(netns):
    """The prefix that runs a command in a network namespace (ip execs it: same PID)."""
    # Not `ip netns exec`: that also remounts /sys, hiding bpffs and the cgroup hierarchy.
    return ["nsenter", f"--net=/run/netns/{netns}"] if netns else []


class LabError(Exception):
    pass


class Proc:
    """A process the lab started; its output goes to a log file."""

    def __init__(self, lab, name, argv, cgroup=None, stdin=False):
        self.name = name
        self.log = os.path.join(lab.tmp, f"{name}.log")
        self._logf = open(self.log, "wb")
        preexec = (lambda: _join_cgroup(cgroup)) if cgroup else None
        self.p = subprocess.Popen(argv, stdout=self._logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  preexec_fn=preexec, close_fds=True)
        self.pid = self.p.pid
        self.exit_expected = False  # a test killed it or made it fail: its status is no problem

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.p.poll() is not None:
                raise LabError(f"{self.name} exited with {self.p.returncode} before "
                               f"'{needle}':\n{self.tail()}")
            time.sleep(0.02)
        raise LabError(f"{self.name}: no '{needle}' within {timeout}s:\n{self.tail()}")

    def tail(self, n=40):
        return "\n".join(self.text().splitlines()[-n:])

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal by PID, wait, escalate to SIGKILL; returns the exit status."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(5)
        self._logf.close()
        return self.p.returncode


def _join_cgroup(path):
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


RAW_BACKEND = os.path.join(TOP, "tests", "grpc", "h2backend.py")


class Backend:
    """A grpc-go backend (tests/grpc/peer), or with raw=True the python-h2 backend
    (tests/grpc/h2backend.py) that can reset streams, stall, and send 1xx on request."""

    def __init__(self, lab, ident, host="127.0.0.1", extra=(), raw=False, port=None, netns=None):
        self.id = ident
        self.host = host
        self.port = port or free_port(host)
        self.addr = hostport(host, self.port)
        self.netns = netns
        argv = ([PYTHON, RAW_BACKEND, "--listen", self.addr, "--id", ident] if raw else
                [PEER, "server", "-listen", self.addr, "-id", ident])
        argv = in_netns(netns) + argv
        self.proc = lab.spawn(f"backend-{ident}", argv + list(extra), stdin="-health" in extra)
        self.proc.wait_for("READY")

    def stats(self, lab):
        """The backend's own counters, asked directly (not through h2steer)."""
        return lab.client(self.addr, "stats", in_cgroup=False, netns=self.netns)["stats"]

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig)


class Dns:
    """A real DNS server (dnsmasq) on a loopback address, authoritative for DOMAIN. Its A/AAAA
    records live in a hosts directory that dnsmasq re-reads on change (set_hosts); SRV records
    are fixed at start."""

    DOMAIN = "h2s.test"

    def __init__(self, lab, srv=(), ttl=1, netns=None):
        self.host = "127.0.53.1"
        self.port = free_port(self.host)
        self.addr = f"{self.host}:{self.port}"
        self.dir = os.path.join(lab.tmp, f"dns-{lab.seq()}")
        os.makedirs(self.dir)
        self.hosts = os.path.join(self.dir, "hosts")
        self.set_hosts({})
        argv = ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll", "--user=root", "--pid-file=",
                f"--listen-address={self.host}", "--bind-interfaces", f"--port={self.port}",
                f"--local=/{self.DOMAIN}/", f"--local-ttl={ttl}", f"--hostsdir={self.dir}"]
        for name, target, port, weight in srv:
            argv.append(f"--srv-host={name},{target},{port},0,{weight}")
        self.proc = lab.spawn("dnsmasq", in_netns(netns) + argv)
        self.proc.wait_for("started")

    def set_hosts(self, records):
        """{name: [ip, ...]}: replaces every A/AAAA record (dnsmasq picks it up via inotify)."""
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            for name, ips in records.items():
                for ip in ips:
                    f.write(f"{ip} {name}\n")
        os.rename(tmp, self.hosts)


class Daemon:
    def __init__(self, lab, config=None, cgroup="lab", extra=(), listen=None, pin_dir=None,
                 wrap=(), binary=None, wait=True, in_lab_cgroup=False):
        self.pin_dir = pin_dir or f"/sys/fs/bpf/h2s-lab-{os.getpid()}-{lab.seq()}"
        self.port = free_port()
        self.listen = listen or [f"127.0.0.1:{self.port}", f"[::1]:{free_port('::1')}"]
        self.metrics = f"127.0.0.1:{free_port()}"
        # wrap: a command the daemon runs under (setpriv with fewer capabilities, say).
        argv = [*wrap, binary or DAEMON, "--pin-dir", self.pin_dir, "--log-level", "debug",
                "--metrics", self.metrics]
        for l in self.listen:
            argv += ["--listen", l]
        if cgroup == "lab":
            argv += ["--cgroup", lab.cgroup]
        elif cgroup:
            argv += ["--cgroup", cgroup]
        if config is not None:
            path = os.path.join(lab.tmp, f"config-{lab.seq()}.yaml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["-c", path]
        argv += list(extra)
        if self.pin_dir not in lab.pin_dirs:
            lab.pin_dirs.append(self.pin_dir)
        # in_lab_cgroup: its own sockets then see the programs attached to the lab's cgroup
        # (sockops keeps TCP stats of its upstream connections), as with the default root.
        self.proc = lab.spawn("h2steerd", argv, cgroup=lab.cgroup if in_lab_cgroup else None)
        if wait:
            self.proc.wait_for(" ready: ")

    def stop(self, timeout=40.0):
        return self.proc.stop(signal.SIGTERM, timeout)

    def http(self, path):
        """GET path on the daemon's metrics listener: (status, text)."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://{self.metrics}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def scrape(self):
        """/metrics as {(name, frozenset(labels.items())): value}."""
        status, text = self.http("/metrics")
        assert status == 200, (status, text)
        return parse_metrics(text)


class Lab:
    def __init__(self, name="lab"):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"h2s-{name}-")
        self.procs = []
        self.pin_dirs = []
        self.cgroups = []
        self.netnses = []
        self._seq = 0
        self.root = cgroup2_root()
        self.cgroup = self.make_cgroup(f"h2s-lab-{os.getpid()}-{name}")
        # A random VIP block per lab, so a leftover from a crashed run never collides.
        self._vip_base = random.randint(1, 200)

    def seq(self):
        self._seq += 1
        return self._seq

    def make_cgroup(self, rel):
        path = os.path.join(self.root, rel)
        os.makedirs(path, exist_ok=True)
        self.cgroups.append(path)
        return path

    def netns(self):
        """A fresh network namespace with its loopback up; removed by close()."""
        name = f"h2s-{os.getpid()}-{self.seq()}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.netnses.append(name)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return name

    def veth(self, ns_a, addr_a, ns_b, addr_b):
        """A veth pair between two of the lab's namespaces, addresses given as A.B.C.D/LEN;
        returns the interface names (a side, b side)."""
        a, b = f"h2sa{self.seq()}", f"h2sb{self._seq}"
        subprocess.run(["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", b,
                        "netns", ns_b], check=True)
        for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
            subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        return a, b

    def vip(self, port=None):
        """A fresh service address (loopback only)."""
        return f"127.0.100.{self._vip_base + self.seq() % 50}:{port or free_port()}"

    def spawn(self, name, argv, cgroup=None, stdin=False):
        p = Proc(self, f"{name}-{self.seq()}", argv, cgroup=cgroup, stdin=stdin)
        self.procs.append(p)
        return p

    def backends(self, n, prefix="be", **kw):
        return [Backend(self, f"{prefix}{i + 1}", **kw) for i in range(n)]

    def dns(self, **kw):
        return Dns(self, **kw)

    def daemon(self, services=None, **kw):
        config = kw.pop("config", None)
        if services is not None:
            config = services_yaml(services)
        return Daemon(self, config=config, **kw)

    def wait_backends(self, daemon, vip, n, timeout=5):
        """Until `backend list VIP` shows n backends (a resolver's answer applied)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.cli(daemon, "backend", "list", vip, json_out=True).json) == n:
                return
            time.sleep(0.05)
        raise LabError(self.cli(daemon, "backend", "list", vip).stdout)

    def wait_streams(self, daemon, n, timeout=10):
        """Until `stream list` shows n streams; returns the last list (maybe not n long)."""
        deadline = time.monotonic() + timeout
        while True:
            streams = self.cli(daemon, "stream", "list", json_out=True).json
            if len(streams) == n or time.monotonic() >= deadline:
                return streams
            time.sleep(0.1)

    def cli(self, daemon, *args, json_out=False, check=True):
        argv = [CLI, "-d", daemon.pin_dir] + (["-j"] if json_out else []) + [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise LabError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr}{r.stdout}")
        if json_out and r.stdout.strip():
            r.json = json.loads(r.stdout)
        return r

    def client(self, target, mode, *args, in_cgroup=True, timeout=120, check=True, netns=None):
        """Run the Go gRPC client (in the lab's cgroup, so it is captured; or in_cgroup may
        name another one, a pod's); returns its JSON."""
        argv = in_netns(netns) + [PEER, "client", "-target", target, mode, *map(str, args)]
        return self._run_json(argv, in_cgroup, timeout, check)

    def client_async(self, target, mode, *args, in_cgroup=True):
        argv = [PEER, "client", "-target", target, mode, *map(str, args)]
        return self.spawn("client", argv, cgroup=self.cgroup if in_cgroup else None)

    def pyclient(self, script, *args, in_cgroup=True, timeout=120, check=True, netns=None):
        argv = in_netns(netns) + [PYTHON, os.path.join(TOP, "tests", "grpc", script),
                                  *map(str, args)]
        return self._run_json(argv, in_cgroup, timeout, check)

    def run(self, argv, in_cgroup=True, timeout=60):
        """in_cgroup: True for the lab's cgroup, a path for another, False for none."""
        cg = in_cgroup if isinstance(in_cgroup, str) else self.cgroup if in_cgroup else None
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=(lambda: _join_cgroup(cg)) if cg else None)

    def _run_json(self, argv, in_cgroup, timeout, check):
        r = self.run(argv, in_cgroup, timeout)
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise LabError(f"{' '.join(argv)}: no JSON (exit {r.returncode}): "
                           f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        out["exit"] = r.returncode
        if check and r.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed (exit {r.returncode}): {out}")
        return out

    def logs(self):
        return "\n".join(f"----- {p.name} (pid {p.pid}) -----\n{p.tail(60)}" for p in self.procs)

    def close(self, keep_logs=False):
        """Remove everything this lab made (the logs too, unless keep_logs: then call
        remove_logs() after reading them). Returns a list of problems (empty when clean)."""
        problems = []
        for p in reversed(self.procs):
            daemon = p.name.startswith("h2steerd")
            was_alive = p.alive()
            rc = p.stop(signal.SIGTERM, timeout=40 if daemon else 10)
            if not daemon or p.exit_expected:
                continue
            if not was_alive and rc != 0:
                problems.append(f"{p.name} died during the test (exit {rc})")
            elif rc != 0:
                problems.append(f"{p.name} exited {rc} after SIGTERM")
            text = p.text()
            for bad in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:"):
                at = text.find(bad)
                if at >= 0:
                    # The report itself, not only the log's tail: CI keeps no logs.
                    start = text.rfind("\n", 0, max(0, text.rfind("=====", 0, at))) + 1
                    report = "\n".join(text[start:].splitlines()[:80])
                    problems.append(f"{p.name}: sanitizer report ({bad}) in its log:\n{report}")
        for d in self.pin_dirs:
            if os.path.exists(d):
                problems.append(f"pins left behind in {d}")
                shutil.rmtree(d, ignore_errors=True)
        for ns in reversed(self.netnses):
            r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"netns {ns} could not be removed: {r.stderr.strip()}")
        for cg in reversed(self.cgroups):
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                problems.append(f"cgroup {cg} could not be removed")
        if not keep_logs:
            self.remove_logs()
        return problems

    def remove_logs(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_metrics(text):
    """Prometheus text format (the subset h2steerd writes) into a dict."""
    import re
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            raise ValueError(f"bad metrics line: {line!r}")
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(scraped, name, **labels):
    """One sample, or 0 when absent."""
    return scraped.get((name, frozenset({k: str(v) for k, v in labels.items()}.items())), 0.0)


def services_yaml(services):
    """{vip: {"algo": ..., "backends": [addr | (addr, weight)], other service keys...}} or
    {vip: [addr, ...]}; other keys are written as JSON values (YAML accepts them)."""
    lines = ["services:"]
    for vip, spec in services.items():
        if isinstance(spec, list):
            spec = {"backends": spec}
        lines.append(f"  - vip: \"{vip}\"")
        lines.append(f"    algo: {spec.get('algo', 'round_robin')}")
        for k, v in spec.items():
            if k not in ("algo", "backends"):
                lines.append(f"    {k}: {json.dumps(v)}")
        lines.append("    backends:" + ("" if spec["backends"] else " []"))
        for b in spec["backends"]:
            addr, weight = (b, 1) if isinstance(b, str) else b
            lines.append(f"      - address: \"{addr}\"")
            lines.append(f"        weight: {weight}")
    return "\n".join(lines) + "\n"
