"""The targets `make bench` loads, all in front of the same grpc-go backends of one h2slab Lab: the
first backend alone (direct), h2steer, and nginx, haproxy and nghttpx configured alike — HTTP/2
cleartext in front, the backends over HTTP/2 behind, round robin, one worker, no access log,
errors to the lab log. Two references are not balancers of RPCs but show what the comparison is
made of: h2steer-1be (the same daemon with a service of the first backend only: the data path
without the spreading) and haproxy-tcp (haproxy as an L4 relay, `mode tcp`: a connection, and so
all its RPCs, goes to one backend — the cost of an L4 proxy). Each balancer is configured here
(files in lab.tmp), runs in the foreground through lab.spawn (so the lab stops it by PID), and
listens on a free 127.0.0.1 port. Only h2steer's clients run in the lab cgroup: h2steer never
captures the others'. h2steer-poll is a second daemon, with busy polling, capturing a cgroup of
its own.

Also what a balancer costs: CPU time and RSS of its whole process tree, read from /proc.
"""
import os
import re
import socket
import subprocess
import time

import h2slab

BALANCERS = ("h2steer", "h2steer-poll", "nginx", "haproxy", "nghttpx")
# h2steer-poll's busy polling settings (README: Busy polling), as --set KEY=VALUE.
BUSY_POLL_US = 200
BUSY_POLL_MAX_STREAMS = 1
BUSY_POLL_SETTINGS = (f"busy_poll_us={BUSY_POLL_US}",
                      f"busy_poll_max_streams={BUSY_POLL_MAX_STREAMS}")
REFERENCES = ("h2steer-1be", "haproxy-tcp")
TARGETS = ("direct",) + BALANCERS + REFERENCES
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Target:
    """Where a load goes. `proc` is the balancer (its process tree is what it costs); None for
    direct. `in_cgroup`: its clients must run in the lab cgroup (True) or in the cgroup at
    that path, where h2steer captures them."""

    def __init__(self, name, addr, proc=None, in_cgroup=False):
        self.name = name
        self.addr = addr
        self.proc = proc
        self.in_cgroup = in_cgroup

    def cpu_ms(self):
        return tree_cpu_ms(self.proc.pid) if self.proc else None

    def rss_kb(self):
        return tree_rss_kb(self.proc.pid) if self.proc else None


def start_targets(lab, backends, fastpath=False):
    """Every target, in TARGETS order, each listening before this returns."""
    addrs = [b.addr for b in backends]
    h2steer, h2steer_1be = start_h2steer(lab, addrs, fastpath)
    started = {"direct": Target("direct", backends[0].addr),
               "h2steer": h2steer,
               "h2steer-poll": start_h2steer_poll(lab, addrs),
               "nginx": start_nginx(lab, addrs),
               "haproxy": start_haproxy(lab, addrs),
               "nghttpx": start_nghttpx(lab, addrs),
               "h2steer-1be": h2steer_1be,
               "haproxy-tcp": start_haproxy(lab, addrs, mode="tcp")}
    return [started[name] for name in TARGETS]


def start_h2steer(lab, addrs, fastpath=False):
    """One daemon, two services: the three backends (h2steer) and the first alone
    (h2steer-1be)."""
    vip, vip_1be = lab.vip(), lab.vip()
    # The lab's default is debug logging; info logs nothing per connection or RPC, like the
    # other balancers without their access logs. The last --log-level wins.
    # fastpath: the experimental sk_msg path between clients and the daemon; the daemon then
    # runs in the lab's cgroup, where sockops sees its accepted sockets.
    extra = ("--log-level", "info") + (("--set", "fastpath=1") if fastpath else ())
    daemon = lab.daemon(services={vip: addrs, vip_1be: addrs[:1]}, extra=extra,
                        in_lab_cgroup=fastpath)
    return (Target("h2steer", vip, daemon.proc, in_cgroup=True),
            Target("h2steer-1be", vip_1be, daemon.proc, in_cgroup=True))


def start_h2steer_variant(lab, addrs, name, settings):
    """Another h2steer daemon, with --set `settings`, capturing the clients of a cgroup of
    its own (so that it never sees the other targets' clients)."""
    vip = lab.vip()
    cgroup = lab.make_cgroup(os.path.relpath(lab.cgroup, lab.root) + "-" + name)
    extra = ("--log-level", "info") + tuple(a for kv in settings for a in ("--set", kv))
    daemon = lab.daemon(services={vip: addrs}, cgroup=cgroup, extra=extra)
    return Target(name, vip, daemon.proc, in_cgroup=cgroup)


def start_h2steer_poll(lab, addrs):
    """h2steer with busy polling (busy_poll_us)."""
    return start_h2steer_variant(lab, addrs, "h2steer-poll", BUSY_POLL_SETTINGS)


