"""Stale-data rule (issue type comms-loss): no data from a series, a machine or a gateway.

Per series (`scope: series`, key asset + signal) or per machine (`scope: machine`, key asset:
any of `signals` counts as data). Silence is decided on tick(watermark): a key whose last
reading is at `last` raises at exactly last + for_s once the watermark reaches it, with no
reading needed; the next reading ends the silence and clears (after off_delay_s, through
Episodes). A key never seen is never stale: we cannot know it exists. Readings with the OPC UA
status BadCommunicationError do not count as data (they say the source link is down); other
bad-quality readings do (they prove delivery; sensor faults are another rule's business).
Gate: a key whose machine was not in the gate state as of its last reading does not go stale
(a stopped machine may well stop reporting). A reading behind the watermark still ends a
silence, no earlier than the silence was raised.

Late but alive: a reading not newer than the key's last one (a PLC clock gone back) is ignored by
value rules, but here it proves the key alive if the gateway read it after the key's newest
reading (its gateway_ts is newer): then it counts as data as of the engine's newest event time
(Context.newest: deterministic for a given input order), and is counted (`late_but_alive`). Any
other reading not newer than the last (a duplicate, a replay, a sibling signal of the same
instant; or no Context.newest) is ignored and counted as out of order (for a machine, only one
older than its last: its signals share times).

Folding (a protocol source gone while its gateway lives: an OPC UA server down, a Modbus device
silent): a key whose batch named its gateway (Context.gateway_id) is decided with the other
silences of that gateway's keys (stale_flows.py). Its silence is due at d = last + for_s:
- if the gateway's data-flow episode (asset: the gateway's pseudo-asset, signal `data-flow`) is
  open (raised or clearing), the silence joins it;
- else if a key of another machine of the gateway is due within for_s after the earliest due
  silence d0 of the gateway (d <= d0 + for_s), all of them fold into one new data-flow episode,
  raised at the due time of the first such other machine; later silences of the gateway join it;
- else the earliest is a silence of its own machine (or series), raised at d0 as always, once
  the watermark reaches d0 + for_s (held until then: another machine could still join it).
A held silence whose data comes back before the hold ends is decided at once (the silences of
its gateway due by then), raised and cleared. The data-flow episode names its silent keys (count,
names, last seen) and clears when all of them have data again (after off_delay_s). Readings
without a gateway (fed alone, a backtest of bare readings) are never held nor folded.

Gateways (fed by the service from gateway.status): `gateway_down` raises one comms-loss episode
per gateway, `gateway_up` clears it. While any gateway of a plant is down, silence of that
plant's series and machines does not raise: a comms loss is one alert, not a cascade. This is
by plant, an approximation: a plant with several gateways suppresses all of them while one is
down. After a gateway is back, its plant's silences count from its return (it gets for_s to
flush and resume). Suppression is decided when the silence is (on tick): a silence raised
before the death message arrived stays raised. Older gateway messages than its last are ignored.
Completeness gaps (`gap`): while a gateway is down, or within for_s of its return, a gap is the
outage's own consequence and folds into the gateway's record (reported in its clear, or counted
when it comes after); otherwise one comms-loss episode per gateway burst of gaps, raised at the
first gap and cleared at last gap + for_s on tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from alerting.evidence import iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, SeriesFilter
from alerting.rules.common import (
    HISTORY_MARGIN_S,
    NEVER,
    NonNegativeFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    gate_parameters,
    sooner,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from alerting.rules.stale_flows import DataFlows, Silence
from alerting.rules.stale_gateways import (
    FLOW_SIGNAL,
    GAP_SIGNAL,
    GATEWAY_AREA,
    GATEWAY_SIGNAL,
    Gateways,
    gateway_key,
)
from plantmesh.contracts import (
    STATUS_BAD_COMMUNICATION_ERROR,
    AlertEvent,
    Name,
    Reading,
)

__all__ = ["FLOW_SIGNAL", "GAP_SIGNAL", "GATEWAY_AREA", "GATEWAY_SIGNAL", "StaleRule"]

_EPOCH = datetime.min.replace(tzinfo=UTC)


class StaleRuleConfig(RuleConfigBase):
    type: Literal["stale"]
    for_s: PositiveFloat
    """How long, in source time, without data before the key is stale. Make it longer than a
    gateway death takes to arrive (MQTT keepalive x 1.5), so an outage suppresses the cascade."""
    scope: Literal["series", "machine"] = "series"
    """`series`: each signal on its own; `machine`: any of the signals counts for its machine."""
    signals: list[Name] = Field(default_factory=list)
    """More signals that count as data (with `signal`); default: `signal` only."""
    off_delay_s: NonNegativeFloat = 0.0
    """How long data must be back before the alert clears (silent again: it stays raised)."""

    @model_validator(mode="after")
    def _signals_unique(self) -> StaleRuleConfig:
        if len(set(self.signals)) != len(self.signals):
            raise ValueError("signals lists a signal twice")
        return self

    @property
    def all_signals(self) -> frozenset[str]:
        return frozenset({self.signal, *self.signals})


@dataclass
class _Key:
    subject: Subject
    last_ts: datetime
    gate_open: bool
    gateway_ts: datetime
    """The newest gateway time of its readings: a late reading read after it is new data."""
    gateway: str | None = None
    """plant/gateway_id of the gateway that sent its newest reading (None: not known)."""
    silent_since: datetime | None = None  # the last reading before the silence (evidence)
    flow: str | None = None  # the gateway whose data-flow episode this key's silence joined


class StaleRule(SeriesRule[StaleRuleConfig]):
    _next_due: datetime | None = None
    """No key is due before this (ticks before it skip the keys); None: look (one is due, a
    gateway changed, or a rule restored from an older checkpoint)."""

    def __init__(self, config: StaleRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self.signals = config.all_signals
        self._filters = {
            s: SeriesFilter(config.model_copy(update={"signal": s})) for s in self.signals
        }
        self._machine = config.scope == "machine"
        self.for_ = timedelta(seconds=config.for_s)
        self._episodes = Episodes(config.name, off_delay_s=config.off_delay_s)
        self._keys: dict[str, _Key] = {}
        self._gateways = Gateways(config.name, config.for_s, self._emit)
        self._flows = DataFlows(config.name, config.for_s, config.off_delay_s, config.scope)
        self._watermark = _EPOCH
        """The newest watermark ticked: a silence held by it is decided early if it ends."""
        self.ignored_comms_error = 0
        self.late_but_alive = 0
        """Readings not newer than their key's last that still proved it alive (clock skew)."""

    @property
    def history_s(self) -> float:
        """Input a replay needs before an episode: a silence lasts for_s."""
        return self.config.for_s + HISTORY_MARGIN_S

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        filter_ = self._filters.get(reading.signal)
        if filter_ is None or not filter_.matches(reading, context):
            return []
        if reading.status_code == STATUS_BAD_COMMUNICATION_ERROR:
            self.ignored_comms_error += 1
            return []
        key = reading.asset.key if self._machine else reading.series_key
        gate_open = filter_.gate_open(reading.asset, context, reading.source_ts)
        sender = context.gateway_id
        gateway = None if sender is None else gateway_key(reading.asset.plant, sender)
        state = self._keys.get(key)
        if state is None:
            signal = self.config.signal if self._machine else reading.signal
            subject = Subject(reading.asset, signal, context.machine_class)
            ts, gateway_ts = reading.source_ts, reading.gateway_ts
            self._keys[key] = _Key(subject, ts, gate_open, gateway_ts, gateway)
            self._due_by(ts + self.for_)
            return []
        alive_at = self._alive_at(reading, state, context.newest)
        if alive_at is None:
            return []
        events = self._decide_held(key, state) + self._resume(key, state, alive_at)
        state.last_ts, state.gate_open = alive_at, gate_open
        state.gateway_ts = max(state.gateway_ts, reading.gateway_ts)
        state.gateway = gateway or state.gateway
        self._due_by(self._due(state))
        return events

    def _due_by(self, due: datetime | None) -> None:  # None: dues changed, not known when
        self._next_due = None if due is None else sooner(self._next_due, due)

    def _alive_at(self, reading: Reading, state: _Key, newest: datetime | None) -> datetime | None:
        """As of when a reading proves its key alive: its source time when newer than the key's
        last. One not newer (a PLC clock gone back) that the gateway read after the key's newest
        reading is new data too: alive as of the engine's newest event time (`late_but_alive`).
        The rest (a duplicate, a replay, a sibling signal of the same instant) change nothing."""
        ts = reading.source_ts
        if ts > state.last_ts:
            return ts
        if newest is not None and newest > state.last_ts and reading.gateway_ts > state.gateway_ts:
            self.late_but_alive += 1
            return newest
        # The signals of one machine share source times: only a series' repeat is late.
        self.ignored_out_of_order += not self._machine or ts < state.last_ts
        return None

    def _resume(self, key: str, state: _Key, ts: datetime) -> list[AlertEvent]:
        """Data at `ts` ends the key's silence: it leaves its data-flow episode, or its own alert
        clears, no earlier than it was raised (a reading behind the watermark)."""
        if state.flow is not None:
            gateway, state.flow = state.flow, None
            return self._flows.back(self._emit, gateway, key, ts)
        episode = self._episodes.get(key)
        if episode is None or episode.raised_at is None:
            return []
        found = self._episodes.observe(key, max(ts, episode.raised_at), False, state.subject)
        return [] if found is None else [self._key_event(found, state)]

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Raise the keys silent for for_s by `watermark` (at last reading + for_s), or fold
        them into their gateway's data-flow episode; complete the clears whose off-delay
        elapsed, close the gap bursts that ended."""
        self._watermark = max(self._watermark, watermark)
        events: list[AlertEvent] = []
        held: dict[str, list[tuple[datetime, str]]] = {}
        if self._next_due is None or watermark >= self._next_due:
            for key, state in self._keys.items():
                events.extend(self._tick_key(key, state, watermark, held))
            for gateway in sorted(held):
                events.extend(self._decide(gateway, sorted(held[gateway]), watermark - self.for_))
            self._next_due = self._next_look(watermark)
        for found in self._episodes.tick(watermark):
            events.append(self._key_event(found, self._keys[self._key_of(found.episode.subject)]))
        events.extend(self._flows.tick(self._emit, watermark))
        return events + self._gateways.tick(watermark)

    def _next_look(self, watermark: datetime) -> datetime | None:
        """When a tick must look at the keys again: the earliest due of a key a tick acts on;
        None (every tick) while one is due already (held, raised or suppressed)."""
        dues = [self._due(s) for s in self._keys.values() if s.gate_open and s.flow is None]
        return NEVER if not dues else None if min(dues) <= watermark else min(dues)

    def _due(self, state: _Key) -> datetime:
        """When the key's silence reaches for_s (counted from its plant's last gateway return)."""
        plant_up = self._gateways.plant_up.get(state.subject.asset.plant, state.last_ts)
        return max(state.last_ts, plant_up) + self.for_

    def _tick_key(
        self,
        key: str,
        state: _Key,
        watermark: datetime,
        held: dict[str, list[tuple[datetime, str]]],
    ) -> list[AlertEvent]:
        """A key silent by `watermark`: its own alert, suppressed by an outage of its plant, or
        (its gateway known) added to `held`, its gateway's silences to decide together."""
        due = self._due(state)
        if due > watermark or not state.gate_open or state.flow is not None:
            return []
        events = self._clear_before(key, state, due)
        if not self._episodes.active(key):
            if self._gateways.suppress(state.subject.asset.plant, key):
                return events
            if state.gateway is not None:
                held.setdefault(state.gateway, []).append((due, key))
                return events
        return events + self._raise_key(key, state, due)

    def _clear_before(self, key: str, state: _Key, due: datetime) -> list[AlertEvent]:
        """Clearing: the off-delay may have completed before the silence came back."""
        episode = self._episodes.get(key)
        if episode is None or episode.stopped_ts is None:
            return []
        cleared_at = episode.stopped_ts + self._episodes.off_delay
        if cleared_at >= due:
            return []
        found = self._episodes.observe(key, cleared_at, False, state.subject)
        return [] if found is None else [self._key_event(found, state)]

    def _raise_key(self, key: str, state: _Key, due: datetime) -> list[AlertEvent]:
        found = self._episodes.observe(key, due, True, state.subject)
        if found is None:
            return []
        state.silent_since = state.last_ts
        return [self._key_event(found, state)]

    def _key_of(self, subject: Subject) -> str:
        return subject.asset.key if self._machine else subject.series_key

    # --- folding: the silences of one gateway's machines ----------------------------------------
    def _decide(
        self, gateway: str, silences: list[tuple[datetime, str]], decide_by: datetime
    ) -> list[AlertEvent]:
        """The undecided silences of one gateway's keys, (due, key) in order: into the gateway's
        data-flow episode if it is open, or if another machine's silence is due within for_s of
        the first; else the first is its own alert once due by `decide_by`, or all wait."""
        events: list[AlertEvent] = []
        while silences and not self._flows.active(gateway):
            first_due, first = silences[0]
            machine = self._keys[first].subject.asset.key
            window = first_due + self.for_
            partner = next(
                (
                    d
                    for d, k in silences
                    if d <= window and self._keys[k].subject.asset.key != machine
                ),
                None,
            )
            if partner is not None:
                return events + self._fold(gateway, silences, partner)
            if first_due > decide_by:
                return events  # held: a silence of another machine may still come within for_s
            events += self._raise_key(first, self._keys[first], first_due)
            silences = silences[1:]
        return events + (self._fold(gateway, silences, silences[0][0]) if silences else [])

    def _fold(
        self, gateway: str, silences: list[tuple[datetime, str]], at: datetime
    ) -> list[AlertEvent]:
        entries = []
        for due, key in silences:
            state = self._keys[key]
            state.flow, state.silent_since = gateway, state.last_ts
            entries.append(Silence(key, state.last_ts, due))
        return self._flows.join(self._emit, gateway, entries, at)

    def _held_due(self, key: str, state: _Key) -> datetime | None:
        """The due time of a silence of a key with a known gateway, undecided (held) at the last
        tick; None if there is none."""
        due = self._due(state)
        if state.gateway is None or state.flow is not None or due > self._watermark:
            return None
        plant = state.subject.asset.plant
        if not state.gate_open or self._episodes.active(key) or self._gateways.down.get(plant):
            return None
        return due

    def _decide_held(self, key: str, state: _Key) -> list[AlertEvent]:
        """Data is back for a key whose silence was held: its gateway's silences up to it are
        decided now, as the tick at the end of its hold would have."""
        due = self._held_due(key, state)
        if due is None or state.gateway is None:
            return []
        silences = []
        for other, other_state in self._keys.items():
            other_due = self._held_due(other, other_state)
            if other_due is not None and other_state.gateway == state.gateway:
                silences.append((other_due, other))
        decide_by = max(due, self._watermark - self.for_)
        return self._decide(state.gateway, sorted(silences), decide_by)

    # --- gateways (stale_gateways.py) ------------------------------------------------------------
    def gateway_down(
        self, plant: str, gateway_id: str, at: datetime, reason: str = "", planned: bool = False
    ) -> list[AlertEvent]:
        """A gateway's death message (or other proof it is gone): one comms-loss episode, and
        the silences of its plant are suppressed until it is back. A planned stop pages no one
        and still suppresses the silences it causes."""
        self._due_by(None)
        return self._gateways.gateway_down(plant, gateway_id, at, reason, planned)

    def gateway_up(self, plant: str, gateway_id: str, at: datetime) -> list[AlertEvent]:
        """Its birth message: the outage clears; the plant's silences count from now."""
        self._due_by(None)
        return self._gateways.gateway_up(plant, gateway_id, at)

    def gap(
        self, plant: str, gateway_id: str, at: datetime, batches_missing: int
    ) -> list[AlertEvent]:
        """Batches of a gateway that never arrived (ingest's sequence-number ledger)."""
        self._due_by(None)
        return self._gateways.gap(plant, gateway_id, at, batches_missing)

    # --- evidence ---------------------------------------------------------------------------------
    def _key_event(self, found: Transition, state: _Key) -> AlertEvent:
        last_seen = state.silent_since or state.last_ts
        params: Parameters = {
            "scope": self.config.scope,
            "for_s": self.config.for_s,
            "last_seen_ts": iso(last_seen),
        }
        if self._machine:
            params["signals"] = ",".join(sorted(self.signals))
        params |= gate_parameters(self.config)
        what = state.subject.asset.key if self._machine else state.subject.series_key
        condition = f"no reading for >= {num(self.config.for_s)} s"
        if found.raised:
            silence_s = (found.at - last_seen).total_seconds()
            params["silence_s"] = silence_s
            summary = f"no data from {what} for {num(silence_s)} s (since {iso(last_seen)})"
            return self._emit(found, summary, condition, params)
        resumed = found.episode.stopped_ts or found.at
        silence_s = (resumed - last_seen).total_seconds()
        params |= {
            "silence_s": silence_s,
            "resumed_ts": iso(resumed),
            "raised_at": iso(found.episode.raised_at or found.at),
            "off_delay_s": self.config.off_delay_s,
        }
        summary = f"data from {what} back at {iso(resumed)} after {num(silence_s)} s"
        return self._emit(found, summary, f"a reading, then {condition[3:]}", params)
