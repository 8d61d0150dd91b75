"""Helm for checking the Kubernetes chart (deploy/helm/plantmesh) offline: `helm lint` and
`helm template` need no cluster. Built once with `go install` (about 3.5 min on an empty cache)
and cached beside the stack's other builds (`<cache>/helm-<version>/`).

    .venv/bin/python -m plantmesh.stack.helm_build   # build now, print the binary's path
"""

from __future__ import annotations

import sys

from plantmesh.stack.go_install import GoInstall, GoProgram, build_now
from plantmesh.stack.paths import StackConfig

HELM_VERSION = "4.3.2"
HELM = GoProgram(
    name="helm",
    package="helm.sh/helm/v4/cmd/helm",
    version=HELM_VERSION,
    # What Helm's Makefile stamps in; else `helm version` says v4.3 and nothing more.
    ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version=v{HELM_VERSION}",
    title="Helm",
)


def helm_build(config: StackConfig | None = None) -> GoInstall:
    return GoInstall.for_stack(HELM, config)


def main() -> int:
    return build_now(helm_build())


if __name__ == "__main__":
    sys.exit(main())
