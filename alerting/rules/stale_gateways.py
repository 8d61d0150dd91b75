"""The gateway side of the stale rule (alerting/rules/stale.py): what it keeps per gateway (its
outage, its burst of completeness gaps) and how those episodes say so in evidence. Gateways are
not machines: their alerts name the pseudo-asset plant/gateway/gateway/<gateway_id>, one signal
per kind of episode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alerting.evidence import iso, num
from alerting.rules.common import Parameters
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import AlertEvent, AssetPath

GATEWAY_AREA = "gateway"
"""Gateways are not machines: their alerts name plant/gateway/gateway/<gateway_id>."""
GATEWAY_SIGNAL = "gateway-status"
"""The outage episode: a death message, until the birth."""
GAP_SIGNAL = "gateway-sequence"
"""A burst of completeness gaps while the gateway is up."""
FLOW_SIGNAL = "data-flow"
"""Machines sent by the gateway that went silent together (stale_flows.py)."""

_EPOCH = datetime.min.replace(tzinfo=UTC)

Emit = Callable[[Transition, str, str, Parameters], AlertEvent]
"""A rule's `_emit`: the event of a transition from summary, condition and parameters."""


def gateway_key(plant: str, gateway_id: str) -> str:
    return f"{plant}/{gateway_id}"


def gateway_subject(plant: str, gateway_id: str, signal: str) -> Subject:
    asset = AssetPath(plant=plant, area=GATEWAY_AREA, line=GATEWAY_AREA, machine=gateway_id)
    return Subject(asset, signal)


@dataclass
class Burst:
    """Completeness gaps of a gateway close together: one episode."""

    first: datetime
    last: datetime
    gaps: int = 0
    batches_missing: int = 0


@dataclass
class GatewayRecord:
    plant: str
    gateway_id: str
    last_at: datetime
    """The newest status (down/up) accepted: older ones are out of order."""
    down_at: datetime | None = None
    reason: str = ""
    up_at: datetime | None = None
    gaps: int = 0
    batches_missing: int = 0
    suppressed: set[str] = field(default_factory=set)
    """Keys whose stale alert this outage suppressed."""
    burst: Burst | None = None

    def subject(self, signal: str) -> Subject:
        return gateway_subject(self.plant, self.gateway_id, signal)

    @property
    def key(self) -> str:
        return gateway_key(self.plant, self.gateway_id)


def outage_event(emit: Emit, found: Transition, gateway: GatewayRecord) -> AlertEvent:
    down_at = gateway.down_at or found.at
    params: Parameters = {
        "plant": gateway.plant,
        "gateway_id": gateway.gateway_id,
        "down_at": iso(down_at),
        "reason": gateway.reason[:200],
    }
    name = f"gateway {gateway.gateway_id} of {gateway.plant}"
    if found.raised:
        summary = f"{name} down: {gateway.reason or 'death message'}"
        condition = "gateway death message; silences of the plant suppressed while down"
        return emit(found, summary, condition, params)
    down_s = (found.at - down_at).total_seconds()
    params |= {
        "down_s": down_s,
        "gaps": gateway.gaps,
        "batches_missing": gateway.batches_missing,
        "suppressed_stale": len(gateway.suppressed),
    }
    summary = (
        f"{name} back after {num(down_s)} s ({gateway.gaps} gap(s), "
        f"{len(gateway.suppressed)} silence(s) suppressed)"
    )
    return emit(found, summary, "gateway birth message", params)


def burst_event(
    emit: Emit, found: Transition, gateway: GatewayRecord, burst: Burst, for_s: float
) -> AlertEvent:
    params: Parameters = {
        "plant": gateway.plant,
        "gateway_id": gateway.gateway_id,
        "gaps": burst.gaps,
        "batches_missing": burst.batches_missing,
        "first_gap_ts": iso(burst.first),
        "last_gap_ts": iso(burst.last),
        "for_s": for_s,
    }
    name = f"gateway {gateway.gateway_id} of {gateway.plant}"
    if found.raised:
        summary = f"{name}: {burst.batches_missing} batch(es) never arrived"
        return emit(found, summary, "a completeness gap while the gateway is up", params)
    summary = (
        f"{name}: no gap for {num(for_s)} s "
        f"({burst.gaps} gap(s), {burst.batches_missing} batch(es) missing)"
    )
    return emit(found, summary, f"no gap for >= {num(for_s)} s", params)


