"""Builders of Kubernetes objects shaped as the real API server serves them (what
`kubectl get -o json` prints), and validate(), which checks a dict against the models of the
Kubernetes Python client so that a misspelled or invented field is refused, not silently served.

The server fills metadata.uid, resourceVersion and creationTimestamp when it stores an object
(tests/kube/apiserver.py); the builders leave them out, as a manifest would.
"""
import copy
import json
import random
import string
import threading
import uuid
import zlib

# Python's client models are generated from one Kubernetes release (Debian's python3-kubernetes
# 22.6 is Kubernetes 1.22). Fields added to the API after it are dropped by its models, so
# validate() checks them here by hand, each against its documented shape:
#   Service spec.trafficDistribution (string; beta 1.30, GA 1.31: "PreferClose", and since
#     1.33 "PreferSameZone" / "PreferSameNode")
#   EndpointSlice endpoints[].hints.forNodes (list of {"name": node}; 1.33, for PreferSameNode)
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")

MODELS = {
    "Service": "V1Service",
    "ServiceList": "V1ServiceList",
    "EndpointSlice": "V1EndpointSlice",
    "EndpointSliceList": "V1EndpointSliceList",
    "Node": "V1Node",
    "NodeList": "V1NodeList",
    "Status": "V1Status",
}

MANAGED_BY = "endpointslice-controller.k8s.io"


def _family(ip):
    return "IPv6" if ":" in ip else "IPv4"


def _uid():
    return str(uuid.uuid4())


def _meta(name, namespace=None, labels=None, annotations=None):
    meta = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    # The server omits empty maps (omitempty), so a builder does too.
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


_DEFAULT = object()


def service(ns, name, cluster_ips=("10.96.0.10",), ports=None, annotations=None, labels=None,
            traffic_distribution=None, type="ClusterIP", selector=_DEFAULT,
            ip_family_policy=None):
    """A v1 Service. cluster_ips[0] is spec.clusterIP; ["None"] makes it headless.
    ports: dicts such as {"name": "grpc", "port": 50051, "targetPort": 8080, "appProtocol":
    "grpc"}; protocol defaults to TCP and targetPort to port, as the server defaults them."""
    cluster_ips = list(cluster_ips)
    if ports is None:
        ports = [{"name": "grpc", "port": 50051, "targetPort": 8080}]
    out_ports = []
    for i, p in enumerate(ports):
        q = {}
        if "name" in p:
            q["name"] = p["name"]
        if "appProtocol" in p:
            q["appProtocol"] = p["appProtocol"]
        q["protocol"] = p.get("protocol", "TCP")
        q["port"] = p["port"]
        q["targetPort"] = p.get("targetPort", p["port"])
        if type in ("NodePort", "LoadBalancer"):
            # A stable port of the 30000-32767 range the server allocates from.
            stable = zlib.crc32(f"{ns}/{name}/{i}".encode()) % 2000
            q["nodePort"] = p.get("nodePort", 30000 + stable)
        out_ports.append(q)
    # A headless Service still gets an IP family (the cluster's primary one).
    families = ["IPv4"] if cluster_ips == ["None"] else [_family(ip) for ip in cluster_ips]
    if ip_family_policy is None:
        ip_family_policy = "SingleStack" if len(cluster_ips) == 1 else "PreferDualStack"
    spec = {"clusterIP": cluster_ips[0], "clusterIPs": cluster_ips,
            "internalTrafficPolicy": "Cluster", "ipFamilies": families,
            "ipFamilyPolicy": ip_family_policy, "ports": out_ports}
    if selector is _DEFAULT:
        selector = {"app": name}
    if selector:
        spec["selector"] = dict(selector)
    spec["sessionAffinity"] = "None"
    if traffic_distribution is not None:
        spec["trafficDistribution"] = traffic_distribution
    spec["type"] = type
    if type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = "Cluster"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(name, ns, labels, annotations),
            "spec": spec, "status": {"loadBalancer": {}}}


