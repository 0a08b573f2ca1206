"""Validates every external-secrets.io object of a YAML stream (stdin) against the
openAPIV3Schema of the served version of its CRD (tests/fixtures/interop/crds/external-secrets).

Stricter than the API server in one way: where a schema lists `properties` and neither allows
additional ones nor preserves unknown fields, an unknown field is an error (the API server
would prune it silently, which is how a misspelt field goes unnoticed). Prints one line per
problem and exits 1 when there is any; prints the number of objects checked otherwise.
"""
import pathlib
import sys

import jsonschema
import yaml

CRDS = pathlib.Path(__file__).resolve().parent.parent / "fixtures/interop/crds/external-secrets"


def strict(schema):
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def schemas():
    out = {}
    for f in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(f.read_text())
        kind = crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                s = strict(v["schema"]["openAPIV3Schema"])
                # metadata is the API server's, not the CRD's.
                s.setdefault("properties", {})["metadata"] = {"type": "object"}
                out[(f"external-secrets.io/{v['name']}", kind)] = s
    return out


def main():
    known = schemas()
    problems, checked = [], 0
    for doc in yaml.safe_load_all(sys.stdin):
        if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("external-secrets.io/"):
            continue
        key = (doc["apiVersion"], doc.get("kind"))
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if key not in known:
            problems.append(f"{name}: no served CRD version for {key}")
            continue
        checked += 1
        for e in jsonschema.Draft7Validator(known[key]).iter_errors(doc):
            problems.append(f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{checked} objects valid")


main()
