"""The demo's network incidents read back from the API: each one's explanation, members and
timeline, and whether the demo showed what it is scripted to show (the mills of three plants in
one incident, headquarters told when it opened and when the third plant joined)."""

from __future__ import annotations

from typing import Any

EXPECTED_PLANTS = ["plant-a", "plant-b", "plant-c"]


def print_incidents(incidents: list[dict[str, Any]]) -> None:
    print(f"\nNetwork incidents ({len(incidents)}):")
    for incident in incidents:
        alarm = incident.get("alarm") or {}
        print(f"\n  {incident['summary']}")
        print(
            f"    incident {incident['id']}, {'open' if incident['open'] else 'closed'}, its alarm "
            f"{incident['alarm_id']} {incident['state']}"
        )
        for member in incident["member_list"]:
            own = member.get("alarm")
            local = f"its alarm {own['state']}" if own else "its alarm not recorded yet"
            print(
                f"    member {member['raised_at']}  {member['plant']}/{member['line']}/"
                f"{member['machine']}: {member['summary']} ({local})"
            )
        for sent in alarm.get("deliveries", []):
            level = f" level {sent['level']}" if sent.get("level") else ""
            print(f"    told {sent['contact']}{level}: {sent['kind']} ({sent['status']})")


def incident_verdict(incidents: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(what was shown, what was not)."""
    mills = [
        i
        for i in incidents
        if i["issue_type"] == "vibration-instability" and i["machine_class"] == "cnc_mill"
    ]
    others = [i for i in incidents if i not in mills]
    problems = [f"an incident that should not be: {i['summary']}" for i in others]
    if len(mills) != 1:
        problems.append(f"{len(mills)} vibration incidents on cnc_mill, expected 1")
        return [], problems
    [incident] = mills
    if incident["plants"] != EXPECTED_PLANTS:
        problems.append(f"the incident reached {incident['plants']}, expected {EXPECTED_PLANTS}")
    told = [d["kind"] for d in (incident.get("alarm") or {}).get("deliveries", [])]
    if told.count("raised") != 1 or told.count("updated") < 1:
        problems.append(f"headquarters was told {told}: expected raised once, then updated")
    shown = [
        f"one network incident for the mills of {', '.join(incident['plants'])}; headquarters "
        f"told {told.count('raised')}x when it opened and {told.count('updated')}x as plants "
        "joined, not once per member alert"
    ]
    return shown, problems
