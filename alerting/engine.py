"""The evaluate stage: every reading through every rule that looks at its signal, and event time
moving on through every rule. No Kafka, no clock, no I/O: the same readings in give the same
alert events out.

Event time: the watermark is the newest source time seen minus `lateness_s`; `advance()` hands
it to every rule, so conditions that time alone decides (an on-delay on a signal that reports
only on change, a series gone quiet) are decided without waiting for another reading.

Gateway sessions: a death message counts only for the session the engine last saw alive (its
birth, or a health message, which gateways send every few seconds). The broker hands over each
gateway's retained status whenever the bridge (re)subscribes, often the death of a session long
gone: that is not news, and is only counted (`ignored_stale_deaths`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from alerting.catalogue import Catalogue
from alerting.dedupe import SeenBatches
from alerting.rules import Rule, RuleConfig, build_rule
from alerting.rules.base import Context, GatewayRule, MachineStates
from alerting.rules.stale_gateways import GATEWAY_AREA
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


@dataclass(slots=True)
class _Session:
    """The session of a gateway the engine last saw alive, and as of when."""

    session_id: str
    at: datetime
    down_at: datetime | None = None
    """When a death of this session was passed on; None once the gateway is seen alive after."""


def rule_version(rule: Rule) -> str | None:
    """The version (configuration hash) of a rule built from a configuration."""
    config = getattr(rule, "config", None)
    return None if config is None else str(config.version)


def _target_classes(rule: Rule) -> frozenset[str]:
    """The machine classes a rule's configuration targets (empty: every class)."""
    config = getattr(rule, "config", None)
    return frozenset(getattr(config, "machine_classes", ()) or ())


