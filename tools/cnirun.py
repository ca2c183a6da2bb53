"""Run a CNI plugin chain the way a container runtime does (libcni's rules, CNI spec 1.0): each
plugin of a conflist is executed with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and
CNI_PATH in its environment and its own configuration on stdin — name and cniVersion from the
list, and on ADD and CHECK the previous plugin's result as prevResult. ADD runs the plugins in
order, DEL in reverse, each DEL given the ADD's final result. Used by the tests and usable by
hand:

    tools/cnirun.py ADD|DEL|CHECK CONFLIST CONTAINER_ID NETNS_PATH [--in-netns NODE_NETNS]
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

    def _find(self, plugin_type):
        for d in self.cni_path:
            p = os.path.join(d, plugin_type)
            if os.access(p, os.X_OK):
                return p
        raise FileNotFoundError(f"CNI plugin {plugin_type} not in {self.cni_path}")

    def invoke(self, plugin, command, container_id, netns, prev=None, raw_stdin=None):
        conf = dict(plugin)
        conf["name"] = self.conflist["name"]
        conf["cniVersion"] = self.conflist["cniVersion"]
        if prev is not None:
            conf["prevResult"] = prev
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
               "CNI_CONTAINERID": container_id, "CNI_NETNS": netns or "",
               "CNI_IFNAME": self.ifname, "CNI_PATH": ":".join(self.cni_path)}
        argv = [self._find(plugin["type"])]
        if self.node_netns:
            argv = ["nsenter", f"--net=/run/netns/{self.node_netns}"] + argv
        stdin = raw_stdin if raw_stdin is not None else json.dumps(conf)
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                           timeout=30)
        if r.returncode != 0:
            raise CniError(plugin["type"], r.returncode, r.stdout, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def add(self, container_id, netns):
        prev = None
        for plugin in self.conflist["plugins"]:
            prev = self.invoke(plugin, "ADD", container_id, netns, prev)
        self.results[container_id] = prev
        return prev

    def check(self, container_id, netns):
        prev = self.results[container_id]
        for plugin in self.conflist["plugins"]:
            self.invoke(plugin, "CHECK", container_id, netns, prev)

    def delete(self, container_id, netns):
        prev = self.results.get(container_id)
        for plugin in reversed(self.conflist["plugins"]):
            self.invoke(plugin, "DEL", container_id, netns, prev)
        self.results.pop(container_id, None)


def main(argv):
    if len(argv) < 5 or argv[1] not in ("ADD", "DEL", "CHECK"):
        print(__doc__, file=sys.stderr)
        return 2
    node = argv[argv.index("--in-netns") + 1] if "--in-netns" in argv else None
    with open(argv[2]) as f:
        conflist = json.load(f)
    chain = Chain(conflist, ["/usr/lib/cni", os.path.join(os.path.dirname(__file__), "..",
                                                           "build")], node)
    if argv[1] == "ADD":
        print(json.dumps(chain.add(argv[3], argv[4]), indent=2))
    else:
        # By hand there is no cached result: DEL and CHECK get none.
        for plugin in (reversed(conflist["plugins"]) if argv[1] == "DEL" else
                       conflist["plugins"]):
            chain.invoke(plugin, argv[1], argv[3], argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
