"""`discover ... --pick ... --into CONFIG`: the picked source added to an agent config's `sources:`.

The file is edited as text, not rewritten from its parsed form, so its comments and layout stay:
the new entry is appended to the `sources:` list, which therefore has to be the file's last
top-level key (as in the samples and in what `plantmesh gateway add --write-config` starts).
The result is parsed again before it is written: everything else must be unchanged and the new
source must be the list's last entry, or nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from edge_agent.discover.fragment import FragmentError

_TOP_KEY = re.compile(r"^[^\s#-][^:]*:", re.MULTILINE)
_SOURCES = re.compile(r"^sources:[ \t]*(\[\])?[ \t]*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^([ \t]*)- ", re.MULTILINE)


def entry_of(fragment: str) -> dict[str, Any]:
    """The one source entry of a fragment `discover` made."""
    entry: dict[str, Any] = yaml.safe_load(fragment)["sources"][0]
    return entry


def add_source(config: Path, entry: dict[str, Any]) -> None:
    """Append `entry` to the `sources:` of `config` (made when missing)."""
    try:
        text = config.read_text(encoding="utf-8") if config.exists() else ""
        before = yaml.safe_load(text) if text.strip() else {}
    except (OSError, yaml.YAMLError) as exc:
        raise FragmentError(f"--into {config}: {exc}") from None
    if not isinstance(before, dict):
        raise FragmentError(f"--into {config}: not a YAML mapping (an agent config)")
    sources = before.get("sources") or []
    if any(isinstance(s, dict) and s.get("name") == entry["name"] for s in sources):
        raise FragmentError(
            f"--into {config}: it has a source named {entry['name']!r} already "
            "(choose another with --name)"
        )
    new = _appended(text, entry, config)
    after = yaml.safe_load(new)
    unchanged = {k: v for k, v in after.items() if k != "sources"} == {
        k: v for k, v in before.items() if k != "sources"
    }
    if not unchanged or after.get("sources") != [*sources, entry]:
        raise FragmentError(
            f"--into {config}: could not add the source without changing the rest of the "
            "file; write the fragment with --output and paste it under `sources:`"
        )
    try:
        config.write_text(new, encoding="utf-8")
    except OSError as exc:
        raise FragmentError(f"--into {config}: {exc.strerror or exc}") from None


def _appended(text: str, entry: dict[str, Any], config: Path) -> str:
    body = text if not text or text.endswith("\n") else text + "\n"
    found = _SOURCES.search(body)
    if found is None:
        return body + "sources:\n" + _item(entry, "  ")
    rest = body[found.end() :]
    if _TOP_KEY.search(rest):
        raise FragmentError(
            f"--into {config}: `sources:` must be the last key of the file to add to it; "
            "move it to the end, or write the fragment with --output and paste it"
        )
    if found.group(1):  # `sources: []`: the list starts now
        body = body[: found.start()] + "sources:" + rest
        rest = body[body.index("sources:") + len("sources:") :]
    item = _ITEM.search(rest)
    indent = item.group(1) if item else "  "
    return body + _item(entry, indent)


def _item(entry: dict[str, Any], indent: str) -> str:
    dumped = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
    return "".join(indent + line for line in dumped.splitlines(keepends=True))
