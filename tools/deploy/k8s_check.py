#!/usr/bin/env python3
"""k8s_check.py — strict offline check of Kubernetes manifests against the API's own models
(Debian's python3-kubernetes): every field must exist in its object's schema, every value must
have the field's type, and every required field must be there (the models' own validation).

When the files hold h2steer's DaemonSet, the deployment's parts must also agree: the ClusterRole
grants exactly what the daemon asks the API server for (DAEMON_API_ACCESS), the DaemonSet runs
as the bound ServiceAccount with its token, NODE_NAME comes from spec.nodeName, and the config
it mounts enables the Kubernetes source and lists no services.

Usage: k8s_check.py FILE...   One line per problem on stdout; exit status 1 if any."""
import datetime
import re
import sys

import kubernetes.client as kc
import yaml
from kubernetes.client import ApiClient

# openapi type name -> what a YAML value of that type may be. `object` is IntOrString (ports,
# maxSurge, ...) in the objects we write.
PRIMITIVES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (int, str),
    "datetime": (str, datetime.datetime),
    "date": (str, datetime.date),
}


def model_for(api_version, kind):
    """apps/v1 DaemonSet -> V1DaemonSet; None when the models do not know it."""
    version = str(api_version).rsplit("/", 1)[-1]
    return getattr(kc, version[:1].upper() + version[1:] + str(kind), None)


def check(value, typ, path, problems):
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{path}[{i}]", problems)
        return
    m = re.fullmatch(r"dict\((\w+), (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(f"{path}: key {k!r} is not a string")
            check(v, m.group(2), f"{path}.{k}", problems)
        return
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ])
        if isinstance(value, bool) and typ != "bool":
            ok = False  # YAML's yes/no/true are not numbers or strings
        if not ok:
            problems.append(f"{path}: expected {typ}, got {type(value).__name__} {value!r}")
        return
    cls = getattr(kc, typ, None)
    if cls is None:
        problems.append(f"{path}: the models do not know type {typ}")
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a {typ} mapping, got {type(value).__name__}")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            problems.append(f"{path}.{k}: unknown field of {typ}")
            continue
        check(v, cls.openapi_types[by_json[k]], f"{path}.{k}", problems)


def check_document(doc, where):
    problems = []
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return [f"{where}: not a Kubernetes object (apiVersion and kind are required)"]
    cls = model_for(doc["apiVersion"], doc["kind"])
    if cls is None:
        return [f"{where}: unknown apiVersion/kind {doc['apiVersion']} {doc['kind']}"]
    name = doc.get("metadata", {}).get("name", "?")
    where = f"{where} {doc['kind']}/{name}"
    check(doc, cls.__name__, where, problems)
    if not problems:
        # The models' own checks: required fields, enumerations.
        try:
            ApiClient()._ApiClient__deserialize(doc, cls.__name__)
        except (ValueError, TypeError) as e:
            problems.append(f"{where}: {e}")
    return problems


# Every (API group, resource, verb) h2steerd's Kubernetes source uses, and where; the
# ClusterRole must grant these and nothing more. "" is the core group.
DAEMON_API_ACCESS = {
    # user/discovery/kube.c: every Service, cluster-wide (list, then watch from its
    # resourceVersion; relist on 410), through kube_informer.c.
    ("", "services", "list"),
    ("", "services", "watch"),
    # user/discovery/kube.c: the EndpointSlices of those Services, the same way.
    ("discovery.k8s.io", "endpointslices", "list"),
    ("discovery.k8s.io", "endpointslices", "watch"),
    # user/discovery/kube.c: GET /api/v1/nodes/$NODE_NAME, for its zone label.
    ("", "nodes", "get"),
}
# The DaemonSet whose deployment is checked, and the role its ServiceAccount must be bound to.
DAEMONSET = ("DaemonSet", "h2steerd")
CLUSTER_ROLE = "h2steer"
# Keys of `kubernetes:` that keep it in-cluster (the pod's own token, which the RBAC binds):
# api, token_file and ca_file would point the daemon at another identity.
IN_CLUSTER_KEYS = {"namespaces", "label_selector"}


def role_grants(role, where):
    """A ClusterRole's rules as (group, resource, verb) triples, and what cannot be one: a
    resourceNames or nonResourceURLs rule, an aggregationRule (its rules come from others)."""
    grants, problems = set(), []
    if role.get("aggregationRule"):
        problems.append(f"{where}: aggregationRule: the role would grant what others do")
    for i, rule in enumerate(role.get("rules") or []):
        for odd in ("resourceNames", "nonResourceURLs"):
            if rule.get(odd):
                problems.append(f"{where}.rules[{i}].{odd}: the daemon needs no such rule")
        for g in rule.get("apiGroups") or []:
            for r in rule.get("resources") or []:
                for v in rule.get("verbs") or []:
                    grants.add((g, r, v))
    return grants, problems


def show(triple):
    g, r, v = triple
    return f"{v} on {r}" + (f".{g}" if g else "")


