"""deploy/nats/values.yaml: only keys the official NATS chart has, a durable 3-node JetStream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parent.parent
VALUES = ROOT / "deploy" / "nats" / "values.yaml"
CHART_DEFAULTS = Path(__file__).parent / "data" / "k8s" / "nats-chart-values.yaml"  # PROVENANCE.md


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def unknown_keys(values: Any, defaults: Any, path: str = "") -> list[str]:
    """Keys set in `values` that the chart does not have; free-form maps (`{}`) take anything."""
    if not isinstance(values, dict) or not isinstance(defaults, dict) or not defaults:
        return []
    found = []
    for key, value in values.items():
        if key not in defaults:
            found.append(f"{path}{key}")
        else:
            found += unknown_keys(value, defaults[key], f"{path}{key}.")
    return found


def test_nats_values_use_only_chart_keys_and_make_a_durable_three_node_cluster() -> None:
    values, defaults = load(VALUES), load(CHART_DEFAULTS)
    assert unknown_keys(values, defaults) == []
    typo = {"config": {"jetstream": {"fileStorage": {"enabled": True}}, "clusters": {}}}
    assert unknown_keys(typo, defaults) == ["config.jetstream.fileStorage", "config.clusters"]
    assert values["config"]["cluster"] == values["config"]["cluster"] | {
        "enabled": True,
        "replicas": 3,
    }
    jetstream = values["config"]["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["memoryStore"]["enabled"] is False
    assert jetstream["merge"]["sync_interval"] == "always"


def test_promoter_replicates_on_as_many_servers_as_the_cluster_has() -> None:
    """R3 streams need 3 servers; more replicas than servers cannot be created at all."""
    manifests = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    docs = [doc for path in manifests for doc in load_all(path)]
    pods = [d["spec"]["template"]["spec"] for d in docs if d and d["kind"] == "Deployment"]
    found = {c["name"]: c for spec in pods for c in spec["containers"]}
    assert set(found) == {"worker", "gateway"}  # both create streams or KV buckets
    for container in found.values():
        replicas = {e["name"]: e.get("value") for e in container["env"]}["PROMOTER_NATS_REPLICAS"]
        assert int(replicas) == load(VALUES)["config"]["cluster"]["replicas"]
