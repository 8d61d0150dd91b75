"""Telegraf for the edge benchmark: built once from the Go module proxy with only the plugins
the benchmark uses, cached beside the stack's other builds (`<cache>/telegraf-<version>/`).

    .venv/bin/python benchmarks/telegraf_build.py   # build now (about 95 s on an empty cache)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from plantmesh.stack.errors import StackError
from plantmesh.stack.paths import StackConfig
from plantmesh.stack.system import file_lock, find_program, run_logged

TELEGRAF_VERSION = "1.37.2"
MODULE = "github.com/influxdata/telegraf/cmd/telegraf"
VERSION_VAR = "github.com/influxdata/telegraf/internal.Version"  # else `--version` says unknown
# A custom build: the full plugin set takes several times longer to compile.
BUILD_TAGS = (
    "custom,inputs.opcua,inputs.opcua_listener,inputs.modbus,"
    "outputs.mqtt,serializers.json,serializers.influx"
)


@dataclass(frozen=True)
class TelegrafBuild:
    home: Path
    """`<cache>/telegraf-<version>`: bin/, the Go module and build caches, the build log."""

    @classmethod
    def for_stack(cls, config: StackConfig | None = None) -> TelegrafBuild:
        cache = (config or StackConfig.from_env()).cache
        return cls(cache / f"telegraf-{TELEGRAF_VERSION}")

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "telegraf"

    @property
    def log(self) -> Path:
        return self.home / "go-build.log"

    def go(self) -> str | None:
        return find_program("go")

    def ensure(self) -> tuple[Path, float]:
        """The binary, and the seconds spent building it (0 when it was cached). Raises
        StackError when Go is missing or the build fails (the log's tail in the message)."""
        if self.binary.exists():
            return self.binary, 0.0
        go = self.go()
        if go is None:
            raise StackError("Go not found (PATH or /usr/local/go/bin/go): cannot build Telegraf")
        with file_lock(self.home.parent / f"telegraf-{TELEGRAF_VERSION}.lock"):
            if self.binary.exists():  # another process built it while we waited
                return self.binary, 0.0
            self.home.mkdir(parents=True, exist_ok=True)
            env = {
                **os.environ,
                "CGO_ENABLED": "0",
                "GOBIN": str(self.binary.parent),
                "GOPATH": str(self.home / "gopath"),
                "GOCACHE": str(self.home / "gocache"),
                "GOTOOLCHAIN": "local",  # never download another Go toolchain
                "GOFLAGS": (os.environ.get("GOFLAGS", "") + " -buildvcs=false").strip(),
            }
            started = time.monotonic()
            run_logged(
                [
                    go,
                    "install",
                    "-tags",
                    BUILD_TAGS,
                    "-ldflags",
                    f"-s -w -X {VERSION_VAR}={TELEGRAF_VERSION}",
                    f"{MODULE}@v{TELEGRAF_VERSION}",
                ],
                self.log,
                cwd=self.home,
                env=env,
            )
            took = time.monotonic() - started
            if not self.binary.exists():
                raise StackError(
                    f"go install finished but {self.binary} is missing; see {self.log}"
                )
            return self.binary, took


def main() -> int:
    build = TelegrafBuild.for_stack()
    try:
        binary, took = build.ensure()
    except StackError as exc:
        print(f"telegraf: {exc}", file=sys.stderr)
        return 1
    print(f"{binary} (built in {took:.0f} s)" if took else f"{binary} (cached)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
