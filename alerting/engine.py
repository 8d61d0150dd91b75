"""The evaluate stage: every reading through every rule that looks at its signal. No Kafka, no
clock, no I/O: the same readings in give the same alert events out."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from alerting.rules import Rule, RuleConfig, build_rule
from plantmesh.contracts import AlertEvent, Reading, ReadingBatch

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        self._by_signal: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for signal in rule.signals:
                self._by_signal[signal].append(rule)
        self.rule_errors = 0
        self._failed: set[tuple[str, str]] = set()

    @classmethod
    def from_config(cls, configs: Iterable[RuleConfig]) -> Engine:
        return cls(build_rule(config) for config in configs)

    def process(self, reading: Reading) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for rule in self._by_signal.get(reading.signal, ()):
            try:
                events.extend(rule.evaluate(reading))
            except Exception as exc:
                # A rule bug must not stop the other rules nor the service; say so once per kind.
                self.rule_errors += 1
                key = (rule.name, type(exc).__name__)
                if key not in self._failed:
                    self._failed.add(key)
                    log.exception("rule %s failed on %s", rule.name, reading.series_key)
        return events

    def process_batch(self, batch: ReadingBatch) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for reading in batch.readings:
            events.extend(self.process(reading))
        return events
