"""What every rule is, the configuration every rule shares, and what the engine hands a rule
with each reading (its machine class and the machine's state, for gating)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from plantmesh.config import ConfigModel
from plantmesh.contracts import (
    AlertEvent,
    AlertEventKind,
    AssetPath,
    Evidence,
    Name,
    Quality,
    Reading,
    Severity,
)

StateValue = float | bool | str


class MachineStates:
    """The latest value of each gate signal (e.g. `running`) per machine, in event time: a rule
    gated on a state asks here whether the gate was open at the time of its reading. Also until
    when each machine reported at all (`seen`): silence of one of its signals means something
    else while its other signals still arrive."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._latest: dict[tuple[str, str], tuple[datetime, StateValue, datetime]] = {}
        """Per (machine, signal): the latest reading's time and value, and since when the
        value has been what it is."""

    def saw(self, machine: str, ts: datetime) -> None:
        """A reading of `machine` (its asset key) at `ts`, whatever its signal."""
        seen = self._seen.get(machine)
        if seen is None or ts > seen:
            self._seen[machine] = ts

    def seen(self, asset: AssetPath) -> datetime | None:
        """The newest source time of any reading of the machine: until when it reported."""
        return self._seen.get(asset.key)

    def update(self, reading: Reading) -> None:
        if reading.value is None:
            return  # a Bad reading says nothing of the state: the last known one stands
        key = (reading.asset.key, reading.signal)
        known = self._latest.get(key)
        if known is None:
            self._latest[key] = (reading.source_ts, reading.value, reading.source_ts)
        elif reading.source_ts >= known[0]:
            same = reading.value == known[1]
            since = known[2] if same else reading.source_ts
            self._latest[key] = (reading.source_ts, reading.value, since)

    def value(self, asset: AssetPath, signal: str) -> StateValue | None:
        known = self._latest.get((asset.key, signal))
        return None if known is None else known[1]

    def since(self, asset: AssetPath, signal: str) -> datetime | None:
        """Since when the signal has had its latest value (None: never seen)."""
        known = self._latest.get((asset.key, signal))
        return None if known is None else known[2]


@dataclass(frozen=True, slots=True)
class Context:
    """What the engine knows about a reading beyond the reading itself."""

    machine_class: str | None = None
    states: MachineStates | None = None
    gateway_id: str | None = None
    """The gateway that sent the reading's batch (None: not known, e.g. a reading fed alone)."""
    newest: datetime | None = None
    """The engine's newest event time, this reading included: as of when a late reading proves
    its series alive (the stale rule; None: not known)."""


NO_CONTEXT = Context()


class Rule(Protocol):
    """One alerting rule. It keeps its own per-series state and decides in event time (the
    readings' source_ts), so the outcome never depends on when a reading is processed."""

    @property
    def name(self) -> str: ...

    @property
    def signals(self) -> frozenset[str]:
        """The signal names this rule looks at; the engine routes only those readings to it."""
        ...

    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        """Feed one reading; return the alert events it causes (usually none)."""
        ...

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Event time has reached `watermark` on every series: decide what time alone decides
        (an on-delay that elapsed, a series gone quiet), without waiting for a next reading."""
        ...


@runtime_checkable
class GatewayRule(Protocol):
    """A rule that also hears about gateways: their death and birth messages (gateway.status)
    and the gaps ingest's ledger finds in their sequence numbers (telemetry.completeness)."""

    def gateway_down(
        self, plant: str, gateway_id: str, at: datetime, reason: str = "", planned: bool = False
    ) -> list[AlertEvent]: ...

    def gateway_up(self, plant: str, gateway_id: str, at: datetime) -> list[AlertEvent]: ...

    def gap(
        self, plant: str, gateway_id: str, at: datetime, batches_missing: int
    ) -> list[AlertEvent]: ...


