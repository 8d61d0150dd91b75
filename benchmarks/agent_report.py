"""bench_agent.py's tables: one line per row and client, then the agent's CPU and memory as
multiples of Telegraf's and of the raw client's on the same row."""

from __future__ import annotations

from dataclasses import dataclass

from agent_measure import Measured

AGENT = "plantmesh agent"
DELIVERED_OK = 0.97
"""A client delivers every update when its fitted rate is within 3 % of the expected one:
values arrive in steps (a publish of an OPC UA server carries its last 500 ms of slices, the
agent and Telegraf send up to 1,000 per message), and a step more or less in a 10 s window at
1,000 values/s is 2.5 %."""


@dataclass
class Result:
    row: str
    client: str
    expected_per_s: float
    measured: Measured | None
    note: str = ""


def table(results: list[Result]) -> str:
    header = (
        f"{'row':<33}{'client':<38}{'expected/s':>11}{'updates/s':>11}{'%':>5}{'all?':>5}"
        f"{'CPU %':>8}{'RSS MB':>8}{'peak MB':>9}{'srv CPU %':>10}{'srv lag s':>10}"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for r in results:
        m = r.measured
        start = f"{r.row:<33}{r.client:<38}{r.expected_per_s:>11,.0f}"
        if m is None:
            lines.append(f"{start}  failed (see the notes)")
        else:
            share = m.updates_per_s / r.expected_per_s
            ok = "yes" if share >= DELIVERED_OK else "NO"
            lines.append(
                f"{start}{m.updates_per_s:>11,.0f}{100 * share:>5.0f}{ok:>5}{m.cpu_percent:>8.1f}"
                f"{m.rss_mb:>8.1f}{m.hwm_mb:>9.1f}{m.server_cpu_percent:>10.1f}"
                f"{m.server_lag_s:>10.2f}"
            )
        if r.note:
            notes.append(f"  {r.row} / {r.client}: {r.note}")
    lines.append(
        "CPU % = of one core; srv = all server processes of the row during that client's window"
    )
    if notes:
        lines += ["notes:", *notes]
    return "\n".join(lines)


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.1f}x" if theirs > 0 else "-"


def ratios(results: list[Result]) -> str:
    """For each row: the agent's CPU and RSS divided by each other client's."""
    header = f"{'row':<33}{'agent vs':<38}{'CPU ratio':>10}{'RSS ratio':>10}{'updates ratio':>14}"
    lines = [header, "-" * len(header)]
    for row in dict.fromkeys(r.row for r in results):
        agent = next((r.measured for r in results if r.row == row and r.client == AGENT), None)
        if agent is None:
            continue
        for other in results:
            if other.row != row or other.client == AGENT or other.measured is None:
                continue
            m = other.measured
            lines.append(
                f"{row:<33}{other.client:<38}{_ratio(agent.cpu_percent, m.cpu_percent):>10}"
                f"{_ratio(agent.rss_mb, m.rss_mb):>10}"
                f"{_ratio(agent.updates_per_s, m.updates_per_s):>14}"
            )
    return "\n".join(lines)