def endpoint(addresses=("10.0.0.1",), ready=True, serving=True, terminating=False,
             node_name=None, zone=None, hints_zones=None, hints_nodes=None, target_pod=None,
             hostname=None):
    """One endpoint of an EndpointSlice. target_pod: "namespace/name" (or a (ns, name) pair)
    of the Pod behind it. Absent fields are omitted, as the server omits them."""
    ep = {"addresses": list(addresses),
          "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if hostname is not None:
        ep["hostname"] = hostname
    if hints_zones is not None or hints_nodes is not None:
        hints = {}
        if hints_zones is not None:
            hints["forZones"] = [{"name": z} for z in hints_zones]
        if hints_nodes is not None:
            hints["forNodes"] = [{"name": n} for n in hints_nodes]
        ep["hints"] = hints
    if node_name is not None:
        ep["nodeName"] = node_name
    if target_pod is not None:
        pns, pname = target_pod.split("/", 1) if isinstance(target_pod, str) else target_pod
        ep["targetRef"] = {"kind": "Pod", "name": pname, "namespace": pns, "uid": _uid()}
    if zone is not None:
        ep["zone"] = zone
    return ep


def endpoint_slice(ns, service_name, name=None, address_type="IPv4", ports=None, endpoints=None,
                   service_uid=None, labels=None):
    """A discovery.k8s.io/v1 EndpointSlice as the EndpointSlice controller writes it: generated
    name, the service-name and managed-by labels, an ownerReference to the Service (give
    service_uid, the Service's metadata.uid, to make it point at a stored one)."""
    if name is None:
        name = service_name + "-" + "".join(random.choice(string.ascii_lowercase)
                                            for _ in range(5))
    if ports is None:
        ports = [{"name": "grpc", "port": 8080, "protocol": "TCP"}]
    all_labels = {"endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                  "kubernetes.io/service-name": service_name}
    all_labels.update(labels or {})
    meta = _meta(name, ns, all_labels)
    meta["generateName"] = service_name + "-"
    meta["ownerReferences"] = [{"apiVersion": "v1", "blockOwnerDeletion": True,
                                "controller": True, "kind": "Service", "name": service_name,
                                "uid": service_uid or _uid()}]
    eps = list(endpoints) if endpoints is not None else [endpoint()]
    out_ports = []
    for p in ports:
        q = dict(p)
        q.setdefault("protocol", "TCP")
        out_ports.append(q)
    # The real server stores an empty list as nil and serves it as null (the field has no
    # omitempty): a Service with no ready Pods has "endpoints": null, so clients must take it.
    return {"addressType": address_type, "apiVersion": "discovery.k8s.io/v1",
            "endpoints": eps or None, "kind": "EndpointSlice", "metadata": meta,
            "ports": out_ports}


def node(name, zone=None, region=None, internal_ip="192.168.0.10", pod_cidr="10.244.0.0/24",
         ready=True, labels=None):
    """A v1 Node as kubelet registers it: the well-known labels (hostname, os, arch and, given,
    topology zone/region), addresses, a Ready condition and nodeInfo."""
    all_labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                  "kubernetes.io/os": "linux"}
    if region is not None:
        all_labels["topology.kubernetes.io/region"] = region
    if zone is not None:
        all_labels["topology.kubernetes.io/zone"] = zone
    all_labels.update(labels or {})
    meta = _meta(name, None, all_labels,
                 {"node.alpha.kubernetes.io/ttl": "0",
                  "volumes.kubernetes.io/controller-managed-attach-detach": "true"})
    stamp = "2026-01-01T00:00:00Z"
    cond = {"lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
            "message": "kubelet is posting ready status" if ready else "kubelet stopped posting",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "status": "True" if ready else "Unknown", "type": "Ready"}
    resources = {"cpu": "2", "ephemeral-storage": "20Gi", "memory": "4Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta,
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
            "status": {"addresses": [{"address": internal_ip, "type": "InternalIP"},
                                     {"address": name, "type": "Hostname"}],
                       "allocatable": dict(resources), "capacity": dict(resources),
                       "conditions": [cond],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                       "nodeInfo": {"architecture": "amd64", "bootID": _uid(),
                                    "containerRuntimeVersion": "containerd://1.7.22",
                                    "kernelVersion": "6.1.0-27-amd64",
                                    "kubeProxyVersion": "v1.31.0", "kubeletVersion": "v1.31.0",
                                    "machineID": uuid.uuid4().hex,
                                    "operatingSystem": "linux",
                                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "systemUUID": _uid()}}}


def status(code, reason, message, details=None):
    """A v1 Status, the body of every error the server returns (and of a watch ERROR event)."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


# ---- validation against the client's models ----

class _Response:
    """What ApiClient.deserialize reads: an object with the JSON body in .data."""

    def __init__(self, obj):
        self.data = json.dumps(obj)


_client = None
_client_lock = threading.Lock()


def _api_client():
    global _client
    with _client_lock:
        if _client is None:
            import kubernetes.client  # noqa: imported late: only validation needs it
            _client = kubernetes.client.ApiClient()
        return _client


def _paths(value, prefix=""):
    """Every key path of a JSON value: "spec.ports[0].port"."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= _paths(v, p)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= _paths(v, f"{prefix}[{i}]")
    return out


def _leaves(value, prefix=""):
    """{key path: value} of every scalar in a JSON value."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items()
                for k, v in _leaves(sub, f"{prefix}.{key}" if prefix else key).items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value)
                for k, v in _leaves(sub, f"{prefix}[{i}]").items()}
    return {prefix: value}


def _same(a, b):
    """The same scalar, of the same JSON type; a timestamp may come back in another format."""
    if type(a) is type(b) and a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        import dateutil.parser   # the client's own dependency, for its datetime fields
        try:
            return dateutil.parser.isoparse(a) == dateutil.parser.isoparse(b)
        except ValueError:
            return False
    return False


def _newer_fields(kind, obj):
    """Check and take out the fields newer than the models (see the top of this file)."""
    items = obj.get("items", []) if kind.endswith("List") else [obj]
    base = kind[:-4] if kind.endswith("List") else kind
    for it in items:
        if base == "Service":
            td = it.get("spec", {}).pop("trafficDistribution", None)
            if td is not None and td not in TRAFFIC_DISTRIBUTIONS:
                raise ValueError(f"Service spec.trafficDistribution: unknown value {td!r}")
        if base == "EndpointSlice":
            for i, ep in enumerate(it.get("endpoints") or []):
                hints = ep.get("hints")
                if not isinstance(hints, dict) or "forNodes" not in hints:
                    continue
                fn = hints.pop("forNodes")
                if not isinstance(fn, list) or not all(
                        isinstance(n, dict) and set(n) == {"name"} and isinstance(n["name"], str)
                        for n in fn):
                    raise ValueError(f"endpoints[{i}].hints.forNodes: want [{{name: node}}]")
            # The client's model refuses null endpoints (required), which the real server
            # serves for an empty slice (see endpoint_slice()): check the rest as if empty.
            if "endpoints" in it and it["endpoints"] is None:
                it["endpoints"] = []


def validate(obj):
    """Raise ValueError unless obj is a real-shaped object of a kind in MODELS: the client's
    model must take it (required fields present, types right) and give back every key path."""
    kind = obj.get("kind")
    if kind not in MODELS:
        raise ValueError(f"validate: unknown kind {kind!r}")
    trimmed = copy.deepcopy(obj)
    _newer_fields(kind, trimmed)
    client = _api_client()
    try:
        model = client.deserialize(_Response(trimmed), MODELS[kind])
    except Exception as e:  # the models raise ValueError, dateutil and ApiException others
        raise ValueError(f"validate {kind}: {e}") from e
    back = client.sanitize_for_serialization(model)
    lost = _paths(trimmed) - _paths(back)
    if lost:
        raise ValueError(f"validate {kind}: unknown fields {sorted(lost)}")
    # A field of the wrong type comes back changed (a string where a list goes, as its
    # characters; "8080" where an integer goes, as 8080).
    want, got = _leaves(trimmed), _leaves(back)
    wrong = sorted(p for p in set(want) | set(got)
                   if p not in want or p not in got or not _same(want[p], got[p]))
    if wrong:
        raise ValueError(f"validate {kind}: wrong types at {wrong}")
    return obj
