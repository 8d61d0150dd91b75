"""deploy/compose without a container engine: the Compose command line if there is one (for
`config`), and the file read in Python with the same variable interpolation, so the services'
commands, mounts and secrets can be checked against the project's own loaders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
EXAMPLE_ENV = COMPOSE_DIR / ".env.example"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariableError(ValueError):
    """A `${VAR:?message}` whose variable is unset (Compose refuses the file the same way)."""


def compose_command() -> list[str] | None:
    """Debian's `docker-compose`, else the `docker compose` plugin when it answers; None when
    neither is installed. `config` needs no engine with either."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str] | None:
    """`config` of compose.yaml with `env_file` and nothing else from the environment (the
    file must render from the env file alone); None when no Compose is installed."""
    command = compose_command()
    if command is None:
        return None
    project = ["--project-directory", str(COMPOSE_DIR), "-f", str(COMPOSE_FILE)]
    return subprocess.run(
        [*command, *project, "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        timeout=120,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads an env file (no quoting used in ours)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op is not None and op.endswith("?") and unset:
            raise MissingVariableError(f"{name}: {arg}")
        if op is not None and op.endswith("-") and unset:
            return arg or ""
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _walk(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, env) for value in node]
    return node


def load_compose(env: dict[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """compose.yaml with anchors merged and variables filled in from `env`."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    result = _walk(data, env)
    assert isinstance(result, dict)
    return result


def bind_source(service: dict[str, Any], container_path: str) -> Path | None:
    """The host file behind `container_path` through the service's bind mounts (short syntax
    `./host:/container[:ro]`), or None when no bind mount covers it."""
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if not source.startswith((".", "/")):
            continue  # a named volume
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return (COMPOSE_DIR / source / container_path[len(target) :].lstrip("/")).resolve()
    return None
