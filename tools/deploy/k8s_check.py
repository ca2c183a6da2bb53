#!/usr/bin/env python3
"""k8s_check.py — strict offline check of Kubernetes manifests against the API's own models
(Debian's python3-kubernetes): every field must exist in its object's schema, every value must
have the field's type, and every required field must be there (the models' own validation).

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


def main(paths):
    problems = []
    for path in paths:
        with open(path) as f:
            try:
                docs = list(yaml.safe_load_all(f))
            except yaml.YAMLError as e:
                problems.append(f"{path}: {e}")
                continue
        for i, doc in enumerate(d for d in docs if d is not None):
            problems += check_document(doc, f"{path}#{i}")
    for p in problems:
        print(p)
    return 1 if problems or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