def start_h2steer_loops(lab, addrs, loops):
    """h2steer with `loops` event loops (for the scale checks); it must say it runs them."""
    target = start_h2steer_variant(lab, addrs, f"h2steer-{loops}loops", (f"loops={loops}",))
    if f"{loops} event loops" not in target.proc.text():
        raise h2slab.LabError(f"{target.name}: not running {loops} loops:\n"
                              f"{target.proc.tail()}")
    return target


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
# The worker stays root so that it can use the temp paths in the lab's private folder.
user root;
pid nginx.pid;
error_log stderr notice;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream backends {{
{servers}
        # grpc_pass runs one stream per upstream connection: keep them open between requests,
        # or every RPC pays a TCP connect.
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen {listen} http2;
        # nginx ends a client connection after 1000 requests by default: the loads use one.
        keepalive_requests 100000000;
        keepalive_timeout 300s;
        # A gRPC message is a request body: nginx refuses bodies over 1 MiB by default (413).
        client_max_body_size 0;
        location / {{ grpc_pass grpc://backends; }}
    }}
}}
"""


def start_nginx(lab, addrs):
    listen = f"127.0.0.1:{h2slab.free_port()}"
    prefix = os.path.join(lab.tmp, "nginx")
    os.makedirs(os.path.join(prefix, "tmp"))
    servers = "\n".join(f"        server {a};" for a in addrs)
    conf = write_config(lab, "nginx.conf", NGINX_CONF.format(servers=servers, listen=listen))
    proc = lab.spawn("nginx", ["nginx", "-p", prefix + "/", "-e", "stderr", "-c", conf])
    return listening(Target("nginx", listen, proc))


# mode http: HTTP/2 on both sides, round robin per request; mode tcp: an L4 relay, the bytes of
# a connection to one backend (round robin per connection).
HAPROXY_CONF = """\
global
    nbthread 1
    maxconn 4096
    log stderr format raw local0 info
defaults
    mode {mode}
    # Errors only: successful requests are not logged (no access log).
    log global
    option dontlog-normal
    option dontlognull
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend front
    bind {listen}{proto}
    default_backend backends
backend backends
    balance roundrobin
{servers}
"""


def start_haproxy(lab, addrs, mode="http"):
    """haproxy in mode http (the target "haproxy") or tcp ("haproxy-tcp")."""
    name = "haproxy" if mode == "http" else f"haproxy-{mode}"
    proto = " proto h2" if mode == "http" else ""
    listen = f"127.0.0.1:{h2slab.free_port()}"
    servers = "\n".join(f"    server be{i + 1} {a}{proto}" for i, a in enumerate(addrs))
    conf = write_config(lab, f"{name}.cfg", HAPROXY_CONF.format(
        mode=mode, servers=servers, listen=listen, proto=proto))
    proc = lab.spawn(name, ["haproxy", "-db", "-f", conf])
    return listening(Target(name, listen, proc))


# Backends sharing a pattern (none = catch-all) form one group that nghttpx balances round
# robin. No accesslog-file: no access log.
NGHTTPX_CONF = """\
frontend={host},{port};no-tls
{backends}
workers=1
errorlog-file=/dev/stderr
"""


def start_nghttpx(lab, addrs):
    host, port = "127.0.0.1", h2slab.free_port()
    backends = "\n".join(f"backend={a.replace(':', ',')};;proto=h2" for a in addrs)
    conf = write_config(lab, "nghttpx.conf",
                        NGHTTPX_CONF.format(host=host, port=port, backends=backends))
    # --conf: never read /etc/nghttpx/nghttpx.conf.
    proc = lab.spawn("nghttpx", ["nghttpx", f"--conf={conf}"])
    return listening(Target("nghttpx", f"{host}:{port}", proc))


def write_config(lab, name, text):
    path = os.path.join(lab.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def listening(target, timeout=10.0):
    """Returns target once its balancer accepts TCP connections (LabError if it exits or
    does not within timeout)."""
    host, port = target.addr.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        if not target.proc.alive():
            raise h2slab.LabError(f"{target.name} exited with {target.proc.p.returncode}:\n"
                                  f"{target.proc.tail()}")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return target
        except OSError:
            if time.monotonic() > deadline:
                raise h2slab.LabError(f"{target.name} not listening on {target.addr} within "
                                      f"{timeout}s:\n{target.proc.tail()}")
            time.sleep(0.05)


def process_tree(pid):
    """pid and all its live descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat:
                children.setdefault(int(stat[1]), []).append(int(entry))  # stat[1]: ppid
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), or None if the
    process is gone. The name may hold spaces and parentheses: split after the last ')'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def tree_cpu_ms(pid):
    """utime + stime of pid and its descendants (all their threads), in ms."""
    total = 0
    for p in process_tree(pid):
        stat = read_stat(p)
        if stat:
            total += int(stat[11]) + int(stat[12])  # fields 14 and 15 of stat(5)
    return total * 1000 / CLK_TCK


def tree_rss_kb(pid):
    """VmRSS of pid and its descendants, added up, in KiB."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")),
                              0)
        except OSError:
            pass
    return total


def versions():
    """Version of each program the benchmark runs, for the record: {name: '1.22.1'}; h2steer's
    is the commit of this tree ('-dirty' with uncommitted changes)."""
    commands = {"nginx": ["nginx", "-v"], "haproxy": ["haproxy", "-v"],
                "nghttpx": ["nghttpx", "--version"], "h2load": ["h2load", "--version"]}
    git = subprocess.run(["git", "-C", h2slab.TOP, "describe", "--always", "--dirty"],
                         capture_output=True, text=True, timeout=10)
    out = {"h2steer": git.stdout.strip() or "?"}
    for name, argv in commands.items():
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        found = re.search(r"\d+\.\d+\S*", r.stdout + r.stderr)
        out[name] = found.group(0) if found else "?"
    return out
