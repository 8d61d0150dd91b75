"""The container images (deploy/images) and the one-site compose file (deploy/compose), checked
without a container engine: Compose's own `config`, the Dockerfiles read in Python, and every
config file the services mount loaded with the project's loaders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alerting.alarm_service.config import load_alarm_config
from alerting.config import load_alerting_config
from alerting.lifecycle.policies import load_escalation
from ingest.config import load_ingest_config
from plantmesh.cli import build_parser
from plantmesh.identities import load_grants
from plantmesh.stack.credentials import Gateway, render_acl
from tests.support.compose import (
    COMPOSE_DIR,
    EXAMPLE_ENV,
    MissingVariableError,
    bind_source,
    compose_config,
    load_compose,
    read_env_file,
)
from tests.support.dockerfiles import (
    DockerIgnore,
    Stage,
    copy_map,
    image_path,
    parse_dockerfile,
)

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "deploy" / "images"
SERVICE_USER = "10001"
# The compose file's plantmesh services and the command each runs.
ROLES = {
    "bridge": "ingest bridge",
    "writer": "ingest writer",
    "alerting": "alerting run",
    "alarms": "alerting alarms",
}
GATEWAYS = ["gw-press-1:plant-a", "gw-mill-2:plant-b"]
SECRET_REF = re.compile(r"/run/secrets/([A-Za-z0-9_.-]+)")


def _stages(name: str) -> list[Stage]:
    return parse_dockerfile((IMAGES / f"{name}.Dockerfile").read_text())


def _extras(name: str) -> set[str]:
    """Every extra a pip command of the Dockerfile names for the project (`.[x]`, `plantmesh[x]`)."""
    found: set[str] = set()
    for stage in _stages(name):
        for run in stage.all("RUN"):
            for group in re.findall(r"(?:\.|plantmesh)\[([^\]]+)\]", run.args):
                found |= {extra.strip() for extra in group.split(",")}
    return found


# --- the Dockerfiles --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["edge", "central"])
def test_the_image_is_multi_stage_and_runs_as_its_own_user(name: str) -> None:
    stages = _stages(name)
    assert len(stages) >= 2, "wheels are built in a builder stage, not in the image"
    builder, final = stages[0], stages[-1]
    assert builder.name == "builder"
    wheels = [r.args for r in builder.all("RUN") if "pip wheel" in r.args]
    assert wheels, "the builder makes wheels"
    # No compiler in a slim image: a missing wheel must fail the build, not half-compile.
    assert all("--only-binary=:all:" in w for w in wheels)
    # The final stage takes the builder's wheels; the sources stay in the builder.
    taken = [i for i in final.instructions if "builder" in i.flags().get("from", "")]
    taken += [r for r in final.all("RUN") if "from=builder" in r.flags().get("mount", "")]
    assert taken, "the final stage installs the builder's wheels"
    assert copy_map(final, REPO) == {}
    # Python 3.11 (the wheels' cp311 tags), slim, the same image in both stages.
    assert {s.base for s in stages} == {"python:3.11-slim-bookworm"}
    user = final.last("USER")
    assert user is not None
    assert user.operands()[0].split(":")[0] == SERVICE_USER
    entrypoint = final.last("ENTRYPOINT")
    assert entrypoint is not None
    assert entrypoint.words() == ["plantmesh"]
    # Each role's endpoint depends on its config: healthchecks live in compose.yaml.
    assert final.all("HEALTHCHECK") == []


def test_the_edge_image_has_the_edge_extra_only() -> None:
    assert _extras("edge") == {"edge"}
    final = _stages("edge")[-1]
    cmd = final.last("CMD")
    assert cmd is not None
    assert cmd.words() == ["agent", "run", "--config", "/etc/plantmesh/agent.yaml"]
    volume = final.last("VOLUME")
    assert volume is not None
    assert volume.words() == ["/var/lib/plantmesh"]
    env = " ".join(i.args for i in final.all("ENV"))
    assert "STATE_DIRECTORY=/var/lib/plantmesh" in env, "the buffer goes into the volume"


def test_the_central_image_has_the_service_extras_and_no_edge_ones() -> None:
    extras = _extras("central")
    assert {"ingest", "alerting"} <= extras
    assert not extras & {"edge", "sim", "dev"}


@pytest.mark.parametrize("name", ["edge", "central"])
def test_every_copy_source_is_in_the_build_context(name: str) -> None:
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    builder = _stages(name)[0]
    mapping = copy_map(builder, REPO)
    assert mapping, "the builder copies the sources"
    for source in mapping:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not ignore.excludes(source), f"COPY {source}: .dockerignore leaves it out"
    for required in ("pyproject.toml", "README.md", "plantmesh", "edge_agent"):
        assert required in mapping, f"{required} is needed to build the wheel"
    # Links inside copied directories (alerting/issue-types.yaml) must still resolve in the
    # image, or the wheel silently lacks the file.
    for source in [s for s in mapping if (REPO / s).is_dir()]:
        for link in sorted(p for p in (REPO / source).rglob("*") if p.is_symlink()):
            rel = link.relative_to(REPO).as_posix()
            if ignore.excludes(rel):
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(rel), os.readlink(link)))
            at = image_path(mapping, rel)
            assert at is not None
            expected = os.path.normpath(os.path.join(os.path.dirname(at), os.readlink(link)))
            assert image_path(mapping, target) == expected, f"{rel} -> {target} is not copied"
            assert not ignore.excludes(target), f"{target} (linked from {rel}) is ignored"


def test_the_dockerignore_keeps_local_state_out() -> None:
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    for path in (".venv/bin/python", ".git/HEAD", "deploy/compose/secrets/postgres_password"):
        assert ignore.excludes(path), path
    assert ignore.excludes("plantmesh/__pycache__/cli.cpython-311.pyc")
    assert not ignore.excludes("plantmesh/cli.py")
    assert not ignore.excludes("deploy/alerting/issue-types.yaml")


# --- compose.yaml -----------------------------------------------------------------------------
def _example_env() -> dict[str, str]:
    return read_env_file(EXAMPLE_ENV)


def _services() -> dict[str, Any]:
    services = load_compose(_example_env())["services"]
    assert isinstance(services, dict)
    return services


def _compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    result = compose_config(env_file)
    if result is None:
        pytest.skip(
            "neither docker-compose nor the docker compose plugin is installed "
            "(apt-get install docker-compose; deploy/run-tests.sh does it as root)"
        )
    return result


def test_compose_accepts_the_file_with_the_example_env() -> None:
    result = _compose_config(EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    for service in ("mosquitto", "kafka", "influxdb", "postgres", *ROLES):
        assert f"\n  {service}:\n" in rendered, service
    assert "plantmesh-central:0.1.0" in rendered  # the tag from the example env


def test_the_file_names_what_a_site_must_set() -> None:
    # The same refusal in Python, so it is checked where no Compose is installed too.
    with pytest.raises(MissingVariableError, match=r"in \.env"):
        load_compose({})
    required = {"PLANTMESH_INFLUX_ORG", "PLANTMESH_KAFKA_CLUSTER_ID", "PLANTMESH_WEBHOOK_URL"}
    assert required <= set(_example_env())


def test_compose_refuses_to_render_without_the_site_settings(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose_config(empty)
    assert result.returncode != 0
    assert "in .env" in result.stderr  # our own `${VAR:?set VAR in .env}` message


def test_the_services_run_official_server_images_and_our_builds() -> None:
    services = _services()
    images = {name: str(s.get("image", "")).split(":")[0] for name, s in services.items()}
    assert images["mosquitto"] == "eclipse-mosquitto"
    assert images["kafka"] == "apache/kafka"
    assert images["postgres"] == "postgres"
    # The writer speaks the v2 API: an InfluxDB 2.x image.
    assert services["influxdb"]["image"].startswith("influxdb:2.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ROLES:
        build = services[name]["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == (
            IMAGES / "central.Dockerfile"
        )
        assert services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]


def test_each_role_runs_a_command_the_cli_knows() -> None:
    services = _services()
    parser = build_parser()
    for name, role in ROLES.items():
        command = services[name]["command"]
        assert " ".join(command[:2]) == role, name
        args = parser.parse_args(command)  # exits (SystemExit) on an unknown command or option
        assert callable(args.func)


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    env = {key: str(value) for key, value in service.get("environment", {}).items()}
    entrypoint = " ".join(service.get("entrypoint", []))
    # What the alarms entrypoint exports from its secret files before it runs plantmesh.
    for name in re.findall(r"export (\w+)=", entrypoint):
        env[name] = "postgresql://plantmesh:x@postgres:5432/plantmesh" if "URL" in name else "x"
    return env


@pytest.mark.parametrize("name", sorted(ROLES))
def test_the_mounted_configs_load_with_the_projects_loaders(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _services()[name]
    # Only what the container has: none of the local stack's PLANTMESH_* variables.
    for key in list(os.environ):
        if key.startswith("PLANTMESH_") or key == "STATE_DIRECTORY":
            monkeypatch.delenv(key)
    for key, value in _service_env(service).items():
        monkeypatch.setenv(key, value)
    command = service["command"]
    inside = command[command.index("--config") + 1]
    config_file = bind_source(service, inside)
    assert config_file is not None, f"{inside} is not mounted"
    assert config_file.is_file(), config_file
    role = " ".join(command[:2])
    files: list[Path | None]  # the files this role reads or writes at run time
    if role.startswith("ingest"):
        ingest = load_ingest_config(config_file)
        assert ingest.kafka.bootstrap == "kafka:9092"
        assert not ingest.writer.create_database, "InfluxDB 2.x has no CREATE DATABASE"
        if role == "ingest bridge":
            files = [ingest.mqtt.password_file, ingest.bridge.gateways]
        else:
            files = [ingest.influxdb.token_file]
    elif role == "alerting run":
        files = [load_alerting_config(config_file).alert_log]
    else:
        alarms = load_alarm_config(config_file)
        assert alarms.escalation is not None
        assert load_escalation(alarms.escalation).contacts
        assert service["ports"][0].endswith(f":{alarms.api.port}")
        assert alarms.andon is not None
        assert alarms.influxdb is not None
        files = [alarms.andon.mqtt.password_file, alarms.influxdb.token_file]
        entrypoint = " ".join(service["entrypoint"])
        files += [Path("/run/secrets", n) for n in SECRET_REF.findall(entrypoint)]
    # Each is a secret the service mounts, or lies on one of its volumes.
    mounts = [str(v).split(":")[1] for v in service.get("volumes", [])]
    for file in files:
        assert file is not None, f"{name}: a file setting is unset"
        if file.parent == Path("/run/secrets"):
            assert file.name in service.get("secrets", []), f"{name} lacks the secret {file}"
        else:
            assert any(file.is_relative_to(m) for m in mounts), f"{name}: {file} is not mounted"


def test_healthchecks_ask_the_endpoints_the_configs_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    monkeypatch.setenv("PLANTMESH_INFLUX_ORG", "plantmesh")
    ingest = load_ingest_config(COMPOSE_DIR / "config" / "ingest.yaml")
    ports = {
        "bridge": ingest.bridge.metrics.address,
        "writer": ingest.writer.metrics.address,
    }
    for name, address in ports.items():
        assert address is not None
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{address[1]}/metrics" in check, name
    assert "/healthz" in " ".join(services["alarms"]["healthcheck"]["test"])
    assert "healthcheck" not in services["alerting"]  # it serves no endpoint
    # A dependency on a healthy service needs a healthcheck there.
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits on {needed}"


def test_every_mounted_file_exists_and_scripts_run() -> None:
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
    for script in ("mosquitto/start.sh", "influxdb/create-tokens.sh", "make-secrets.sh"):
        path = COMPOSE_DIR / script
        # The influxdb image runs only executable init scripts (run-parts).
        assert os.access(path, os.X_OK), f"{script} is not executable"
        shell = "bash" if "bash" in path.read_text().splitlines()[0] else "sh"
        assert subprocess.run([shell, "-n", str(path)], check=False).returncode == 0, script


@pytest.fixture
def site_secrets(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("make-secrets.sh needs openssl")
    out = tmp_path / "secrets"
    result = subprocess.run(
        [str(COMPOSE_DIR / "make-secrets.sh"), "--mqtt-host", "mqtt.site.example", *GATEWAYS],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PLANTMESH_SECRETS_DIR": str(out)},
    )
    assert result.returncode == 0, result.stderr
    return out


def test_make_secrets_writes_every_secret_compose_names(site_secrets: Path) -> None:
    secrets = load_compose(_example_env())["secrets"]
    for name, spec in secrets.items():
        path = site_secrets / Path(spec["file"]).name
        assert path.is_file(), name
        assert path.stat().st_size > 0, name
        # World-readable only when a plantmesh container (uid 10001, no capabilities) reads
        # it, or a certificate (public anyway); keys and passwords of the servers are 0400.
        readers = [s for s, svc in _services().items() if name in svc.get("secrets", [])]
        public = bool(path.stat().st_mode & 0o004)
        assert public == (any(r in ROLES for r in readers) or path.suffix == ".pem"), name
    assert site_secrets.stat().st_mode & 0o077 == 0, "the directory keeps other users out"
    assert ".env" in (COMPOSE_DIR / ".gitignore").read_text()
    assert "/secrets/" in (COMPOSE_DIR / ".gitignore").read_text()


def test_make_secrets_gives_the_acl_and_registry_the_project_uses(site_secrets: Path) -> None:
    def blocks(text: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        user = ""
        for line in text.splitlines():
            if line.startswith("user "):
                user = line.split()[1]
                found[user] = set()
            elif line.startswith("topic "):
                found[user].add(line)
        return found

    gateways = [Gateway(*spec.split(":")) for spec in GATEWAYS]
    expected = blocks(render_acl(gateways))
    expected.pop("admin")  # the local stack's operator; the compose site has none
    got = blocks((site_secrets / "mqtt_acl").read_text())
    assert got.pop("alarms") == {"topic write plantmesh/v1/andon/#"}
    assert got == expected
    grants = load_grants(site_secrets / "gateways.json")
    assert {(g.gateway, g.plant) for g in grants} == {(g.name, g.plant) for g in gateways}
    users = (site_secrets / "mqtt_users").read_text().split()
    assert {u.split(":")[0] for u in users} == {"bridge", "alarms", *(g.name for g in gateways)}
    bridge = (site_secrets / "mqtt_bridge_password").read_text().strip()
    assert f"bridge:{bridge}" in users  # the bridge's password_file matches its user


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_mosquitto_hashes_the_users_file_as_start_sh_does(
    site_secrets: Path, tmp_path: Path
) -> None:
    users = tmp_path / "passwd"
    shutil.copy(site_secrets / "mqtt_users", users)
    users.chmod(0o600)
    result = subprocess.run(
        ["mosquitto_passwd", "-U", str(users)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    hashed = users.read_text().splitlines()
    assert len(hashed) == 4
    assert all(line.split(":", 1)[1].startswith("$7$") for line in hashed)  # PBKDF2-SHA512
