"""Telegraf for the edge benchmark: built once from the Go module proxy with only the plugins
the benchmark uses, cached beside the stack's other builds (`<cache>/telegraf-<version>/`).

    .venv/bin/python benchmarks/telegraf_build.py   # build now (about 95 s on an empty cache)
"""

from __future__ import annotations

import sys

from plantmesh.stack.go_install import GoInstall, GoProgram, build_now
from plantmesh.stack.paths import StackConfig

TELEGRAF_VERSION = "1.37.2"
MODULE = "github.com/influxdata/telegraf/cmd/telegraf"
VERSION_VAR = "github.com/influxdata/telegraf/internal.Version"  # else `--version` says unknown
# A custom build: the full plugin set takes several times longer to compile.
BUILD_TAGS = (
    "custom,inputs.opcua,inputs.opcua_listener,inputs.modbus,"
    "outputs.mqtt,serializers.json,serializers.influx"
)
TELEGRAF = GoProgram(
    name="telegraf",
    package=MODULE,
    version=TELEGRAF_VERSION,
    tags=BUILD_TAGS,
    ldflags=f"-s -w -X {VERSION_VAR}={TELEGRAF_VERSION}",
    title="Telegraf",
)


class TelegrafBuild:
    """`TelegrafBuild.for_stack()`: Telegraf's build in the stack's cache."""

    @staticmethod
    def for_stack(config: StackConfig | None = None) -> GoInstall:
        return GoInstall.for_stack(TELEGRAF, config)


def main() -> int:
    return build_now(TelegrafBuild.for_stack())


if __name__ == "__main__":
    sys.exit(main())
