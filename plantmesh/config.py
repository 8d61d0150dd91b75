"""Loading a service's YAML file into its pydantic model, with errors a controls engineer can act
on: the file, the key and what was expected.

String values may use `${VAR}` or `${VAR:-default}` to take a value from the environment, so one
file serves a laptop, a gateway and CI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigModel(BaseModel):
    """Base of every configuration model: an unknown key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ConfigError(Exception):
    """A configuration file that cannot be used. The message names file, key and expectation."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        joined = "\n  ".join(problems)
        super().__init__(f"{path}:\n  {joined}" if len(problems) > 1 else f"{path}: {joined}")


def _expand(value: Any, path: Path, where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(path, [f"{where}: environment variable {name} is not set"])

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand(v, path, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


KeyPath = tuple[int | str, ...]


def _locate(loc: KeyPath, data: Any) -> tuple[str, KeyPath]:
    """`sources[0].endpoint` from pydantic's location, and the path of the deepest part of it
    present in the file. Walks the input alongside, so the tag pydantic inserts for a
    discriminated union (`sources[0].opcua.endpoint`) is left out."""
    out, node, present, inside = "", data, [], True
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            inside = inside and isinstance(node, list) and part < len(node)
            node = node[part] if inside else None
        elif isinstance(node, dict) and part not in node and part in node.values():
            continue  # a union tag, not a key of the file
        else:
            out += f".{part}" if out else part
            inside = inside and isinstance(node, dict) and part in node
            node = node.get(part) if inside else None
        if inside:
            present.append(part)
    return out or "<top level>", tuple(present)


def _problem(item: Any, data: Any, lines: dict[KeyPath, int]) -> str:
    key, present = _locate(tuple(item["loc"]), data)
    line = lines.get(present)
    where = f" (line {line})" if line else ""
    if item["type"] == "extra_forbidden":
        return f"{key}: unknown key{where} (check the spelling against the sample configuration)"
    if item["type"] == "missing":
        return f"{key}: required key is missing{where}"
    got = item.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"{key}: {item['msg']}{shown}{where}"


def _line_numbers(node: yaml.Node, path: KeyPath = ()) -> dict[KeyPath, int]:
    """Where each key and list item of a YAML document starts (1-based lines)."""
    lines: dict[KeyPath, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines.update(_line_numbers(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_numbers(item, (*path, index)))
    return lines


def validate_config(
    model: type[M],
    data: Any,
    path: Path | str = "<config>",
    lines: dict[KeyPath, int] | None = None,
) -> M:
    """Validate already-parsed data; `lines` (from the YAML source) adds line numbers."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(i, data, lines or {}) for i in exc.errors(include_url=False)]
        raise ConfigError(path, problems) from None


def load_config(model: type[M], path: Path | str) -> M:
    """Read, expand and validate one YAML file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [f"cannot read file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            file, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(file, ["<top level>: expected a mapping of keys to values"])
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = _line_numbers(node) if node is not None else {}
    lines.pop((), None)  # "line 1" for the whole file says nothing
    return validate_config(model, _expand(data, file, ""), file, lines)


def resolve_relative(base_file: Path | str, value: str | Path) -> Path:
    """Paths inside a config file are relative to that file, not to the working directory."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else Path(base_file).resolve().parent / candidate
