"""Reading Dockerfiles and .dockerignore in Python, for checks that need no Docker engine and
no hadolint: stages, instructions, what COPY takes from the build context and where it goes."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line
    line: int

    def words(self) -> list[str]:
        """The arguments as a list: the JSON (exec) form when it is one, else split as a shell
        would (flags such as --from=... included)."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                pass
            else:
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    return value
        return shlex.split(text)

    def flags(self) -> dict[str, str]:
        """`--name=value` options in front of the arguments (COPY --from=..., RUN --mount=...);
        a repeated flag keeps its values joined by a space."""
        found: dict[str, str] = {}
        for word in self.words():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = f"{found[name]} {value}" if name in found else value
        return found

    def operands(self) -> list[str]:
        return [w for w in self.words() if not w.startswith("--")]


@dataclass
class Stage:
    base: str  # the image, with ARG defaults filled in
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def workdir(self) -> str:
        last = self.last("WORKDIR")
        return last.operands()[0] if last else "/"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined; comments and blank lines dropped
    (a comment line inside a continuation is skipped, as Docker does)."""
    lines: list[tuple[int, str]] = []
    current, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append((start, current))
        current = ""
    if current:
        lines.append((start, current))
    return lines


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile. ARGs declared before the first FROM are substituted into
    FROM lines with their defaults, as a build without --build-arg would."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        instruction = Instruction(keyword.upper(), rest.strip(), number)
        if instruction.keyword == "ARG" and not stages:
            arg, _, default = instruction.args.partition("=")
            args[arg.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.words() if not w.startswith("--")]
            base = _ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2), ""), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def copy_map(stage: Stage, context: Path) -> dict[str, str]:
    """Where each build-context path the stage COPYs from the context lands in the image: repo
    path (relative, POSIX) -> absolute image path. Directories map as prefixes. COPY --from
    (another stage or image) is not from the context and is left out."""
    mapping: dict[str, str] = {}
    workdir = "/"
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / instruction.operands()[0])
        if instruction.keyword not in ("COPY", "ADD") or "from" in instruction.flags():
            continue
        *sources, dest = instruction.operands()
        target = PurePosixPath(workdir) / dest
        for source in sources:
            rel = os.path.normpath(source)
            if (context / rel).is_dir():
                mapping[rel] = str(target)
            elif dest.endswith("/") or len(sources) > 1:
                mapping[rel] = str(target / PurePosixPath(rel).name)
            else:
                mapping[rel] = str(target)
    return mapping


def image_path(mapping: dict[str, str], rel: str) -> str | None:
    """Where the repo path `rel` is in the image according to `copy_map` (None: not copied)."""
    for source, target in mapping.items():
        if rel == source:
            return target
        if rel.startswith(source + "/"):
            return str(PurePosixPath(target) / rel[len(source) + 1 :])
    return None


# --- .dockerignore ----------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match plus `**` (any number of directories), as Docker reads them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[bool, re.Pattern[str]], ...]  # (exception, pattern)

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            cleaned = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
            rules.append((exception, _pattern_regex(cleaned)))
        return cls(tuple(rules))

    def excludes(self, rel: str) -> bool:
        """Whether the context path `rel` is left out: the last rule that matches it or one of
        its parent directories decides."""
        parts = PurePosixPath(rel).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for exception, pattern in self.rules:
            if any(pattern.match(c) for c in candidates):
                excluded = not exception
        return excluded
