"""Stale-data rule (issue type comms-loss): no data from a series, a machine or a gateway.

Per series (`scope: series`, key asset + signal) or per machine (`scope: machine`, key asset:
any of `signals` counts as data). Silence is decided on tick(watermark): a key whose last
reading is at `last` raises at exactly last + for_s once the watermark reaches it, with no
reading needed; the next reading ends the silence and clears (after off_delay_s, through
Episodes). A key never seen is never stale: we cannot know it exists. Readings with the OPC UA
status BadCommunicationError do not count as data (they say the source link is down); other
bad-quality readings do (they prove delivery; sensor faults are another rule's business).
Gate: a key whose machine was not in the gate state as of its last reading does not go stale
(a stopped machine may well stop reporting). A reading not newer than the key's last one is
ignored and counted (for a machine, only one older than its last: its signals share times); one
behind the watermark still ends a silence, no earlier than the silence was raised.

Gateways (fed by the service from gateway.status): `gateway_down` raises one comms-loss episode
per gateway, `gateway_up` clears it. While any gateway of a plant is down, silence of that
plant's series and machines does not raise: a comms loss is one alert, not a cascade. This is
by plant, an approximation: a Reading does not say which gateway carried it, so a plant with
several gateways suppresses all of them while one is down. After a gateway comes back, the
plant's silences count from its return (the gateway gets for_s to flush and resume).
Suppression is decided when the silence is (on tick): a silence raised before the death message
arrived stays raised. Gateway messages older than the gateway's last one are ignored.
Completeness gaps (`gap`): while a gateway is down, or within for_s of its return, a gap is the
outage's own consequence and folds into the gateway's record (reported in its clear, or counted
when it comes after); otherwise one comms-loss episode per gateway burst of gaps, raised at the
first gap and cleared at last gap + for_s on tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from alerting.evidence import iso, num
from alerting.rules.base import NO_CONTEXT, Context, RuleConfigBase, RuleIdentity, SeriesFilter
from alerting.rules.common import (
    NonNegativeFloat,
    Parameters,
    PositiveFloat,
    SeriesRule,
    gate_parameters,
)
from alerting.rules.episodes import Episodes, Subject, Transition
from plantmesh.contracts import (
    STATUS_BAD_COMMUNICATION_ERROR,
    AlertEvent,
    AssetPath,
    Name,
    Reading,
)

GATEWAY_AREA = "gateway"
"""Gateways are not machines: their alerts name plant/gateway/gateway/<gateway_id>."""
GATEWAY_SIGNAL = "gateway-status"
GAP_SIGNAL = "gateway-sequence"
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
    """How long data must be back before the alert clears; silent again before that, the same
    alert stays raised."""

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
    silent_since: datetime | None = None
    """The last reading before the declared silence, for the evidence."""


@dataclass
class _Burst:
    """Completeness gaps of a gateway close together: one episode."""

    first: datetime
    last: datetime
    gaps: int = 0
    batches_missing: int = 0


@dataclass
class _Gateway:
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
    burst: _Burst | None = None

    def subject(self, signal: str) -> Subject:
        asset = AssetPath(
            plant=self.plant, area=GATEWAY_AREA, line=GATEWAY_AREA, machine=self.gateway_id
        )
        return Subject(asset, signal)

    @property
    def key(self) -> str:
        return f"{self.plant}/{self.gateway_id}"


class StaleRule(SeriesRule[StaleRuleConfig]):
    def __init__(self, config: StaleRuleConfig, identity: RuleIdentity | None = None) -> None:
        super().__init__(config, identity)
        self.signals = config.all_signals
        self._filters = {
            s: SeriesFilter(config.model_copy(update={"signal": s})) for s in self.signals
        }
        self._machine = config.scope == "machine"
        self.for_ = timedelta(seconds=config.for_s)
        self._episodes = Episodes(config.name, off_delay_s=config.off_delay_s)
        self._outages = Episodes(config.name)
        self._bursts = Episodes(config.name)
        self._keys: dict[str, _Key] = {}
        self._gateways: dict[str, _Gateway] = {}
        self._down: dict[str, dict[str, _Gateway]] = {}
        """Per plant, its gateways that are down: their plant's silences are suppressed."""
        self._plant_up: dict[str, datetime] = {}
        """Per plant, when a gateway of it last came back: its silences count from then."""
        self.ignored_comms_error = 0

    # --- Rule -----------------------------------------------------------------------------------
    def evaluate(self, reading: Reading, context: Context = NO_CONTEXT) -> list[AlertEvent]:
        filter_ = self._filters.get(reading.signal)
        if filter_ is None or not filter_.matches(reading, context):
            return []
        if reading.status_code == STATUS_BAD_COMMUNICATION_ERROR:
            self.ignored_comms_error += 1
            return []
        key = reading.asset.key if self._machine else reading.series_key
        ts = reading.source_ts
        gate_open = filter_.gate_open(reading.asset, context)
        state = self._keys.get(key)
        if state is None:
            signal = self.config.signal if self._machine else reading.signal
            subject = Subject(reading.asset, signal, context.machine_class)
            self._keys[key] = _Key(subject, ts, gate_open)
            return []
        if ts <= state.last_ts:
            # The signals of one machine share source times: only a series' repeat is late.
            self.ignored_out_of_order += not self._machine or ts < state.last_ts
            return []
        events = []
        episode = self._episodes.get(key)
        if episode is not None and episode.raised_at is not None:
            # A reading behind the watermark ends the silence no earlier than it was declared.
            found = self._episodes.observe(key, max(ts, episode.raised_at), False, state.subject)
            if found is not None:
                events.append(self._key_event(found, state))
        state.last_ts, state.gate_open = ts, gate_open
        return events

    def tick(self, watermark: datetime) -> list[AlertEvent]:
        """Raise the keys silent for for_s by `watermark` (at last reading + for_s), complete
        the clears whose off-delay elapsed, close the gap bursts that ended."""
        events: list[AlertEvent] = []
        for key, state in self._keys.items():
            events.extend(self._tick_key(key, state, watermark))
        for found in self._episodes.tick(watermark):
            events.append(self._key_event(found, self._keys[self._key_of(found.episode.subject)]))
        for gateway in self._gateways.values():
            burst = gateway.burst
            if burst is not None and burst.last + self.for_ <= watermark:
                ended = self._bursts.end(gateway.key, burst.last + self.for_)
                if ended is not None:
                    events.append(self._burst_event(ended, gateway, burst))
                gateway.burst = None
        return events

    def _tick_key(self, key: str, state: _Key, watermark: datetime) -> list[AlertEvent]:
        plant = state.subject.asset.plant
        due = max(state.last_ts, self._plant_up.get(plant, state.last_ts)) + self.for_
        if due > watermark or not state.gate_open:
            return []
        events = []
        episode = self._episodes.get(key)
        if episode is not None and episode.stopped_ts is not None:
            # Clearing: the off-delay may have completed before the silence came back.
            cleared_at = episode.stopped_ts + self._episodes.off_delay
            if cleared_at < due:
                found = self._episodes.observe(key, cleared_at, False, state.subject)
                if found is not None:
                    events.append(self._key_event(found, state))
        if not self._episodes.active(key):
            down = self._down.get(plant)
            if down:
                for gateway in down.values():
                    gateway.suppressed.add(key)
                return events
        found = self._episodes.observe(key, due, True, state.subject)
        if found is not None:
            state.silent_since = state.last_ts
            events.append(self._key_event(found, state))
        return events

    def _key_of(self, subject: Subject) -> str:
        return subject.asset.key if self._machine else subject.series_key

    # --- gateways ---------------------------------------------------------------------------------
    def gateway_down(
        self, plant: str, gateway_id: str, at: datetime, reason: str = ""
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
        self._down.setdefault(plant, {})[gateway.key] = gateway
        found = self._outages.observe(gateway.key, at, True, gateway.subject(GATEWAY_SIGNAL))
        return [] if found is None else [self._outage_event(found, gateway)]

    def gateway_up(self, plant: str, gateway_id: str, at: datetime) -> list[AlertEvent]:
        """Its birth message: the outage clears; the plant's silences count from now."""
        gateway = self._gateway(plant, gateway_id)
        if at < gateway.last_at or gateway.down_at is None:
            self.ignored_out_of_order += at < gateway.last_at
            return []
        gateway.last_at, gateway.up_at = at, at
        self._down[plant].pop(gateway.key, None)
        self._plant_up[plant] = max(at, self._plant_up.get(plant, at))
        found = self._outages.end(gateway.key, at)
        events = [] if found is None else [self._outage_event(found, gateway)]
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
            burst = gateway.burst = _Burst(at, at)
        burst.gaps += 1
        burst.batches_missing += batches_missing
        burst.first, burst.last = min(burst.first, at), max(burst.last, at)
        found = self._bursts.observe(gateway.key, burst.first, True, gateway.subject(GAP_SIGNAL))
        return [] if found is None else [self._burst_event(found, gateway, burst)]

    def _gateway(self, plant: str, gateway_id: str) -> _Gateway:
        key = f"{plant}/{gateway_id}"
        gateway = self._gateways.get(key)
        if gateway is None:
            gateway = self._gateways[key] = _Gateway(plant, gateway_id, _EPOCH)
        return gateway

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

    def _outage_event(self, found: Transition, gateway: _Gateway) -> AlertEvent:
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
            return self._emit(found, summary, condition, params)
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
        return self._emit(found, summary, "gateway birth message", params)

    def _burst_event(self, found: Transition, gateway: _Gateway, burst: _Burst) -> AlertEvent:
        params: Parameters = {
            "plant": gateway.plant,
            "gateway_id": gateway.gateway_id,
            "gaps": burst.gaps,
            "batches_missing": burst.batches_missing,
            "first_gap_ts": iso(burst.first),
            "last_gap_ts": iso(burst.last),
            "for_s": self.config.for_s,
        }
        name = f"gateway {gateway.gateway_id} of {gateway.plant}"
        if found.raised:
            summary = f"{name}: {burst.batches_missing} batch(es) never arrived"
            return self._emit(found, summary, "a completeness gap while the gateway is up", params)
        summary = (
            f"{name}: no gap for {num(self.config.for_s)} s "
            f"({burst.gaps} gap(s), {burst.batches_missing} batch(es) missing)"
        )
        return self._emit(found, summary, f"no gap for >= {num(self.config.for_s)} s", params)