class Engine:
    def __init__(
        self, rules: Iterable[Rule], *, gates: Iterable[str] = (), lateness_s: float = 0.0
    ) -> None:
        self.rules = list(rules)
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        self._index()
        self.gate_signals = frozenset(gates)
        self.states = MachineStates()
        self.lateness = timedelta(seconds=lateness_s)
        self.newest: datetime | None = None
        """The newest source time seen: the watermark is this minus the lateness."""
        self.rule_errors = 0
        self._failed: set[tuple[str, str]] = set()
        self._sessions: dict[tuple[str, str], _Session] = {}
        """Per (plant, gateway_id), the session last seen alive."""
        self.ignored_stale_deaths = 0
        """Death messages of a session other than the one last seen alive (retained, old)."""
        self.seen = SeenBatches()
        """Batches already evaluated, by gateway, session and sequence number."""
        self._context = Context()
        """The context of the last reading, reused while it still holds."""
        self.gateway_of: dict[str, str] = {}
        """Per machine (asset key), the gateway its readings last came through: every event
        names it, so a gateway's comms loss can suppress its machines' alarms downstream."""

    def _index(self) -> None:
        """The routing tables of the rule list (again after adopt() swapped rules in)."""
        self._by_signal: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for signal in rule.signals:
                self._by_signal[signal].append(rule)
        self._routes: dict[tuple[str, str | None], list[Rule]] = {}
        self.gateway_rules = [rule for rule in self.rules if isinstance(rule, GatewayRule)]

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

    def process(
        self, reading: Reading, machine_class: str | None = None, gateway_id: str | None = None
    ) -> list[AlertEvent]:
        """One reading through the rules of its signal; `gateway_id`: the gateway that sent it."""
        return self._run((reading,), machine_class, gateway_id)

    def _run(
        self, readings: Iterable[Reading], machine_class: str | None, gateway_id: str | None
    ) -> list[AlertEvent]:
        """Readings, in order, through the rules of their signals: the engine's hot path, so
        what stays the same over a batch is looked up once, and the rule call is inlined rather
        than made through _guarded."""
        events: list[AlertEvent] = []
        gates, states, routes, via = self.gate_signals, self.states, self._routes, self.gateway_of
        for reading in readings:
            signal, ts = reading.signal, reading.source_ts
            if signal in gates:
                states.update(reading)
            machine = reading.asset.key
            states.saw(machine, ts)
            if gateway_id is not None:
                via[machine] = gateway_id
            if self.newest is None or ts > self.newest:
                self.newest = ts
            context = self._context
            if (
                context.newest != self.newest
                or context.machine_class != machine_class
                or context.gateway_id != gateway_id
                or context.states is not states
            ):  # a batch's readings share one context unless event time moves on
                context = self._context = Context(machine_class, states, gateway_id, self.newest)
            rules = routes.get((signal, machine_class))
            if rules is None:
                rules = self._route(signal, machine_class)
            for rule in rules:
                try:
                    made = rule.evaluate(reading, context)
                except Exception as exc:
                    self._failed_once(rule, exc)
                    continue
                if made:
                    events.extend(self._stamped(made, gateway_id))
        return events

    def _route(self, signal: str, machine_class: str | None) -> list[Rule]:
        """The rules of a signal that can match a machine of this class, decided once per pair:
        most rules target a few classes, and asking each to refuse the others cost a sixth of
        the engine's time."""
        key = (signal, machine_class)
        rules = self._routes.get(key)
        if rules is None:
            rules = self._routes[key] = [
                rule
                for rule in self._by_signal.get(signal, ())
                if not (classes := _target_classes(rule)) or machine_class in classes
            ]
        return rules

    def process_batch(
        self, batch: ReadingBatch, machine_class: str | None = None
    ) -> list[AlertEvent]:
        """A batch seen before (same gateway, session and sequence number) changes nothing."""
        if not self.seen.first_time(batch.gateway_id, batch.session_id, batch.seq):
            return []
        return self._run(batch.readings, machine_class, batch.gateway_id)

    def gateway_status(self, status: GatewayStatus, at: datetime) -> list[AlertEvent]:
        """A gateway's birth, death or health, at `at` (for a death: when it became known; an
        MQTT last will carries the time it was set, at connect).

        Birth and health make their session the one seen alive (unless older than the message
        that last did). A death of that session is passed on (`gateway_down`); of any other
        session (or of a gateway never seen alive) it is ignored and counted. A birth is passed
        on (`gateway_up`) as it comes; a health message only when it is the first sign of life
        after a death passed on (not older than the death, whichever its session: a birth that
        went missing), else it changes nothing in the rules."""
        key = (status.plant, status.gateway_id)
        seen = self._sessions.get(key)
        if status.state is GatewayState.DEATH:
            if seen is None or seen.session_id != status.session_id:
                self.ignored_stale_deaths += 1
                return []
            seen.down_at = seen.down_at or at
            return self._forward(status, at, down=True)
        if seen is not None and at < seen.at:
            return []  # older than the last sign of life: out of order
        down_at = None if seen is None else seen.down_at
        back = down_at is not None and at >= down_at
        self._sessions[key] = _Session(status.session_id, at, None if back else down_at)
        if status.state is GatewayState.BIRTH or back:
            return self._forward(status, at, down=False)
        return []

    def _forward(self, status: GatewayStatus, at: datetime, *, down: bool) -> list[AlertEvent]:
        """The gateway's death (down) or its return to every gateway rule."""
        events: list[AlertEvent] = []
        kind = "planned stop" if status.planned else "death message"
        reason = f"{kind} of session {status.session_id}"
        for rule in self.gateway_rules:
            if down:
                call = partial(
                    rule.gateway_down,
                    status.plant,
                    status.gateway_id,
                    at,
                    reason,
                    status.planned,
                )
            else:
                call = partial(rule.gateway_up, status.plant, status.gateway_id, at)
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

    def adopt(self, previous: Engine) -> list[str]:
        """Continue from `previous` (an engine restored from a checkpoint): its event time,
        machine states, gateway sessions and seen batches, and the state of every rule whose
        name and version are unchanged. Returns the names of the rules that start afresh (new,
        or changed since the checkpoint: their old state belongs to another configuration)."""
        self.newest = previous.newest
        self.states = previous.states
        self._sessions = previous._sessions
        self.seen = previous.seen
        self.ignored_stale_deaths = previous.ignored_stale_deaths
        self.gateway_of = getattr(previous, "gateway_of", {})  # checkpoints before it: none
        kept = {(rule.name, rule_version(rule)): rule for rule in previous.rules}
        fresh: list[str] = []
        for i, rule in enumerate(self.rules):
            old = kept.get((rule.name, rule_version(rule)))
            if old is None:
                fresh.append(rule.name)
            else:
                self.rules[i] = old
        self._index()
        return fresh

    def _guarded(self, rule: Rule, call: Callable[[], list[AlertEvent]]) -> list[AlertEvent]:
        try:
            return self._stamped(call())
        except Exception as exc:
            self._failed_once(rule, exc)
            return []

    def _stamped(self, events: list[AlertEvent], gateway_id: str | None = None) -> list[AlertEvent]:
        """The events, each naming the gateway of its machine (a gateway's own events: itself)."""
        if not events:
            return events
        stamped = []
        for event in events:
            if event.gateway_id is None:
                asset = event.asset
                found = gateway_id or (
                    asset.machine if asset.area == GATEWAY_AREA else self.gateway_of.get(asset.key)
                )
                if found is not None:
                    event = event.model_copy(update={"gateway_id": found})
            stamped.append(event)
        return stamped

    def _failed_once(self, rule: Rule, exc: Exception) -> None:
        """A rule bug must not stop the other rules nor the service; say so once per kind
        (called from an except block: the log carries the traceback)."""
        self.rule_errors += 1
        key = (rule.name, type(exc).__name__)
        if key not in self._failed:
            self._failed.add(key)
            log.exception("rule %s failed", rule.name)