def check_rbac(objs, account):
    """The ServiceAccount gets exactly DAEMON_API_ACCESS, from one ClusterRoleBinding."""
    role = objs.get(("ClusterRole", CLUSTER_ROLE))
    if role is None:
        return [f"ClusterRole/{CLUSTER_ROLE}: missing"]
    where = f"ClusterRole/{CLUSTER_ROLE}"
    grants, problems = role_grants(role, where)
    for t in sorted(DAEMON_API_ACCESS - grants):
        problems.append(f"{where}: does not grant {show(t)}, which the daemon uses")
    for t in sorted(grants - DAEMON_API_ACCESS):
        problems.append(f"{where}: grants {show(t)}, which the daemon never uses")
    bound = []
    for (kind, name), b in objs.items():
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        for s in b.get("subjects") or []:
            if (s.get("kind"), s.get("name"), s.get("namespace")) == ("ServiceAccount",) + account:
                bound.append((kind, name, b.get("roleRef") or {}))
    want = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE}
    if not any(kind == "ClusterRoleBinding" and ref == want for kind, _, ref in bound):
        problems.append(f"no ClusterRoleBinding binds ClusterRole/{CLUSTER_ROLE} to "
                        f"ServiceAccount {account[1]}/{account[0]}")
    for kind, name, ref in bound:
        if ref != want:
            problems.append(f"{kind}/{name}: binds ServiceAccount {account[1]}/{account[0]} to "
                            f"{ref.get('kind')}/{ref.get('name')}, more than {CLUSTER_ROLE}")
    return problems


def check_deployment(objs):
    """The DaemonSet, its ServiceAccount, RBAC and config agreeing with each other."""
    ds = objs[DAEMONSET]
    where = "DaemonSet/h2steerd"
    ns = ds["metadata"].get("namespace")
    pod = ds["spec"]["template"]["spec"]
    problems = []
    sa_name = pod.get("serviceAccountName")
    sa = objs.get(("ServiceAccount", sa_name))
    if sa is None or sa["metadata"].get("namespace") != ns:
        problems.append(f"{where}: serviceAccountName {sa_name!r} is no ServiceAccount of "
                        f"namespace {ns}")
    else:
        problems += check_rbac(objs, (sa_name, ns))
        if sa.get("automountServiceAccountToken") is False and \
                pod.get("automountServiceAccountToken") is not True:
            problems.append(f"ServiceAccount/{sa_name}: automountServiceAccountToken false")
    if pod.get("automountServiceAccountToken") is not True:
        problems.append(f"{where}: automountServiceAccountToken must be true (the in-cluster "
                        f"source reads the token)")
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c.get("env") or []}
    field = ((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
    if field.get("fieldPath") != "spec.nodeName":
        problems.append(f"{where}: NODE_NAME must come from the downward API's spec.nodeName")
    # The config file the daemon reads: --config=DIR/KEY, DIR the mount of a ConfigMap volume.
    config_arg = [a.split("=", 1)[1] for a in c.get("args") or [] if a.startswith("--config=")]
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    text = None
    if len(config_arg) == 1:
        d, key = config_arg[0].rsplit("/", 1)
        cm_name = (volumes.get(mounts.get(d)) or {}).get("configMap", {}).get("name")
        cm = objs.get(("ConfigMap", cm_name))
        text = ((cm or {}).get("data") or {}).get(key)
    if text is None:
        return problems + [f"{where}: --config names no key of a mounted ConfigMap"]
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return problems + [f"ConfigMap/{cm_name}: {key}: {e}"]
    if not isinstance(config, dict):
        return problems + [f"ConfigMap/{cm_name}: {key} is not a mapping"]
    if "services" in config:
        problems.append(f"ConfigMap/{cm_name}: {key} lists services: they come from the API")
    kube = config.get("kubernetes")
    if not isinstance(kube, dict):
        problems.append(f"ConfigMap/{cm_name}: {key} does not enable `kubernetes: {{}}`")
    elif set(kube) - IN_CLUSTER_KEYS:
        odd = sorted(set(kube) - IN_CLUSTER_KEYS)[0]
        problems.append(f"ConfigMap/{cm_name}: {key}: kubernetes.{odd}: the DaemonSet runs "
                        f"in-cluster, with its own ServiceAccount")
    return problems


def main(paths):
    problems = []
    objs = {}
    for path in paths:
        with open(path) as f:
            try:
                docs = list(yaml.safe_load_all(f))
            except yaml.YAMLError as e:
                problems.append(f"{path}: {e}")
                continue
        for i, doc in enumerate(d for d in docs if d is not None):
            found = check_document(doc, f"{path}#{i}")
            problems += found
            if not found:
                objs[(doc["kind"], doc["metadata"]["name"])] = doc
    if DAEMONSET in objs:
        problems += check_deployment(objs)
    for p in problems:
        print(p)
    return 1 if problems or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
