"""The Helm chart for the central services (deploy/helm/plantmesh), checked offline: `helm lint
--strict` and `helm template` on the value sets in its ci/ folder, every rendered object against
the Kubernetes schemas, the rendered config files through the services' own loaders, and wrong
value files refused by the schema with a message that names the key."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from alerting.catalogue import load_catalogue
from alerting.incidents.policy import load_correlation
from alerting.lifecycle.policies import load_escalation
from ingest.config import load_ingest_config
from ingest.normalize.registry import AssetRegistry
from plantmesh.fleet import Fleet
from plantmesh.stack.helm_build import helm_build
from tests.support.helm_chart import (
    CHART,
    SERVICES,
    VALUE_SETS,
    WRONG_VALUES,
    component,
    config_argument,
    container,
    container_env,
    fake_secret,
    file_fields,
    helm_run,
    load_service_config,
    mounted_files,
    pod_env,
    rendered,
    secret_fields,
    services,
    template_args,
    undocumented_keys,
    validate,
    values_of,
    write_config_dir,
)

# The first test builds Helm when it is not cached yet (3.5-5 min on an empty Go cache).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

VALID = ["minimal", "production", "scaled"]


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm, built once per machine (GoInstall's file lock: parallel sessions wait for one)."""
    build = helm_build()
    if not build.binary.exists() and build.go() is None:
        pytest.skip(
            "Go not found (PATH or /usr/local/go/bin/go): cannot build Helm to check the chart"
        )
    binary, _ = build.ensure()
    return binary