class StateGate(ConfigModel):
    """Evaluate a rule only while the machine is in a state, e.g. running: a stopped machine
    does not page. A machine whose state signal was never seen counts as closed."""

    signal: Name = "running"
    equals: bool | float | str = True
    settle_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """Open only once the machine has been in the state this long: the warm-up after a start
    (bearings heating, pressure building) is not a fault. Not part of the rule's version while
    0, so gates written before it existed keep their versions."""

    @model_serializer(mode="wrap")
    def _omit_default_settle(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if not self.settle_s:
            data.pop("settle_s", None)
        return data


class RuleConfigBase(ConfigModel):
    """Keys common to every rule type: its name and issue type, what it matches, its gate and
    how important it is."""

    name: Name
    issue_type: Name
    """An id of the issue-type catalogue; the alert carries it, with its owner and response."""
    signal: Name
    plants: list[Name] = Field(default_factory=list)
    """Only these plants; empty means every plant."""
    machines: list[Name] = Field(default_factory=list)
    """Only these machine ids (the last segment of the asset path); empty means every machine."""
    machine_classes: list[Name] = Field(default_factory=list)
    """Only machines of these classes (from the asset registry); empty means every class."""
    gate: StateGate | None = None
    severity: Severity | None = None
    """Default: the issue type's priority in the catalogue."""

    @property
    def version(self) -> str:
        """A hash of the whole configuration: a changed rule is a new version."""
        text = self.model_dump_json(exclude_none=False)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class SeriesFilter:
    """The match part of a rule config, precomputed for the hot path."""

    _everywhere = False
    """No plant, machine or class limits (set per instance; the class default is for filters
    restored from a checkpoint written before it existed: they take the full check)."""

    def __init__(self, config: RuleConfigBase) -> None:
        self.signal = config.signal
        self._plants = frozenset(config.plants)
        self._machines = frozenset(config.machines)
        self._classes = frozenset(config.machine_classes)
        self._gate = config.gate
        self._everywhere = not (self._plants or self._machines or self._classes)

    def matches(self, reading: Reading, context: Context = NO_CONTEXT) -> bool:
        if reading.signal != self.signal:
            return False
        return self._everywhere or (
            (not self._plants or reading.asset.plant in self._plants)
            and (not self._machines or reading.asset.machine in self._machines)
            and (not self._classes or context.machine_class in self._classes)
        )

    def gate_open(self, asset: AssetPath, context: Context, at: datetime | None = None) -> bool:
        """Whether the gate is open for a reading of `asset` at `at` (settled by then)."""
        gate = self._gate
        if gate is None:
            return True
        states = context.states
        if states is None or states.value(asset, gate.signal) != gate.equals:
            return False
        if not gate.settle_s:
            return True
        since = states.since(asset, gate.signal)
        return (
            at is not None and since is not None and (at - since).total_seconds() >= gate.settle_s
        )


@dataclass(frozen=True)
class RuleIdentity:
    """Who decided, stamped on every event a rule makes."""

    name: str
    issue_type: str
    version: str
    severity: Severity

    @classmethod
    def of(cls, config: RuleConfigBase, default_severity: Severity) -> RuleIdentity:
        severity = config.severity if config.severity is not None else default_severity
        return cls(config.name, config.issue_type, config.version, severity)

    def event(
        self,
        kind: AlertEventKind,
        alert_id: str,
        asset: AssetPath,
        signal: str,
        at: datetime,
        evidence: Evidence,
        machine_class: str | None,
        severity: Severity | None = None,
    ) -> AlertEvent:
        return AlertEvent(
            alert_id=alert_id,
            kind=kind,
            issue_type=self.issue_type,
            rule=self.name,
            rule_version=self.version,
            machine_class=machine_class,
            asset=asset,
            signal=signal,
            severity=severity or self.severity,
            at=at,
            evidence=evidence,
        )


def is_bad(reading: Reading) -> bool:
    """Bad by either the quality field or the OPC UA status code it was derived from (its two
    top bits are the severity: 0b10 and 0b11 are Bad, OPC UA Part 4)."""
    return reading.quality is Quality.BAD or reading.status_code >= 0x80000000


def numeric(reading: Reading) -> float | None:
    """The reading's value as a number, or None for booleans and text."""
    value = reading.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
