"""compose.yaml (one Qdrant server) and compose.cluster.yaml (three nodes) are well-formed Compose files
(a JSON-schema subset of the Compose specification: the keys they use, with their types) and say what the
docs promise: the same pinned Qdrant image, the API key required from the environment, ports published on
localhost only, one storage volume per node, and a cluster that one node starts and two others join."""
from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = ("compose.yaml", "compose.cluster.yaml")
API_KEY = re.compile(r"^\$\{QDRANT_API_KEY:\?[^}]+\}$")          # required: compose stops when it is unset

_STR_LIST = {"type": "array", "items": {"type": "string"}}
_ENV = {"oneOf": [{"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                  _STR_LIST]}
SCHEMA = {                                                       # subset of compose-spec.json, same key names
    "type": "object", "required": ["services"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "services": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object", "required": ["image"], "additionalProperties": False,
            "properties": {
                "image": {"type": "string"},
                "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                "command": {"oneOf": [{"type": "string"}, _STR_LIST]},
                "ports": _STR_LIST, "volumes": _STR_LIST, "environment": _ENV,
                "depends_on": {"oneOf": [_STR_LIST, {"type": "object"}]},
            }}},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
    },
}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


@pytest.mark.parametrize("name", FILES)
def test_compose_file_matches_the_schema(name):
    jsonschema.validate(load(name), SCHEMA)


@pytest.mark.parametrize("name", FILES)
def test_secure_defaults(name):
    doc = load(name)
    single_image = load("compose.yaml")["services"]["qdrant"]["image"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", single_image)        # pinned, not :latest
    for svc in doc["services"].values():
        assert svc["image"] == single_image
        assert API_KEY.match(svc["environment"]["QDRANT__SERVICE__API_KEY"])
        assert svc["ports"] and all(p.startswith("127.0.0.1:") for p in svc["ports"])
        mounts = [v.split(":") for v in svc["volumes"]]
        assert [m[1] for m in mounts] == ["/qdrant/storage"] and mounts[0][0] in doc["volumes"]


def test_cluster_has_three_nodes_one_bootstrap_and_own_volumes():
    nodes = load("compose.cluster.yaml")["services"]
    assert sorted(nodes) == ["qdrant-0", "qdrant-1", "qdrant-2"]
    for name, svc in nodes.items():
        assert svc["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert flag(command(svc), "--uri") == f"http://{name}:6335"        # each node names itself
    first = nodes["qdrant-0"]
    assert flag(command(first), "--bootstrap") is None
    for name in ("qdrant-1", "qdrant-2"):
        assert flag(command(nodes[name]), "--bootstrap") == "http://qdrant-0:6335"
        assert nodes[name]["depends_on"] == ["qdrant-0"]
    storage = [svc["volumes"][0].split(":")[0] for svc in nodes.values()]
    assert len(set(storage)) == 3                                             # no two nodes share a volume
    host_ports = [p.split(":")[1] for svc in nodes.values() for p in svc["ports"]]
    assert len(set(host_ports)) == len(host_ports) == 6


def test_cluster_file_tells_how_to_create_the_replicated_collection():
    text = (ROOT / "compose.cluster.yaml").read_text()
    assert "--shards 6 --replicas 2" in text and "docs/scale.md" in text


def test_schema_rejects_what_compose_rejects():
    bad = {"services": {"q": {"image": "qdrant/qdrant:v1.16.3", "ports": 6333}}}     # ports must be a list
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"services": {"q": {"image": "x", "comand": "typo"}}}, SCHEMA)
