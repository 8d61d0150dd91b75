"""The Helm chart (deploy/helm/plantmesh) rendered offline: `helm template` into objects, each
checked against the Kubernetes schemas of `kubernetes-validate`, and a pod's config files and
environment played back the way kubelet would give them to the container, so the services' own
loaders can read them."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from alerting.alarm_service.config import load_alarm_config
from alerting.config import load_alerting_config
from alerting.incidents.stage_config import load_incidents_config
from ingest.config import load_ingest_config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "plantmesh"
VALUE_SETS = CHART / "ci"
WRONG_VALUES = ROOT / "tests" / "integration" / "helm_values"
KUBERNETES = "1.33.0"
"""A version kubernetes-validate ships schemas for, inside the chart's kubeVersion range."""
RELEASE = "plant"

Obj = dict[str, Any]

# The Prometheus Operator's CRD is not among the Kubernetes schemas: the fields the chart sets,
# as the CRD types them (monitoring.coreos.com/v1 ServiceMonitor).
SERVICE_MONITOR_SCHEMA: Obj = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def template_args(values: list[Path], sets: Mapping[str, str] | None = None) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--kube-version", KUBERNETES]
    for path in values:
        args += ["-f", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def render(helm: Path, values: list[Path], sets: Mapping[str, str] | None = None) -> list[Obj]:
    result = helm_run(helm, *template_args(values, sets))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(obj: Obj) -> None:
    """Raise (jsonschema's ValidationError) when `obj` is not a valid object of its kind."""
    if obj["kind"] == "ServiceMonitor":
        jsonschema.validate(obj, SERVICE_MONITOR_SCHEMA)
    else:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@dataclass(frozen=True)
class Rendered:
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, suffix: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(f"-{suffix}")]
        assert len(found) == 1, f"{kind} *-{suffix}: found {len(found)}"
        return found[0]

    def workloads(self) -> list[Obj]:
        return [o for o in self.objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]

    def config_files(self) -> dict[str, str]:
        (config,) = self.of_kind("ConfigMap")
        data: dict[str, str] = config["data"]
        return data


def component(workload: Obj) -> str:
    name: str = workload["metadata"]["labels"]["app.kubernetes.io/component"]
    return name


def container(workload: Obj) -> Obj:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    result: Obj = only
    return result


def fake_secret(secret: str, key: str) -> str:
    """What a Secret's key holds in these tests: recognisable wherever it turns up. A `uri`
    key holds a whole database URL, as CloudNativePG's application Secret does."""
    if key == "uri":
        return f"postgresql://app:SECRET-{secret}-password@{secret}-rw:5432/app"
    return f"SECRET-{secret}-{key}"


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(workload: Obj, pod_name: str) -> dict[str, str]:
    """The container's environment as kubelet makes it: literal values with $(VAR) expanded
    from the variables before them, the pod's name, the Secrets' keys (fake values)."""
    env: dict[str, str] = {}
    for item in container(workload).get("env", []):
        if "value" in item:
            env[item["name"]] = _REFERENCE.sub(
                lambda m: env.get(m.group(1), m.group(0)), item["value"]
            )
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = pod_name
        else:
            ref = source["secretKeyRef"]
            env[item["name"]] = fake_secret(ref["name"], ref["key"])
    return env


def mounted_files(workload: Obj, config_files: Mapping[str, str]) -> dict[str, str]:
    """Every file the pod's volumes put into the container, by absolute path, and what it
    comes from (a ConfigMap key or `secret/key`)."""
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files: dict[str, str] = {}
    for mount in container(workload).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        base = PurePosixPath(mount["mountPath"])
        for path, origin in _volume_files(volume, config_files):
            files[str(base / path)] = origin
    return files


def _volume_files(volume: Obj, config_files: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    if "configMap" in volume:
        items = volume["configMap"].get("items")
        if items is None:  # the chart's own ConfigMap: every key a file
            yield from ((key, f"configmap/{key}") for key in config_files)
        else:
            name = volume["configMap"]["name"]
            yield from ((i["path"], f"{name}/{i['key']}") for i in items)
    for source in volume.get("projected", {}).get("sources", []):
        secret = source["secret"]
        yield from ((i["path"], f"{secret['name']}/{i['key']}") for i in secret["items"])


def write_config_dir(config_files: Mapping[str, str], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in config_files.items():
        (directory / name).write_text(text)


def config_argument(workload: Obj) -> str:
    args: list[str] = container(workload)["args"]
    return args[args.index("--config") + 1]


def file_fields(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(key path, value) of every config key that names a file."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            named_file = key.endswith("_file") or key in (
                "gateways",
                "registry",
                "escalation",
                "catalogue",
                "correlation",
            )
            if named_file and isinstance(value, str):
                yield here, value
            yield from file_fields(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from file_fields(value, f"{where}[{index}]")


def secret_fields(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) of every config key that would hold a secret itself."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key in ("password", "token", "secret") or (key == "url" and "@" in str(value)):
                yield here, value
            yield from secret_fields(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from secret_fields(value, f"{where}[{index}]")


LOADERS: dict[str, Callable[[Path], Any]] = {
    "bridge": load_ingest_config,
    "writer": load_ingest_config,
    "alerting": load_alerting_config,
    "alarms": load_alarm_config,
    "incidents": load_incidents_config,
}


def values_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((VALUE_SETS / f"{name}-values.yaml").read_text())
    return data


def rendered(helm: Path, name: str, **sets: str) -> Rendered:
    """A value set of ci/ rendered (`sets`: --set overrides)."""
    return Rendered(render(helm, [VALUE_SETS / f"{name}-values.yaml"], sets))


def services(chart: Rendered) -> list[dict[str, Any]]:
    return [w for w in chart.workloads() if w["kind"] != "Job"]


def pod_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Only what the pod has: the local stack's variables would fill in defaults."""
    for name in list(os.environ):
        if name.startswith("PLANTMESH_") or name == "PGSSLROOTCERT":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def load_service_config(
    chart: Rendered, workload: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The workload's config file, loaded by its service's loader with the pod's env."""
    files = chart.config_files()
    write_config_dir(files, tmp)
    pod_env(monkeypatch, container_env(workload, f"{workload['metadata']['name']}-0"))
    name = PurePosixPath(config_argument(workload)).name
    return LOADERS[component(workload)](tmp / name)


SERVICES = ("bridge", "writer", "alerting", "alarms", "incidents")


def undocumented_keys(values: Mapping[str, Any], readme: str, where: str = "") -> Iterator[str]:
    """The keys of `values` the README's tables do not name: a key is documented as
    `key.path` or, for a service's own keys, as `<service>.key`; a mapping whose own path is
    documented needs no row per key inside it."""
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        head, _, rest = path.partition(".")
        generic = f"<service>.{rest}" if head in SERVICES and rest else None
        if f"`{path}`" in readme or (generic and f"`{generic}`" in readme):
            continue
        if isinstance(value, dict) and value:
            yield from undocumented_keys(value, readme, path)
        else:
            yield path
