"""Capture as clients see it, and the daemon's life: start, config errors, graceful SIGTERM,
restarts with kept state, and the CLI's handling of bad input."""
import json
import os
import signal
import stat
import subprocess
import time

import pytest

import h2slab


def connect_and_getpeername(lab, vip, in_cgroup=True, family="inet"):
    host, port = vip.rsplit(":", 1)
    if family == "inet6-mapped":
        code = ("import socket\ns=socket.socket(socket.AF_INET6)\ns.settimeout(5)\n"
                f"s.connect(('::ffff:{host}',{port}))\nprint(s.getpeername()[:2])")
    else:
        code = (f"import socket\ns=socket.create_connection(('{host}',{port}),timeout=5)\n"
                "print(s.getpeername())")
    return lab.run([h2slab.PYTHON, "-c", code], in_cgroup=in_cgroup)


def test_getpeername_shows_the_vip(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    lab.daemon(services={vip: [bes[0].addr]})
    host, port = vip.rsplit(":", 1)
    r = connect_and_getpeername(lab, vip)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str((host, int(port)))
    r = connect_and_getpeername(lab, vip, family="inet6-mapped")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str((f"::ffff:{host}", int(port)))


def test_process_outside_the_cgroup_is_not_captured(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    lab.daemon(services={vip: [bes[0].addr]})
    # Nothing listens on the VIP itself: uncaptured, the connect is refused.
    r = connect_and_getpeername(lab, vip, in_cgroup=False)
    assert r.returncode != 0 and "ConnectionRefusedError" in r.stderr, r.stderr
    # Inside, an unmanaged destination is reached directly (here: the backend itself).
    r = lab.client(bes[0].addr, "unary", "-n", 5)
    assert r["ok"] == 5


def test_default_capture_is_the_whole_hierarchy(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    lab.daemon(services={vip: [b.addr for b in bes]}, cgroup=None)
    r = lab.client(vip, "unary", "-n", 100, in_cgroup=False)
    assert r["ok"] == 100 and len(r["by_backend"]) == 2


def test_pins_are_private_and_removed_on_exit(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]})
    for root, dirs, files in os.walk(d.pin_dir):
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
            assert mode == 0o600, (name, oct(mode))
    progs = ["h2s_connect4", "h2s_connect6", "h2s_peername4", "h2s_peername6", "h2s_sockops"]
    assert sorted(os.listdir(os.path.join(d.pin_dir, "links"))) == progs
    assert sorted(os.listdir(os.path.join(d.pin_dir, "progs"))) == progs
    assert d.stop() == 0
    assert not os.path.exists(d.pin_dir)
    # And capture is gone with it: the VIP is an ordinary (dead) address again.
    r = connect_and_getpeername(lab, vip)
    assert "ConnectionRefusedError" in r.stderr


def test_sigterm_finishes_in_flight_rpcs_then_exits(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    c = lab.client_async(vip, "concurrent", "-streams", 10, "-sleep-ms", 2500)
    time.sleep(0.8)
    t0 = time.monotonic()
    os.kill(d.proc.pid, signal.SIGTERM)
    assert c.p.wait(30) == 0, c.tail()
    assert d.proc.p.wait(30) == 0, d.proc.tail()
    assert time.monotonic() - t0 < 10
    assert "draining" in d.proc.text()
    assert not os.path.exists(d.pin_dir)


def test_restart_with_kept_state_swaps_programs_in_place(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d1 = lab.daemon(services={vip: [b.addr for b in bes]}, extra=["--keep-state"])
    lab.cli(d1, "backend", "set", vip, bes[0].addr, "weight", 3)
    assert d1.stop() == 0
    assert os.path.exists(os.path.join(d1.pin_dir, "links", "h2s_connect4"))
    # Same pin dir: the new daemon reuses the maps (the CLI change survives) and the links.
    d2 = lab.daemon(pin_dir=d1.pin_dir)
    assert "program replaced" in d2.proc.text()
    listed = lab.cli(d2, "backend", "list", vip, json_out=True).json
    assert {b["address"]: b["weight"] for b in listed} == {bes[0].addr: 3, bes[1].addr: 1}
    r = lab.client(vip, "unary", "-n", 400, "-c", 4)
    assert r["ok"] == 400 and r["by_backend"] == {bes[0].id: 300, bes[1].id: 100}


BAD_CONFIGS = [
    ("services:\n  - vip: 127.0.100.1:1\n    prot: 1\n", ":3:5: services[0].prot: unknown key"),
    ("listen: [\"127.0.0.1\"]\n", ":1:10: listen[0]: invalid address '127.0.0.1': missing :PORT"),
    ("services:\n  - vip: 127.0.100.1:1\n    algo: fastest\n", ":3:11: services[0].algo: "),
    ("bogus: 1\n", ":1:1: bogus: unknown key"),
    ("max_streams: many\n", ":1:14: max_streams: Invalid"),
]


@pytest.mark.parametrize("config,needle", BAD_CONFIGS)
def test_bad_config_is_rejected_with_a_clear_error(lab, config, needle):
    path = os.path.join(lab.tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write(config)
    for argv in (["-c", path, "--pin-dir", "/sys/fs/bpf/h2s-never"], ["--check-config", path]):
        r = subprocess.run([h2slab.DAEMON, *argv], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r
        assert f"{path}{needle}" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.exists("/sys/fs/bpf/h2s-never")


def test_check_config_validates_without_starting(lab):
    path = os.path.join(lab.tmp, "good.yaml")
    with open(path, "w") as f:
        f.write(h2slab.services_yaml({"127.0.100.9:80": ["127.0.0.1:1", "127.0.0.1:2"]}))
    r = subprocess.run([h2slab.DAEMON, "--check-config", path, "--pin-dir",
                        "/sys/fs/bpf/h2s-never"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "OK (1 services" in r.stdout, r
    assert not os.path.exists("/sys/fs/bpf/h2s-never")


@pytest.mark.parametrize("args", [
    ["--listen", "nope"], ["--cgroup", "/nonexistent/cg"], ["--bogus"], ["extra"],
    ["--max-streams", "0"], ["--pin-dir", "relative/dir"],
])
def test_bad_daemon_arguments_exit_2(lab, args):
    r = subprocess.run([h2slab.DAEMON, "--pin-dir", "/sys/fs/bpf/h2s-never", *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    assert r.stderr.strip() and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_bad_arguments_exit_2_and_change_nothing(lab):
    bes = lab.backends(1)
    vip = lab.vip()
    d = lab.daemon(services={vip: [bes[0].addr]})
    before = lab.cli(d, "service", "list", json_out=True).json
    for args in (["backend", "add", vip, "not-an-address"], ["backend", "add", vip],
                 ["backend", "add", vip, "127.0.0.1:9", "weight", "0"],
                 ["service", "add", vip, "algo", "fastest"], ["frobnicate"],
                 ["service", "add", "127.0.0.1"]):
        r = lab.cli(d, *args, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        rj = lab.cli(d, *args, json_out=True, check=False)
        assert rj.returncode == 2 and "error" in json.loads(rj.stdout)
    assert lab.cli(d, "service", "list", json_out=True).json == before
    # A well-formed request that cannot be done is a runtime error (1), with a hint.
    r = lab.cli(d, "backend", "add", "127.0.100.250:1", bes[0].addr, check=False)
    assert r.returncode == 1 and "service add" in r.stderr


def test_second_daemon_on_same_pin_dir_refuses_and_harms_nothing(lab):
    bes = lab.backends(2)
    vip = lab.vip()
    d = lab.daemon(services={vip: [b.addr for b in bes]})
    r = subprocess.run([h2slab.DAEMON, "--pin-dir", d.pin_dir, "--listen",
                        f"127.0.0.1:{h2slab.free_port()}", "--cgroup", lab.cgroup],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "another h2steerd is running" in r.stderr, r.stderr
    # The first one still owns its pins and still balances.
    assert os.path.exists(os.path.join(d.pin_dir, "links", "h2s_connect4"))
    out = lab.client(vip, "unary", "-n", 100, "-c", 2)
    assert out["ok"] == 100 and len(out["by_backend"]) == 2


def test_demo_runs_and_cleans_up():
    """`make demo` is half of the quick start: it must keep working."""
    r = subprocess.run([os.path.join(h2slab.TOP, "tools", "demo.py")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "every backend served RPCs of the one connection" in r.stdout, r.stdout
    assert "cleaned up" in r.stdout, r.stdout
