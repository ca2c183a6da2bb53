"""Run a CNI plugin chain the way a container runtime does (libcni's rules, CNI spec 1.0): each
plugin of a conflist is executed with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_ARGS and CNI_PATH in its environment and its own configuration on stdin — name and
cniVersion from the list, on ADD and CHECK the previous plugin's result as prevResult, and as
runtimeConfig those of the runtime's capability arguments (cgroupPath, portMappings, ...) that
the plugin declares in its "capabilities". ADD runs the plugins in order, DEL in reverse, each
DEL given the ADD's final result; CHECK and DEL get the ADD's CNI_ARGS and capability arguments
again (libcni caches them with the result). Used by the tests and usable by hand:

    tools/cnirun.py ADD|DEL|CHECK CONFLIST CONTAINER_ID NETNS_PATH [--in-netns NODE_NETNS]
                    [--args CNI_ARGS] [--runtime-config JSON_OBJECT]

e.g. as containerd sets up a Kubernetes sandbox:
    --args 'IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=greeter-7d9f8c-x2x4k;...'
    --runtime-config '{"cgroupPath": "kubepods-besteffort-pod<uid>.slice"}'
"""
import json
import os
import subprocess
import sys


class CniError(Exception):
    def __init__(self, plugin, rc, out, err):
        super().__init__(f"{plugin} exited {rc}: {out.strip()} {err.strip()}")
        self.plugin, self.rc, self.out, self.err = plugin, rc, out, err
        try:
            self.result = json.loads(out)
        except ValueError:
            self.result = None


class Chain:
    def __init__(self, conflist, cni_path, node_netns=None, ifname="eth0"):
        self.conflist = conflist
        self.cni_path = cni_path  # list of directories
        self.node_netns = node_netns  # plugins run in this named netns (the "node")
        self.ifname = ifname
        self.results = {}  # container id -> ADD's final result (what a runtime caches)
        self.runtime = {}  # container id -> ADD's (CNI_ARGS, capability arguments), cached too

    def _find(self, plugin_type):
        for d in self.cni_path:
            p = os.path.join(d, plugin_type)
            if os.access(p, os.X_OK):
                return p
        raise FileNotFoundError(f"CNI plugin {plugin_type} not in {self.cni_path}")

    def invoke(self, plugin, command, container_id, netns, prev=None, raw_stdin=None,
               args="", capability_args=None):
        conf = dict(plugin)
        conf["name"] = self.conflist["name"]
        conf["cniVersion"] = self.conflist["cniVersion"]
        if prev is not None:
            conf["prevResult"] = prev
        declared = plugin.get("capabilities", {})
        runtime_config = {k: v for k, v in (capability_args or {}).items() if declared.get(k)}
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
               "CNI_CONTAINERID": container_id, "CNI_NETNS": netns or "",
               "CNI_IFNAME": self.ifname, "CNI_ARGS": args,
               "CNI_PATH": ":".join(self.cni_path)}
        argv = [self._find(plugin["type"])]
        if self.node_netns:
            argv = ["nsenter", f"--net=/run/netns/{self.node_netns}"] + argv
        stdin = raw_stdin if raw_stdin is not None else json.dumps(conf)
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                           timeout=30)
        if r.returncode != 0:
            raise CniError(plugin["type"], r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def add(self, container_id, netns, args="", capability_args=None):
        self.runtime[container_id] = (args, capability_args)
        prev = None
        for plugin in self.conflist["plugins"]:
            prev = self.invoke(plugin, "ADD", container_id, netns, prev, args=args,
                               capability_args=capability_args)
        self.results[container_id] = prev
        return prev

    def check(self, container_id, netns):
        prev = self.results[container_id]
        args, caps = self.runtime.get(container_id, ("", None))
        for plugin in self.conflist["plugins"]:
            self.invoke(plugin, "CHECK", container_id, netns, prev, args=args,
                        capability_args=caps)

    def delete(self, container_id, netns):
        prev = self.results.get(container_id)
        args, caps = self.runtime.get(container_id, ("", None))
        for plugin in reversed(self.conflist["plugins"]):
            self.invoke(plugin, "DEL", container_id, netns, prev, args=args,
                        capability_args=caps)
        self.results.pop(container_id, None)
        self.runtime.pop(container_id, None)


def main(argv):
    if len(argv) < 5 or argv[1] not in ("ADD", "DEL", "CHECK"):
        print(__doc__, file=sys.stderr)
        return 2

    def option(name, default=None):
        return argv[argv.index(name) + 1] if name in argv else default

    node = option("--in-netns")
    args = option("--args", "")
    caps = json.loads(option("--runtime-config", "{}"))
    with open(argv[2]) as f:
        conflist = json.load(f)
    chain = Chain(conflist, ["/usr/lib/cni", os.path.join(os.path.dirname(__file__), "..",
                                                           "build")], node)
    if argv[1] == "ADD":
        print(json.dumps(chain.add(argv[3], argv[4], args, caps), indent=2))
    else:
        # By hand there is no cached result: DEL and CHECK get none.
        for plugin in (reversed(conflist["plugins"]) if argv[1] == "DEL" else
                       conflist["plugins"]):
            chain.invoke(plugin, argv[1], argv[3], argv[4], args=args, capability_args=caps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
