"""The demo's alarms read back from the API: each one's timeline, and whether the demo showed
what it is scripted to show (an unanswered alarm escalating, an acknowledged one not)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from plantmesh.demo.responders import FAST_PLANT


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _where(alarm: dict[str, Any]) -> str:
    return f"{alarm['plant']}/{alarm['area']}/{alarm['line']}/{alarm['machine']}"


def timeline(alarm: dict[str, Any]) -> list[str]:
    """The trail and the deliveries of one alarm, in order, in seconds after it was raised."""
    start = _at(alarm["raised_at"])
    lines: list[tuple[datetime, str]] = []
    for entry in alarm["timeline"]:
        why = f" ({entry['text']})" if entry.get("text") else ""
        moved = (
            f" -> {entry['to_state']}" if entry.get("to_state") != entry.get("from_state") else ""
        )
        lines.append((_at(entry["at"]), f"{entry['action']} by {entry['actor']}{moved}{why}"))
    for sent in alarm["deliveries"]:
        when = _at(sent["sent_at"] or sent["created_at"])
        level = f" level {sent['level']}" if sent.get("level") else ""
        lines.append(
            (when, f"  {sent['kind']} told to {sent['contact']}{level} by {sent['channel']}: "
             f"{sent['status']}")
        )  # fmt: skip
    lines.sort(key=lambda pair: pair[0])
    return [f"{(at - start).total_seconds():+7.1f} s  {text}" for at, text in lines]


def print_alarms(alarms: list[dict[str, Any]]) -> None:
    print(f"\nAlarms ({len(alarms)}), each with its trail as the API gives it:")
    for alarm in alarms:
        where = _where(alarm)
        ack = alarm.get("time_to_acknowledge_s")
        answered = f"acknowledged after {ack:.1f} s" if ack is not None else "never acknowledged"
        print(
            f"\n  {alarm['issue_type']} on {where} ({alarm['priority']}): {alarm['state']}, "
            f"{answered}, highest level told {alarm.get('escalation_level')}"
        )
        for line in timeline(alarm):
            print(f"    {line}")


def escalated_levels(alarm: dict[str, Any]) -> set[int]:
    return {
        int(d["level"])
        for d in alarm["deliveries"]
        if d["kind"] == "escalated" and d.get("level") is not None
    }


def _first(alarm: dict[str, Any], action: str) -> datetime | None:
    return next((_at(e["at"]) for e in alarm["timeline"] if e["action"] == action), None)


def verdict(
    alarms: list[dict[str, Any]], acknowledged: set[str], ack_within_s: float
) -> tuple[list[str], list[str]]:
    """What the default demo shows, and what it should have shown but did not (problems).
    Machines' alarms only: a network incident's alarm escalates on its own clock."""
    alarms = [a for a in alarms if a["plant"] != "network"]
    shown: list[str] = []
    problems: list[str] = []
    climbed = [a for a in alarms if 2 in escalated_levels(a) and a["id"] not in acknowledged]
    for alarm in climbed:
        shown.append(
            f"{_where(alarm)}: nobody acknowledged within {ack_within_s:.0f} s, so level 2 was told"
        )
    if not climbed:
        problems.append("no unacknowledged alarm escalated to level 2")
    stopped = [a for a in alarms if a["id"] in acknowledged]
    if not stopped:
        problems.append(f"no alarm of {FAST_PLANT} was acknowledged through the API")
    for alarm in stopped:
        raised, cleared = _first(alarm, "raise"), _first(alarm, "clear")
        if escalated_levels(alarm):
            problems.append(f"alarm {alarm['id']} escalated although acknowledged")
        elif raised and cleared and (cleared - raised).total_seconds() < ack_within_s:
            problems.append(
                f"{_where(alarm)} cleared before its level 2 was due: the acknowledgement "
                "stopped nothing"
            )
        else:
            shown.append(
                f"{_where(alarm)}: acknowledged through the API, still active when level 2 "
                f"was due ({ack_within_s:.0f} s after raising), and nobody else was called"
            )
    return shown, problems
