"""Go programs built once with `go install module@version` and cached beside the stack's other
builds (`<cache>/<name>-<version>/`): Telegraf for the benchmarks, Helm for the chart's tests.

Everything the build needs lives in that folder (GOPATH, GOCACHE, the log), so it never touches
the user's Go setup, and a file lock lets parallel sessions wait for one build instead of
running two.
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


def go_environment(gobin: Path, caches: Path | None = None) -> dict[str, str]:
    """The environment of a `go install` into `gobin`: no cgo, never another toolchain, no VCS
    stamping (a module from the proxy has none); module and build caches under `caches` when
    given, else the user's."""
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOBIN": str(gobin),
        "GOTOOLCHAIN": "local",  # never download another Go toolchain
        "GOFLAGS": (os.environ.get("GOFLAGS", "") + " -buildvcs=false").strip(),
    }
    if caches is not None:
        env |= {"GOPATH": str(caches / "gopath"), "GOCACHE": str(caches / "gocache")}
    return env


@dataclass(frozen=True)
class GoProgram:
    """What to build: `go install -tags <tags> -ldflags <ldflags> <package>@v<version>`."""

    name: str
    """The binary's name, also the cache folder's prefix."""
    package: str
    """The main package's import path, e.g. helm.sh/helm/v4/cmd/helm."""
    version: str
    """The module version without its leading v."""
    tags: str = ""
    ldflags: str = "-s -w"
    title: str = ""
    """How messages name it (default: `name`)."""


@dataclass(frozen=True)
class GoInstall:
    program: GoProgram
    home: Path
    """`<cache>/<name>-<version>`: bin/, the Go module and build caches, the build log."""

    @classmethod
    def for_stack(cls, program: GoProgram, config: StackConfig | None = None) -> GoInstall:
        cache = (config or StackConfig.from_env()).cache
        return cls(program, cache / f"{program.name}-{program.version}")

    @property
    def binary(self) -> Path:
        return self.home / "bin" / self.program.name

    @property
    def log(self) -> Path:
        return self.home / "go-build.log"

    @property
    def lock(self) -> Path:
        return self.home.parent / f"{self.home.name}.lock"

    def go(self) -> str | None:
        return find_program("go")

    def ensure(self) -> tuple[Path, float]:
        """The binary, and the seconds spent building it (0 when it was cached). Raises
        StackError when Go is missing or the build fails (the log's tail in the message)."""
        if self.binary.exists():
            return self.binary, 0.0
        title = self.program.title or self.program.name
        go = self.go()
        if go is None:
            raise StackError(f"Go not found (PATH or /usr/local/go/bin/go): cannot build {title}")
        with file_lock(self.lock):
            if self.binary.exists():  # another process built it while we waited
                return self.binary, 0.0
            self.home.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            run_logged(self._argv(go), self.log, cwd=self.home, env=self._env())
            took = time.monotonic() - started
            if not self.binary.exists():
                raise StackError(
                    f"go install finished but {self.binary} is missing; see {self.log}"
                )
            return self.binary, took

    def _argv(self, go: str) -> list[str]:
        program = self.program
        tags = ["-tags", program.tags] if program.tags else []
        return [
            go,
            "install",
            *tags,
            "-ldflags",
            program.ldflags,
            f"{program.package}@v{program.version}",
        ]

    def _env(self) -> dict[str, str]:
        return go_environment(self.binary.parent, caches=self.home)


def build_now(build: GoInstall) -> int:
    """A build script's `main`: build (or find cached), print the binary's path; exit status."""
    try:
        binary, took = build.ensure()
    except StackError as exc:
        print(f"{build.program.name}: {exc}", file=sys.stderr)
        return 1
    print(f"{binary} (built in {took:.0f} s)" if took else f"{binary} (cached)")
    return 0
