"""The evaluate stage: every reading through every rule that looks at its signal, and event time
moving on through every rule. No Kafka, no clock, no I/O: the same readings in give the same
alert events out.

Event time: the watermark is the newest source time seen minus `lateness_s`; `advance()` hands
it to every rule, so conditions that time alone decides (an on-delay on a signal that reports
only on change, a series gone quiet) are decided without waiting for another reading."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

from alerting.catalogue import Catalogue
from alerting.rules import Rule, RuleConfig, build_rule
from alerting.rules.base import Context, GatewayRule, MachineStates
from plantmesh.contracts import (
    AlertEvent,
    CompletenessEvent,
    CompletenessEventKind,
    GatewayState,
    GatewayStatus,
    Reading,
    ReadingBatch,
)

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self, rules: Iterable[Rule], *, gates: Iterable[str] = (), lateness_s: float = 0.0
    ) -> None:
        self.rules = list(rules)
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        self._by_signal: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for signal in rule.signals:
                self._by_signal[signal].append(rule)
        self.gateway_rules = [rule for rule in self.rules if isinstance(rule, GatewayRule)]
        self.gate_signals = frozenset(gates)
        self.states = MachineStates()
        self.lateness = timedelta(seconds=lateness_s)
        self.newest: datetime | None = None
        """The newest source time seen: the watermark is this minus the lateness."""
        self.rule_errors = 0
        self._failed: set[tuple[str, str]] = set()

    @classmethod
    def from_config(
        cls, configs: Iterable[RuleConfig], catalogue: Catalogue, *, lateness_s: float = 0.0
    ) -> Engine:
        configs = list(configs)
        gates = {c.gate.signal for c in configs if c.gate is not None}
        rules = [build_rule(config, catalogue) for config in configs]
        return cls(rules, gates=gates, lateness_s=lateness_s)

    @property
    def watermark(self) -> datetime | None:
        return None if self.newest is None else self.newest - self.lateness

    def process(self, reading: Reading, machine_class: str | None = None) -> list[AlertEvent]:
        if reading.signal in self.gate_signals:
            self.states.update(reading)
        if self.newest is None or reading.source_ts > self.newest:
            self.newest = reading.source_ts
        context = Context(machine_class, self.states)
        events: list[AlertEvent] = []
        for rule in self._by_signal.get(reading.signal, ()):
            events.extend(self._guarded(rule, partial(rule.evaluate, reading, context)))
        return events

    def process_batch(
        self, batch: ReadingBatch, machine_class: str | None = None
    ) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for reading in batch.readings:
            events.extend(self.process(reading, machine_class))
        return events

    def gateway_status(self, status: GatewayStatus, at: datetime) -> list[AlertEvent]:
        """A gateway's birth or death, at `at` (for a death: when it became known; an MQTT last
        will carries the time it was set, at connect). Health messages change nothing here."""
        events: list[AlertEvent] = []
        for rule in self.gateway_rules:
            if status.state is GatewayState.DEATH:
                reason = f"death message of session {status.session_id}"
                call = partial(rule.gateway_down, status.plant, status.gateway_id, at, reason)
            elif status.state is GatewayState.BIRTH:
                call = partial(rule.gateway_up, status.plant, status.gateway_id, at)
            else:
                continue
            events.extend(self._guarded(rule, call))
        return events

    def completeness(self, event: CompletenessEvent) -> list[AlertEvent]:
        """A gap ingest's ledger found in a gateway's sequence numbers."""
        if event.kind is not CompletenessEventKind.GAP_OPEN:
            return []
        events: list[AlertEvent] = []
        for rule in self.gateway_rules:
            call = partial(
                rule.gap, event.plant, event.gateway_id, event.detected_at, event.missing_batches
            )
            events.extend(self._guarded(rule, call))
        return events

    def advance(self, watermark: datetime | None = None) -> list[AlertEvent]:
        """Let event time reach `watermark` (default: the engine's own) in every rule."""
        watermark = watermark or self.watermark
        if watermark is None:
            return []
        events: list[AlertEvent] = []
        for rule in self.rules:
            events.extend(self._guarded(rule, partial(rule.tick, watermark)))
        return events

    def _guarded(self, rule: Rule, call: Callable[[], list[AlertEvent]]) -> list[AlertEvent]:
        try:
            return call()
        except Exception as exc:
            # A rule bug must not stop the other rules nor the service; say so once per kind.
            self.rule_errors += 1
            key = (rule.name, type(exc).__name__)
            if key not in self._failed:
                self._failed.add(key)
                log.exception("rule %s failed", rule.name)
            return []
