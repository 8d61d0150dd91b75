"""How an answer prints: one table (the default), CSV with a header, or JSON.

Every format shows the same columns and the same text for a cell, except that JSON keeps numbers
as numbers and an empty cell as null. Values print exactly as stored (the shortest text that
reads back as the same float), never rounded; times as RFC 3339 UTC with as many fractional
digits as they need (nanoseconds at most); an OPC UA status code in hex (0x808B0000).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMATS = ("table", "csv", "json")
NO_DATA = "(no data)"
TIME_COLUMNS = frozenset({"time", "_time"})
STATUS_COLUMNS = frozenset({"status_code", "status"})


@dataclass
class Table:
    """An answer: named columns and rows of typed values (None for an empty cell). Times are
    nanoseconds since the epoch (int) or already RFC 3339 text (Flux)."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


def rfc3339(ns: int) -> str:
    """Exact: integer arithmetic, trailing zeros of the fraction dropped (as InfluxDB prints)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def status_hex(code: int) -> str:
    return f"0x{code & 0xFFFFFFFF:08X}"


def cell_value(column: str, value: Any) -> Any:
    """A cell as JSON shows it: text for times and status codes, numbers as they are."""
    if value is None or isinstance(value, bool):
        return value
    if column in TIME_COLUMNS and isinstance(value, int):
        return rfc3339(value)
    if column in STATUS_COLUMNS and isinstance(value, int):
        return status_hex(value)
    return value


def cell_text(column: str, value: Any) -> str:
    shown = cell_value(column, value)
    if shown is None:
        return ""
    if isinstance(shown, float):
        return repr(shown)  # shortest round-trip text: exactly the stored float
    return str(shown)


def render(table: Table, fmt: str) -> str:
    """The whole answer as text (no trailing newline)."""
    if fmt == "json":
        return json.dumps(
            [{c: cell_value(c, row.get(c)) for c in table.columns} for row in table.rows],
            indent=2,
            ensure_ascii=False,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([cell_text(c, row.get(c)) for c in table.columns])
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not table.rows:
        return NO_DATA
    cells = [[_one_line(cell_text(c, row.get(c))) for c in table.columns] for row in table.rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(table.columns)]
    lines = [table.columns, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _one_line(text: str) -> str:
    # A text value with a line break would tear the table apart: show it quoted, with escapes.
    return json.dumps(text, ensure_ascii=False) if "\n" in text or "\r" in text else text
