"""Why an incident is one: which machines in which plants, in which order, how fast it spread,
what the members have in common (the fleet's machine attributes) and what the machines of the
same class that stayed quiet have instead. Pure: an incident and the fleet in, facts out.

    vibration-instability on cnc_mill: plant-a mill-03 14:01, plant-b mill-01 14:04, plant-c
    mill-02 14:07 (UTC) — 3 of 3 plants with cnc_mill, within 6 min; all members:
    spindle_model S-40, firmware 2.1; unaffected cnc_mill machines: firmware 2.3 (4)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from alerting.incidents.correlator import Incident, Member
from plantmesh.fleet import Fleet, Machine

SHOWN = 8
"""Members (and quiet plants) named in the one-line text; the rest are counted."""


@dataclass(frozen=True)
class Explanation:
    text: str
    plants_with_class: list[str]
    """Plants the fleet has machines of this class in."""
    unaffected_plants: list[str]
    first_plant: str
    span_s: float
    """From the first member's raise to the last's."""
    plant_delays_s: dict[str, float]
    """Each plant: seconds from the first plant's first raise to its own."""
    common: dict[str, str]
    """Attributes every member has, with the same value."""
    unaffected_values: dict[str, dict[str, int]] = field(default_factory=dict)
    """For each common attribute: its values on the quiet machines of the class, counted."""
    distinguishing: list[str] = field(default_factory=list)
    """Common attributes no quiet machine of the class shares with the members."""

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "plants_with_class": self.plants_with_class,
            "unaffected_plants": self.unaffected_plants,
            "first_plant": self.first_plant,
            "span_s": self.span_s,
            "plant_delays_s": self.plant_delays_s,
            "common": self.common,
            "unaffected_values": self.unaffected_values,
            "distinguishing": self.distinguishing,
        }


def explain(incident: Incident, fleet: Fleet, ordered: list[Member] | None = None) -> Explanation:
    """`ordered`: the incident's members in order, when the caller has them already."""
    members = ordered if ordered is not None else incident.ordered()
    first = members[0]
    of_class = fleet.of_class(incident.machine_class)
    member_keys = {(m.plant, m.machine) for m in members}
    quiet = [m for m in of_class if (m.plant, m.machine) not in member_keys]
    plants_with_class = sorted({m.plant for m in of_class} | {m.plant for m in members})
    affected = list(dict.fromkeys(m.plant for m in members))
    delays: dict[str, float] = {}
    for member in members:
        delays.setdefault(member.plant, (member.raised_at - first.raised_at).total_seconds())
    common = _common(members, fleet)
    unaffected_values = {
        name: dict(Counter(m.attributes[name] for m in quiet if name in m.attributes))
        for name in common
    }
    distinguishing = [
        name
        for name, value in common.items()
        if unaffected_values[name] and value not in unaffected_values[name]
    ]
    span = (members[-1].raised_at - first.raised_at).total_seconds()
    explanation = Explanation(
        text="",
        plants_with_class=plants_with_class,
        unaffected_plants=[p for p in plants_with_class if p not in affected],
        first_plant=first.plant,
        span_s=span,
        plant_delays_s=delays,
        common=common,
        unaffected_values=unaffected_values,
        distinguishing=distinguishing,
    )
    return _with_text(explanation, incident, members, affected)


def _common(members: list[Member], fleet: Fleet) -> dict[str, str]:
    known: list[Machine | None] = [fleet.get(m.plant, m.machine) for m in members]
    if not known or any(m is None for m in known):
        return {}  # a member the registry does not describe: nothing is common for sure
    machines = [m for m in known if m is not None]
    shared = dict(machines[0].attributes)
    for machine in machines[1:]:
        shared = {k: v for k, v in shared.items() if machine.attributes.get(k) == v}
    return shared


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _with_text(
    explanation: Explanation, incident: Incident, members: list[Member], affected: list[str]
) -> Explanation:
    order = ", ".join(f"{m.plant} {m.machine} {m.raised_at:%H:%M}" for m in members[:SHOWN])
    if len(members) > SHOWN:
        order += f" and {len(members) - SHOWN} more"
    plants = explanation.plants_with_class
    coverage = f"{len(affected)} of {len(plants)} plants with {incident.machine_class}"
    quiet = explanation.unaffected_plants
    if quiet:
        more = f" and {len(quiet) - SHOWN} more" if len(quiet) > SHOWN else ""
        coverage += f" (not {', '.join(quiet[:SHOWN])}{more})"
    parts = [
        f"{incident.issue_type} on {incident.machine_class}: {order} (UTC)",
        f" — {coverage}, within {_minutes(explanation.span_s)}",
    ]
    if explanation.common:
        shared = ", ".join(f"{k} {v}" for k, v in explanation.common.items())
        parts.append(f"; all members: {shared}")
    if explanation.distinguishing:
        values = []
        for name in explanation.distinguishing:
            counted = explanation.unaffected_values[name]
            shown = ", ".join(f"{value} ({n})" for value, n in sorted(counted.items()))
            values.append(f"{name} {shown}")
        parts.append(f"; unaffected {incident.machine_class} machines: {'; '.join(values)}")
    return replace(explanation, text="".join(parts))
