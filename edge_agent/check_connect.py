"""`plantmesh agent check-config --connect`: connect to every source of an agent config the way
the agent does (its own client, security and read code), resolve every configured node, read every
register once, and print one row per signal with what was read or what is wrong.

The sources are checked at the same time, each connection and request bounded by `--timeout`,
so a config full of unreachable PLCs takes about one timeout per device, not per signal.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TextIO

from edge_agent.config import AgentConfig, ModbusSourceConfig, OpcUaSourceConfig

COLUMNS = ("source", "name", "address", "type", "value", "quality", "problem")
# Below this many signals the check is quick and progress lines would be noise.
PROGRESS_MIN = 100
# A value longer than this is cut in the table (text variables can hold pages).
MAX_VALUE_CHARS = 40


@dataclass
class Row:
    """One signal (or browse root) of the config: what was read, or what is wrong."""

    source: str
    name: str
    address: str
    type: str = "-"
    value: str = "-"
    quality: str = "-"
    problem: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.source,
            self.name,
            self.address,
            self.type,
            self.value,
            self.quality,
            self.problem or "-",
        )


class Progress:
    """`checked N/M signals` on a stream at every tenth of the way, for configs large enough
    that the check takes a while. Browse roots add their variables once found."""

    def __init__(self, total: int, stream: TextIO | None, min_total: int = PROGRESS_MIN) -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._min_total = min_total
        self._shown = 0

    def add_total(self, count: int) -> None:
        self.total += count

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._stream is None or self.total < self._min_total:
            return
        tenth = self.done * 10 // max(self.total, 1)
        if tenth > self._shown:
            self._shown = tenth
            print(f"checked {self.done}/{self.total} signals", file=self._stream, flush=True)


def format_value(value: object, unit: str | None = None) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return f"{text} {unit}" if unit and unit != "1" else text  # "1": a plain number


def finite(value: float | bool) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def configured_signals(config: AgentConfig) -> int:
    """Signals known before connecting: explicit OPC UA nodes and Modbus registers."""
    total = 0
    for source in config.sources:
        if isinstance(source, OpcUaSourceConfig):
            total += len(source.nodes)
        else:
            total += sum(len(d.device_profile.registers) for d in source.devices)
    return total


async def check_sources(
    config: AgentConfig, timeout_s: float, progress: Progress | None = None
) -> list[Row]:
    """Every source at once; the rows in config order."""
    progress = progress or Progress(configured_signals(config), None)
    checks = []
    for source in config.sources:
        if isinstance(source, OpcUaSourceConfig):
            from edge_agent.check_connect_opcua import check_opcua

            checks.append(check_opcua(source, config.plant, timeout_s, progress))
        elif isinstance(source, ModbusSourceConfig):
            from edge_agent.check_connect_modbus import check_modbus

            checks.append(check_modbus(source, timeout_s, progress))
    results = await asyncio.gather(*checks)
    return [row for rows in results for row in rows]


def format_table(rows: list[Row]) -> str:
    cells = [tuple(c.upper() for c in COLUMNS), *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    return "\n".join(lines)


def run_check(config: AgentConfig, timeout_s: float, progress_stream: TextIO | None) -> int:
    """Print the table and a summary line; 1 if any signal has a problem."""
    # The table names every problem; the libraries' own warnings about it would repeat them.
    for name in ("asyncua", "pymodbus"):
        logging.getLogger(name).setLevel(logging.ERROR)
    progress = Progress(configured_signals(config), progress_stream)
    rows = asyncio.run(check_sources(config, timeout_s, progress))
    print(format_table(rows))
    problems = sum(1 for row in rows if row.problem)
    print(f"{len(rows)} checked, " + (f"{problems} with a problem" if problems else "no problems"))
    return 1 if problems else 0
