"""The edge extra installs from binary wheels alone on a 64-bit ARM gateway: `pip download
--only-binary=:all:` for manylinux2014 aarch64 (glibc 2.17 or newer) and Python 3.11, of the base
dependencies plus the `edge` extra as pyproject.toml lists them. A dependency that drops its
arm64 wheels would mean a compiler on every gateway; this says so before a gateway finds out.

Needs the package index (PyPI, or the one pip is configured with); skipped only when it cannot
be reached at all, not when it answers with an error."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PLATFORM = "manylinux2014_aarch64"


def edge_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["edge"]]
    assert all(isinstance(r, str) for r in requirements)
    return requirements


def _pip_setting(key: str) -> str | None:
    """`index-url` or `cert` as pip will use them (environment over config files): the last
    `<scope>.<key>` line of `pip config list` wins, as it does for pip."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    value = None
    for line in listing.splitlines():
        name, _, raw = line.partition("=")
        if name.rsplit(".", 1)[-1] == key:
            value = raw.strip().strip("'\"")
    return value


def _unreachable(index: str) -> str | None:
    """Why the index cannot be reached (no route, no name, refused, timed out), or None when it
    answered anything at all: an HTTP error or a certificate problem is for pip to report."""
    url = index.rstrip("/") + "/pip/"
    context = ssl.create_default_context(cafile=_pip_setting("cert"))
    try:
        with urllib.request.urlopen(url, timeout=20, context=context) as response:
            response.read(1)
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return None
        return f"{url}: {exc.reason}"
    except (TimeoutError, ConnectionError) as exc:
        return f"{url}: {exc!r}"
    return None


def test_the_edge_extra_installs_from_arm64_wheels_alone(tmp_path: Path) -> None:
    index = _pip_setting("index-url") or "https://pypi.org/simple"
    why = _unreachable(index)
    if why is not None:
        pytest.skip(f"the package index cannot be reached ({why}); this check needs PyPI")
    requirements = edge_requirements()
    # Local wheel directories must not stand in for the index.
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX")}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--only-binary=:all:"),
            *("--platform", PLATFORM, "--python-version", "3.11", "--dest", str(tmp_path)),
            *requirements,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=280,
    )
    assert result.returncode == 0, f"no arm64 wheel for something:\n{result.stderr[-4000:]}"
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files, "pip downloaded nothing"
    assert [f for f in files if not f.endswith(".whl")] == []
    # Every wheel runs there: pure Python, or built for aarch64 and CPython 3.11.
    for name in files:
        _, python, abi, platform = name[: -len(".whl")].rsplit("-", 3)
        assert platform == "any" or "aarch64" in platform, name
        assert python.startswith(("py3", "cp311", "py2.py3")), name
        assert abi in ("none", "cp311", "abi3"), name
    downloaded = {canonicalize_name(f.split("-")[0]) for f in files}
    for requirement in requirements:
        assert canonicalize_name(Requirement(requirement).name) in downloaded, requirement