@pytest.mark.parametrize("name", VALID)
def test_lint_strict_passes(helm: Path, name: str) -> None:
    result = helm_run(
        helm,
        "lint",
        "--strict",
        str(VALUE_SETS.parent),
        "-f",
        str(VALUE_SETS / f"{name}-values.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("name", VALID)
def test_every_object_is_valid_for_kubernetes(helm: Path, name: str) -> None:
    chart = rendered(helm, name)
    kinds = {o["kind"] for o in chart.objects}
    assert {"ConfigMap", "StatefulSet", "Deployment", "Service", "PodDisruptionBudget"} <= kinds
    for obj in chart.objects:
        validate(obj)  # raises, naming the field, when an object is not valid


def test_the_validation_would_catch_a_wrong_object(helm: Path) -> None:
    chart = rendered(helm, "minimal")
    broken = chart.named("Deployment", "writer")
    container(broken)["livenessProbe"]["httpGet"]["port"] = {"name": "metrics"}
    with pytest.raises(Exception, match=r"is not valid|is not of type"):
        validate(broken)


@pytest.mark.parametrize("name", VALID)
def test_rendered_configs_load_with_the_services_loaders(
    helm: Path, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = rendered(helm, name)
    values = values_of(name)
    loaded = {
        component(w): load_service_config(chart, w, tmp_path / component(w), monkeypatch)
        for w in services(chart)
    }
    expected = {"bridge", "writer", "alerting", "alarms"} | (
        {"incidents"} if values.get("incidents", {}).get("enabled") else set()
    )
    assert set(loaded) == expected
    for config in loaded.values():
        assert config.kafka.bootstrap == values["kafka"]["bootstrap"]
    assert loaded["writer"].influxdb.url == values["influxdb"]["url"]
    assert loaded["bridge"].mqtt.url == values["mqtt"]["url"]
    assert loaded["alarms"].api.host == "0.0.0.0"  # reachable from the Service
    files = chart.config_files()
    pod_env(monkeypatch, container_env(chart.named("Deployment", "alarms"), "alarms-0"))
    for key, loader in (
        ("escalation.yaml", load_escalation),
        ("registry.yaml", AssetRegistry.load),  # the writer's
        ("registry.yaml", Fleet.load),  # the alarm service's and the incident stage's
        ("correlation.yaml", load_correlation),
        ("issue-types.yaml", load_catalogue),
    ):
        if key in files:
            loader(tmp_path / "alarms" / key)
    if "issue-types.yaml" in files:  # the services read the chart's catalogue, not the default
        assert loaded["alerting"].catalogue == tmp_path / "alerting" / "issue-types.yaml"


def test_secured_connections_name_their_secret_files(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = rendered(helm, "production")
    bridge = load_service_config(
        chart, chart.named("StatefulSet", "bridge"), tmp_path / "b", monkeypatch
    )
    assert bridge.kafka.security_protocol == "SASL_SSL"
    assert bridge.kafka.username == "plantmesh-bridge"
    assert str(bridge.kafka.password_file) == "/etc/plantmesh/secrets/kafka/password"
    assert bridge.mqtt.tls
    assert bridge.mqtt.username == "bridge"
    assert str(bridge.bridge.gateways) == "/etc/plantmesh/gateways/gateways.yaml"
    writer = load_service_config(
        chart, chart.named("Deployment", "writer"), tmp_path / "w", monkeypatch
    )
    assert str(writer.influxdb.token_file) == "/etc/plantmesh/secrets/influxdb/token"
    alarms = load_service_config(
        chart, chart.named("Deployment", "alarms"), tmp_path / "a", monkeypatch
    )
    password = fake_secret("plantmesh-db-app", "password")
    assert alarms.database.url.get_secret_value() == (
        f"postgresql://app:{password}@plantmesh-db-rw.db.svc:5432/app?ssl=verify-full"
    )
    env = container_env(chart.named("Deployment", "alarms"), "alarms-0")
    assert env["PGSSLROOTCERT"] == "/etc/plantmesh/secrets/postgresql-ca/ca.crt"
    assert env["PLANTMESH_WEBHOOK_SECRET"] == fake_secret("plantmesh-hooks", "hmac")


@pytest.mark.parametrize("name", VALID)
def test_every_file_a_config_names_is_mounted(helm: Path, name: str) -> None:
    chart = rendered(helm, name)
    files = chart.config_files()
    for workload in services(chart):
        mounted = mounted_files(workload, files)
        config_path = PurePosixPath(config_argument(workload))
        assert str(config_path) in mounted
        named = [
            (f"{config_path.name}: {key}", value)
            for key, value in file_fields(yaml.safe_load(files[config_path.name]))
        ]
        for where, value in named:
            path = value if value.startswith("/") else str(config_path.parent / value)
            if path.startswith("/var/lib/plantmesh/"):
                continue  # written by the service (the alert log), on the state emptyDir
            assert path in mounted, f"{component(workload)}: {where} = {value} is not mounted"


@pytest.mark.parametrize("name", VALID)
def test_no_secret_value_is_rendered(helm: Path, name: str) -> None:
    chart = rendered(helm, name)
    assert not chart.of_kind("Secret")
    for filename, text in chart.config_files().items():
        for where, value in secret_fields(yaml.safe_load(text)):
            # Only a ${VAR} reference, filled in from a Secret through the pod's environment.
            assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", str(value)), f"{filename}: {where}"
    for workload in chart.workloads():
        for item in container(workload).get("env", []):
            if any(word in item["name"] for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert "secretKeyRef" in item.get("valueFrom", {}), item
            if item["name"] == "PLANTMESH_DATABASE_URL":
                assert "$(PLANTMESH_DATABASE_" in item["value"], item


def test_scaled_groups_are_shared_by_every_replica(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = rendered(helm, "scaled")
    values = values_of("scaled")
    for service in SERVICES:
        workload = chart.named("StatefulSet" if service == "bridge" else "Deployment", service)
        assert workload["spec"]["replicas"] == 3, service
    bridge = chart.named("StatefulSet", "bridge")
    write_config_dir(chart.config_files(), tmp_path)
    members = []
    for ordinal in range(bridge["spec"]["replicas"]):
        pod = f"{bridge['metadata']['name']}-{ordinal}"
        pod_env(monkeypatch, container_env(bridge, pod))
        config = load_ingest_config(tmp_path / "bridge.yaml")
        members.append((config.bridge_client_id, config.bridge.shared_group))
        assert config.bridge.leave_group_on_stop  # others in the group: a stop parks no share
    assert len({client_id for client_id, _ in members}) == 3  # one MQTT session each
    assert {group for _, group in members} == {values["bridge"]["sharedGroup"]}
    groups = {
        service: load_service_config(
            chart, chart.named("Deployment", service), tmp_path / service, monkeypatch
        )
        for service in ("writer", "alerting", "alarms", "incidents")
    }
    assert groups["writer"].writer.group_id == values["writer"]["groupId"]
    # The whole URL from CloudNativePG's `uri` key, the TLS mode appended by the chart.
    uri = fake_secret(values["postgresql"]["existingSecret"], "uri")
    assert groups["alarms"].database.url.get_secret_value() == f"{uri}?ssl=require"
    for service in ("alerting", "alarms", "incidents"):
        assert groups[service].group_id == values[service]["groupId"]


@pytest.mark.parametrize("name", VALID)
def test_probes_hit_the_ports_the_services_listen_on(
    helm: Path, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = rendered(helm, name)
    for workload in services(chart):
        service = component(workload)
        box = container(workload)
        if service in ("alerting", "incidents"):  # no HTTP endpoint to probe
            assert "livenessProbe" not in box
            continue
        config = load_service_config(chart, workload, tmp_path / service, monkeypatch)
        if service == "alarms":
            port, paths = config.api.port, {"/openapi.json", "/healthz"}
        else:
            address = getattr(config, service).metrics.address
            assert address is not None, f"{service}: metrics.listen unset, nothing to probe"
            port, paths = address[1], {"/metrics"}
        ports = {p["name"]: p["containerPort"] for p in box["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = box[probe]["httpGet"]
            assert ports[get["port"]] == port, f"{service} {probe}"
            assert get["path"] in paths


@pytest.mark.parametrize("name", VALID)
def test_every_pod_runs_locked_down(helm: Path, name: str) -> None:
    for workload in rendered(helm, name).workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        box = container(workload)["securityContext"]
        assert box["readOnlyRootFilesystem"] is True
        assert box["allowPrivilegeEscalation"] is False
        assert box["capabilities"] == {"drop": ["ALL"]}
        writable = {
            m["mountPath"] for m in container(workload)["volumeMounts"] if not m.get("readOnly")
        }
        assert "/tmp" in writable


def test_migrations_run_in_a_hook_job_or_at_start(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = rendered(helm, "production")
    (job,) = chart.of_kind("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["args"] == ["alerting", "db", "upgrade"]
    env = container_env(job, "migrate")
    alarms_env = container_env(chart.named("Deployment", "alarms"), "alarms-0")
    assert env["PLANTMESH_DATABASE_URL"] == alarms_env["PLANTMESH_DATABASE_URL"]
    alarms = load_service_config(
        chart, chart.named("Deployment", "alarms"), tmp_path / "j", monkeypatch
    )
    assert alarms.migrate is False  # replicas never race to migrate
    at_start = rendered(helm, "production", **{"alarms.migrations": "start"})
    assert not at_start.of_kind("Job")
    alarms = load_service_config(
        at_start, at_start.named("Deployment", "alarms"), tmp_path / "s", monkeypatch
    )
    assert alarms.migrate is True


def test_monitoring_and_ingress_are_switchable(helm: Path) -> None:
    minimal = rendered(helm, "minimal")
    assert not minimal.of_kind("ServiceMonitor")
    assert not minimal.of_kind("Ingress")
    chart = rendered(helm, "scaled")
    (monitor,) = chart.of_kind("ServiceMonitor")
    port = monitor["spec"]["endpoints"][0]["port"]
    chosen = monitor["spec"]["selector"]["matchExpressions"][0]["values"]
    scraped = [s for s in chart.of_kind("Service") if component(s) in chosen]
    assert len(scraped) == 2
    for service in scraped:
        assert port in {p["name"] for p in service["spec"]["ports"]}
    (ingress,) = chart.of_kind("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = chart.named("Service", "alarms")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    # Behind the Ingress the console's origin is https: uvicorn must believe X-Forwarded-Proto.
    assert container_env(chart.named("Deployment", "alarms"), "a")["FORWARDED_ALLOW_IPS"] == "*"


def test_disruption_budgets_select_their_workloads(helm: Path) -> None:
    chart = rendered(helm, "scaled")
    budgets = {component(b): b for b in chart.of_kind("PodDisruptionBudget")}
    assert set(budgets) == set(SERVICES)
    for workload in services(chart):
        selector = budgets[component(workload)]["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


WRONG = {
    "wrong-types": [
        "at '/bridge/replicas': minimum: got 0, want 1",
        "at '/writer/replicas': got string, want integer",
        "at '/kafka': additional properties 'password' not allowed",
        "at '/kafka/securityProtocol': value must be one of",
        "at '/alerting': additional properties 'replica' not allowed",
    ],
    "wrong-sasl-without-credentials": ["at '/writer': missing property 'kafkaCredentials'"],
    "wrong-missing-servers": [
        "at '/mqtt/url': minLength: got 0, want 1",
        "at '/postgresql/existingSecret': minLength: got 0, want 1",
    ],
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_values_are_refused_with_the_key_named(helm: Path, name: str) -> None:
    result = helm_run(helm, *template_args([WRONG_VALUES / f"{name}.yaml"]))
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    for message in WRONG[name]:
        assert message in result.stderr


def test_the_chart_defaults_alone_are_refused(helm: Path) -> None:
    result = helm_run(helm, *template_args([]))
    assert result.returncode != 0
    assert "at '/kafka/bootstrap': minLength: got 0, want 1" in result.stderr


def test_the_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = list(undocumented_keys(values, (CHART / "README.md").read_text()))
    assert not missing, f"values without a row in deploy/helm/plantmesh/README.md: {missing}"


def test_notes_say_where_the_console_is(helm: Path) -> None:
    def notes(name: str) -> str:
        args = ["install", "plant", str(CHART), "--dry-run=client"]
        result = helm_run(helm, *args, "-f", str(VALUE_SETS / f"{name}-values.yaml"))
        assert result.returncode == 0, result.stderr
        return result.stdout.split("NOTES:", 1)[1]

    scaled = notes("scaled")
    assert "https://alarms.example.com/console" in scaled
    assert "3 x StatefulSet plant-plantmesh-bridge" in scaled
    assert "$share/plantmesh-bridge-eu/" in scaled
    minimal = notes("minimal")
    assert "port-forward svc/plant-plantmesh-alarms 8600" in minimal
    assert "plantmesh alerting token create" in minimal
