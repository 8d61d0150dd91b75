"""The life of an alert episode per series, in event time, shared by every rule type.

    normal --holds--> pending --held on_delay_s--> raised --stops holding--> clearing
      ^                  |                           ^                          |
      +--stops holding---+                           +---------holds again------+
      +-------------------------------------------- stopped for off_delay_s ----+

A rule decides whether its condition holds at each reading (applying its own deadband: it can ask
`active(key)`); this module decides when that becomes a raise or a clear. Delays complete on a
reading or on the engine's watermark tick, whichever comes first, so a signal that reports only
on change still raises at first crossing + on_delay_s. One episode raises once and clears once,
however many readings or swings it spans: that is what keeps one fault one alert.

Tracing (`plantmesh alerting explain`): set `trace` on an instance and every decision it takes
(each `observe`, each delay a `tick` completes, each `end`) is reported as a TraceStep. Unset,
it costs one attribute test per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from alerting.evidence import alert_id
from plantmesh.contracts import AssetPath


class Phase(StrEnum):
    PENDING = "pending"
    RAISED = "raised"
    CLEARING = "clearing"


@dataclass(frozen=True, slots=True)
class Subject:
    """What an episode is about: stamped on its events, also when a tick decides."""

    asset: AssetPath
    signal: str
    machine_class: str | None = None

    @property
    def series_key(self) -> str:
        return f"{self.asset.key}/{self.signal}"


@dataclass(slots=True)
class Episode:
    subject: Subject
    alert_id: str
    first_ts: datetime
    """When the condition first held."""
    phase: Phase = Phase.PENDING
    raised_at: datetime | None = None
    stopped_ts: datetime | None = None
    """While clearing: when the condition stopped holding."""


@dataclass(frozen=True, slots=True)
class Transition:
    """An episode was raised or cleared at `at` (event time)."""

    raised: bool
    at: datetime
    episode: Episode


NORMAL = "normal"
CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One decision of an Episodes: the condition at `ts` for `key` (None: decided by time
    alone, a tick or an end), the phase before and after (`normal`, a Phase, or `cleared` right
    after a clear) and the raise or clear it caused."""

    rule: str
    key: str
    subject: Subject
    ts: datetime
    holds: bool | None
    before: str
    after: str
    transition: Transition | None
    via: str
    """`observe`, `tick` or `end`."""


Tracer = Callable[[TraceStep], None]


class Episodes:
    """Episodes of one rule, keyed by whatever the rule evaluates per (usually the series)."""

    def __init__(self, rule: str, on_delay_s: float = 0.0, off_delay_s: float = 0.0) -> None:
        self.rule = rule
        self.on_delay = timedelta(seconds=on_delay_s)
        self.off_delay = timedelta(seconds=off_delay_s)
        self._open: dict[str, Episode] = {}
        self.trace: Tracer | None = None
        """Set by an explainer: called with every decision (see TraceStep)."""

    def phase(self, key: str) -> str:
        """`normal` (no open episode) or the open episode's phase."""
        episode = self._open.get(key)
        return NORMAL if episode is None else episode.phase.value

    def get(self, key: str) -> Episode | None:
        return self._open.get(key)

    def active(self, key: str) -> bool:
        """Raised (or clearing): the rule applies its deadband to decide whether it holds."""
        episode = self._open.get(key)
        return episode is not None and episode.phase is not Phase.PENDING

    def observe(self, key: str, ts: datetime, holds: bool, subject: Subject) -> Transition | None:
        """The condition at `ts` for `key`; returns the raise or clear it causes, if any."""
        if self.trace is not None:
            return self._traced_observe(self.trace, key, ts, holds, subject)
        episode = self._open.get(key)
        if episode is None:
            if not holds:
                return None
            episode = Episode(subject, alert_id(self.rule, subject.series_key, ts), ts)
            self._open[key] = episode
        if episode.phase is Phase.PENDING:
            if not holds:
                del self._open[key]  # back to normal before the on-delay: no alert
                return None
            return self._raise(episode, ts) if ts - episode.first_ts >= self.on_delay else None
        if holds:
            episode.phase, episode.stopped_ts = Phase.RAISED, None
            return None
        if episode.stopped_ts is None:
            episode.phase, episode.stopped_ts = Phase.CLEARING, ts
        if ts - episode.stopped_ts >= self.off_delay:
            return self._clear(key, episode, ts)
        return None

    def tick(self, watermark: datetime) -> Iterator[Transition]:
        """Complete the delays that elapsed by `watermark`, at the time they elapsed."""
        for key, episode in list(self._open.items()):
            if episode.phase is Phase.PENDING:
                due = episode.first_ts + self.on_delay
                if due <= watermark:
                    yield self._traced(key, Phase.PENDING, self._raise(episode, due), "tick")
            elif episode.phase is Phase.CLEARING and episode.stopped_ts is not None:
                due = episode.stopped_ts + self.off_delay
                if due <= watermark:
                    found = self._clear(key, episode, due)
                    yield self._traced(key, Phase.CLEARING, found, "tick")

    def end(self, key: str, at: datetime) -> Transition | None:
        """End the episode of `key` now, whatever its phase (e.g. its machine stopped): a raised
        one clears, a pending one is forgotten."""
        episode = self._open.pop(key, None)
        if episode is None or episode.phase is Phase.PENDING:
            return None
        at = max(at, episode.raised_at or at)
        return self._traced(key, episode.phase, Transition(False, at, episode), "end")

    def _raise(self, episode: Episode, at: datetime) -> Transition:
        episode.phase, episode.raised_at = Phase.RAISED, at
        return Transition(True, at, episode)

    def _clear(self, key: str, episode: Episode, at: datetime) -> Transition:
        """Never before the raise: a late reading may show the condition ended before the
        watermark raised it, but what was published stands and the clear follows it."""
        del self._open[key]
        return Transition(False, max(at, episode.raised_at or at), episode)

    # --- tracing ------------------------------------------------------------------------------
    def _traced_observe(
        self, trace: Tracer, key: str, ts: datetime, holds: bool, subject: Subject
    ) -> Transition | None:
        before = self.phase(key)
        self.trace = None  # the untraced path decides, exactly as without a tracer
        try:
            found = self.observe(key, ts, holds, subject)
        finally:
            self.trace = trace
        after = CLEARED if found is not None and not found.raised else self.phase(key)
        trace(TraceStep(self.rule, key, subject, ts, holds, before, after, found, "observe"))
        return found

    def _traced(self, key: str, before: Phase, found: Transition, via: str) -> Transition:
        if self.trace is not None:
            after = Phase.RAISED.value if found.raised else CLEARED
            subject = found.episode.subject
            step = TraceStep(
                self.rule, key, subject, found.at, None, before.value, after, found, via
            )
            self.trace(step)
        return found
