"""The Kubernetes deployment, checked offline: the manifests through yamllint and a strict
schema check (python3-kubernetes' models), their parts agreeing with each other and with the
config, the daemon running with exactly the DaemonSet's capabilities (and failing without any
one of them), and the Dockerfile's stages (the build stage's commands run here; the runtime
stage holds every library the binaries load)."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

import h2slab

DEPLOY = os.path.join(h2slab.TOP, "tools", "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
MANIFESTS = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(K8S) for f in fs
                   if f.endswith(".yaml"))
CHECK = [h2slab.PYTHON, os.path.join(DEPLOY, "k8s_check.py")]


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def objects():
    return {(d["kind"], d["metadata"]["name"]): d for m in MANIFESTS for d in load(m)}


def daemonset():
    return objects()[("DaemonSet", "h2steerd")]


def h2steerd_config():
    cm = objects()[("ConfigMap", "h2steerd-config")]
    return cm["data"]["h2steerd.yaml"]


def test_manifests_pass_yamllint_strict():
    assert len(MANIFESTS) >= 4, MANIFESTS
    r = subprocess.run(["yamllint", "-s", "-c", os.path.join(K8S, ".yamllint"), K8S],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_manifests_pass_the_strict_schema_check(tmp_path):
    r = subprocess.run(CHECK + MANIFESTS, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # The check does fail: an unknown field, a wrong type, a missing required field.
    with open(os.path.join(K8S, "daemonset.yaml")) as f:
        good = f.read()
    for bad, needle in [
        (good.replace("hostNetwork: true", "hostNetwork: true\n      hostNetwrok: true"),
         "hostNetwrok: unknown field of V1PodSpec"),
        (good.replace("terminationGracePeriodSeconds: 30",
                      "terminationGracePeriodSeconds: \"30\""), "expected int, got str"),
        (good.replace("        - name: h2steerd\n          image:", "        - image:"),
         "`name`, must not be `None`"),
    ]:
        assert bad != good
        p = tmp_path / "bad.yaml"
        p.write_text(bad)
        r = subprocess.run(CHECK + [str(p)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and needle in r.stdout, r.stdout + r.stderr


def test_daemonset_has_what_the_node_component_needs():
    ds = daemonset()
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert ds["spec"]["selector"]["matchLabels"].items() <= \
        ds["spec"]["template"]["metadata"]["labels"].items()
    # Probes on the daemon's own endpoint, where the config serves it.
    config = yaml.safe_load(h2steerd_config())
    host, port = config["metrics"].rsplit(":", 1)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert (get["host"], str(get["port"]), get["path"]) == (host, port, path)
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    # A stopping pod gets longer than the daemon's drain.
    assert pod["terminationGracePeriodSeconds"] * 1000 > config["drain_timeout_ms"]
    # bpffs, the host's cgroup v2 and the control socket's directory come from the node.
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["bpffs"]["hostPath"]["path"] == "/sys/fs/bpf"
    assert volumes["cgroup"]["hostPath"]["path"] == "/sys/fs/cgroup"
    assert volumes["config"]["configMap"]["name"] == "h2steerd-config"
    args = dict(a[2:].split("=", 1) for a in c["args"] if "=" in a)
    assert args["cgroup"] == mounts["cgroup"]
    assert args["pin-dir"].startswith(mounts["bpffs"] + "/")
    assert os.path.dirname(args["control"]) == mounts["run"]
    assert os.path.dirname(args["config"]) == mounts["config"]
    assert "--takeover" in c["args"]
    # Every capability is added for a reason written next to it; nothing else is kept.
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and sc.get("privileged") is False
    with open(os.path.join(K8S, "daemonset.yaml")) as f:
        text = f.read()
    for cap in sc["capabilities"]["add"]:
        assert re.search(rf"# CAP_{cap}: \S.*\n(\s*# .*\n)*\s*- {cap}\n", text), cap
    # The image puts the daemon where the DaemonSet runs it.
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        dockerfile = f.read()
    assert re.search(r"COPY --from=build \S*/h2steerd \S*/h2steer \S*/h2steer-cni /usr/local/bin/",
                     dockerfile)
    assert c["command"] == ["/usr/local/bin/h2steerd"]


def test_configmap_config_passes_check_config_with_the_daemonset_args(tmp_path):
    path = tmp_path / "h2steerd.yaml"
    path.write_text(h2steerd_config())
    (c,) = daemonset()["spec"]["template"]["spec"]["containers"]
    args = [a for a in c["args"] if not a.startswith("--config=")]
    r = subprocess.run([h2slab.DAEMON, *args, "--check-config", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "OK (1 services" in r.stdout, r.stdout + r.stderr


def test_example_app_hangs_together():
    objs = objects()
    config = yaml.safe_load(h2steerd_config())
    (svc,) = config["services"]
    dep = objs[("Deployment", "greeter")]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    headless, vip = objs[("Service", "greeter-pods")], objs[("Service", "greeter")]
    assert headless["spec"]["clusterIP"] == "None"
    for s in (headless, vip):
        assert s["spec"]["selector"].items() <= labels.items()
    # h2steer captures the Service's cluster IP and follows the headless Service's DNS name.
    port = vip["spec"]["ports"][0]["port"]
    assert svc["vip"] == f"{vip['spec']['clusterIP']}:{port}"
    ns = headless["metadata"]["namespace"]
    assert svc["resolver"]["dns"] == f"greeter-pods.{ns}.svc.cluster.local:{port}"


CAP_NAMES = {"BPF": "bpf", "NET_ADMIN": "net_admin", "PERFMON": "perfmon",
             "SYS_ADMIN": "sys_admin", "SYS_RESOURCE": "sys_resource"}


def setpriv(caps):
    return ["setpriv", "--bounding-set=-all" + "".join(f",+{CAP_NAMES[c]}" for c in caps),
            "--inh-caps=-all", "--"]


def test_daemon_runs_with_exactly_the_daemonset_capabilities(lab):
    (c,) = daemonset()["spec"]["template"]["spec"]["containers"]
    caps = c["securityContext"]["capabilities"]["add"]
    bes = lab.backends(3)
    vip = lab.vip()
    services = {vip: [b.addr for b in bes]}
    # The production build (no sanitizer: LeakSanitizer would want ptrace).
    d = lab.daemon(services=services, wrap=setpriv(caps), binary=os.path.join(h2slab.BUILD,
                                                                              "h2steerd"))
    with open(f"/proc/{d.proc.pid}/status") as f:
        eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", f.read()).group(1), 16)
    assert bin(eff).count("1") == len(caps), hex(eff)
    r = lab.client(vip, "unary", "-n", 300, "-c", 3)
    assert r["ok"] == 300 and all(n == 100 for n in r["by_backend"].values()), r
    # `kubectl exec ... h2steer status` runs with the same capabilities.
    st = subprocess.run(setpriv(caps) + [h2slab.CLI, "-d", d.pin_dir, "-j", "status"],
                        capture_output=True, text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    assert d.stop() == 0
    # Each one is needed: without it the daemon cannot start (and says why).
    for missing in caps:
        fewer = [x for x in caps if x != missing]
        d = lab.daemon(services=services, wrap=setpriv(fewer), wait=False,
                       binary=os.path.join(h2slab.BUILD, "h2steerd"))
        d.proc.exit_expected = True
        assert d.proc.p.wait(30) == 1, (missing, d.proc.tail())
        assert "Operation not permitted" in d.proc.text() or \
            "Permission denied" in d.proc.text(), (missing, d.proc.tail())


def test_dockerfile_build_stage_builds_from_a_clean_tree(tmp_path):
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        dockerfile = f.read()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    build = next(s for s in stages if s.split()[2] == "build")
    (run,) = re.findall(r"^RUN (.+)$", build, flags=re.M)
    assert "tools/deps.sh build" in run
    # The context the image sees: the repository's files, nothing built.
    src = tmp_path / "src"
    files = subprocess.run(["git", "-C", h2slab.TOP, "ls-files", "-z", "--cached",
                            "--others", "--exclude-standard"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if os.path.exists(os.path.join(h2slab.TOP, rel)):
            os.makedirs(src / os.path.dirname(rel), exist_ok=True)
            shutil.copy2(os.path.join(h2slab.TOP, rel), src / rel)
    r = subprocess.run(["bash", "-c", run], cwd=src, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for binary in ("h2steerd", "h2steer", "h2steer-cni"):
        assert os.access(src / "build" / binary, os.X_OK)
    # The runtime stage installs the package of every library they load (libc6 is in the base).
    runtime = next(s for s in stages if s.split()[0].startswith("debian:12-slim"))
    install = re.search(r"--no-install-recommends(.*?)&&", runtime, re.S).group(1)
    installed = set(install.replace("\\", " ").split())
    needed = set()
    for binary in ("h2steerd", "h2steer", "h2steer-cni"):
        dyn = subprocess.run(["objdump", "-p", str(src / "build" / binary)],
                             capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"NEEDED\s+(\S+)", dyn):
            path = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                                  check=True).stdout
            m = re.search(rf"^\s*{re.escape(lib)} \(libc6,x86-64\) => (\S+)$", path, re.M)
            assert m, lib
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))],
                                   capture_output=True, text=True)
            if owner.returncode != 0:  # /lib vs /usr/lib (merged /usr)
                owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True,
                                       text=True, check=True)
            needed.add(owner.stdout.split(":")[0])
    missing = needed - installed - {"libc6"}
    assert not missing, f"runtime stage lacks {missing} (installs {installed})"
    # And those packages exist in this Debian release.
    for pkg in installed:
        r = subprocess.run(["apt-cache", "show", pkg], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip(), pkg