class Gateways:
    """The gateways of one stale rule: per gateway, one comms-loss episode per outage (death to
    birth) and per burst of completeness gaps; which plants have a gateway down (their silences
    are suppressed) and when a gateway of a plant last came back (its silences count from then).
    Status messages older than a gateway's last one are ignored and counted."""

    def __init__(self, rule: str, for_s: float, emit: Emit) -> None:
        self.for_s = for_s
        self.for_ = timedelta(seconds=for_s)
        self._emit = emit
        self._outages = Episodes(rule)
        self._bursts = Episodes(rule)
        self._records: dict[str, GatewayRecord] = {}
        self.down: dict[str, dict[str, GatewayRecord]] = {}
        """Per plant, its gateways that are down: their plant's silences are suppressed."""
        self.plant_up: dict[str, datetime] = {}
        """Per plant, when a gateway of it last came back: its silences count from then."""
        self.ignored_out_of_order = 0

    def suppress(self, plant: str, key: str) -> bool:
        """Whether a silence of `key` is suppressed by an outage of its plant (then recorded in
        the outage, for its clear)."""
        down = self.down.get(plant)
        for gateway in (down or {}).values():
            gateway.suppressed.add(key)
        return bool(down)

    def gateway_down(
        self, plant: str, gateway_id: str, at: datetime, reason: str = "", planned: bool = False
    ) -> list[AlertEvent]:
        """A gateway's death message (or other proof it is gone): one comms-loss episode, and
        the silences of its plant are suppressed until it is back."""
        gateway = self._gateway(plant, gateway_id)
        if at < gateway.last_at or gateway.down_at is not None:
            self.ignored_out_of_order += at < gateway.last_at
            return []
        gateway.last_at, gateway.down_at, gateway.reason = at, at, reason
        gateway.gaps, gateway.batches_missing = 0, 0
        gateway.suppressed = set()
        self.down.setdefault(plant, {})[gateway.key] = gateway
        if planned:
            return []  # stopped on purpose: nobody to page, the silences it causes are expected
        found = self._outages.observe(gateway.key, at, True, gateway.subject(GATEWAY_SIGNAL))
        return [] if found is None else [outage_event(self._emit, found, gateway)]

    def gateway_up(self, plant: str, gateway_id: str, at: datetime) -> list[AlertEvent]:
        """Its birth message: the outage clears; the plant's silences count from now."""
        gateway = self._gateway(plant, gateway_id)
        if at < gateway.last_at or gateway.down_at is None:
            self.ignored_out_of_order += at < gateway.last_at
            return []
        gateway.last_at, gateway.up_at = at, at
        self.down[plant].pop(gateway.key, None)
        self.plant_up[plant] = max(at, self.plant_up.get(plant, at))
        found = self._outages.end(gateway.key, at)
        events = [] if found is None else [outage_event(self._emit, found, gateway)]
        gateway.down_at = None
        return events

    def gap(
        self, plant: str, gateway_id: str, at: datetime, batches_missing: int
    ) -> list[AlertEvent]:
        """Batches of a gateway that never arrived (ingest's sequence-number ledger). During an
        outage, or within for_s of its end, the gap is the outage's: folded into its record."""
        gateway = self._gateway(plant, gateway_id)
        after_outage = gateway.up_at is not None and gateway.up_at <= at < gateway.up_at + self.for_
        if gateway.down_at is not None or after_outage:
            gateway.gaps += 1
            gateway.batches_missing += batches_missing
            return []
        burst = gateway.burst
        if burst is None:
            burst = gateway.burst = Burst(at, at)
        burst.gaps += 1
        burst.batches_missing += batches_missing
        burst.first, burst.last = min(burst.first, at), max(burst.last, at)
        found = self._bursts.observe(gateway.key, burst.first, True, gateway.subject(GAP_SIGNAL))
        return [] if found is None else [burst_event(self._emit, found, gateway, burst, self.for_s)]

    def _gateway(self, plant: str, gateway_id: str) -> GatewayRecord:
        key = gateway_key(plant, gateway_id)
        gateway = self._records.get(key)
        if gateway is None:
            gateway = self._records[key] = GatewayRecord(plant, gateway_id, _EPOCH)
        return gateway

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Close the gap bursts that ended (last gap + for_s) by `watermark`."""
        events = []
        for gateway in self._records.values():
            burst = gateway.burst
            if burst is not None and burst.last + self.for_ <= watermark:
                ended = self._bursts.end(gateway.key, burst.last + self.for_)
                if ended is not None:
                    events.append(burst_event(self._emit, ended, gateway, burst, self.for_s))
                gateway.burst = None
        return events
