"""The scripted events a scenario (or a network file's `events:`) may hold, one model per `kind`.

Times are seconds of simulated time from the first tick. Three scopes:
- signal events bend one signal of one machine: excursion, step, drift, oscillation, spikes,
  flatline, bad_quality;
- machine events drive a machine's operating state: state_flapping;
- server events act on a plant's PLC server (OPC UA, Modbus or both): plc_restart, comms_loss,
  clock_skew.
Every event carries the severity an alerting system is expected to give it and whether it
should alert at all (ground truth): each kind has a default, `should_alert:` overrides it per event
(a harmless step, say). Harmless events are what an alerting system must stay quiet on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from plantmesh.config import ConfigModel
from plantmesh.contracts.alerts import Severity
from plantmesh.contracts.common import Name

Seconds = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class EventBase(ConfigModel):
    plant: Name
    start_s: Seconds
    duration_s: Positive | None = None  # omitted: until the run ends
    severity: Severity | None = None  # expected severity; omitted: the kind's default
    should_alert: bool | None = None  # does it warrant an alert? omitted: the kind's default

    default_severity: ClassVar[Severity] = Severity.MEDIUM
    default_should_alert: ClassVar[bool] = True

    @property
    def end_s(self) -> float | None:
        return None if self.duration_s is None else self.start_s + self.duration_s

    def active(self, t_s: float) -> bool:
        end = self.end_s
        return self.start_s <= t_s and (end is None or t_s < end)

    @property
    def expected_severity(self) -> Severity:
        return self.severity or self.default_severity

    @property
    def expected_alert(self) -> bool:
        return self.default_should_alert if self.should_alert is None else self.should_alert


class SignalEvent(EventBase):
    machine: Name
    signal: Name


class Excursion(SignalEvent):
    """The signal reads `value` (plus a little noise) inside the window."""

    kind: Literal["excursion"]
    duration_s: Positive  # an excursion ends
    value: float
    noise: Annotated[float, Field(ge=0)] = 0.2  # standard deviation, in the signal's unit
    default_severity: ClassVar[Severity] = Severity.HIGH
    # A value held outside its normal band: the textbook process alarm.
    default_should_alert: ClassVar[bool] = True


class Step(SignalEvent):
    """The signal jumps by `delta` at start_s and stays shifted until the window ends."""

    kind: Literal["step"]
    delta: float
    default_severity: ClassVar[Severity] = Severity.HIGH
    # A sustained shift of the process: something changed and someone must look (a scenario
    # marks a small harmless step with `should_alert: false`).
    default_should_alert: ClassVar[bool] = True


class Drift(SignalEvent):
    """The signal drifts away at `rate_per_s` units per second (a fouled sensor, a bearing
    running hot slowly); it is back to normal when the window ends."""

    kind: Literal["drift"]
    rate_per_s: float
    # A slow drift (fouled sensor, bearing running hot) ends in a failure unless caught early.
    default_should_alert: ClassVar[bool] = True


class Oscillation(SignalEvent):
    """A growing oscillation (instability): `amplitude * ramp * sin(2 pi t / period_s)` added,
    the ramp growing linearly from 0 to 1 over `grow_s` (default: the whole window, or 300 s)."""

    kind: Literal["oscillation"]
    period_s: Positive
    amplitude: Positive
    grow_s: Positive | None = None
    default_severity: ClassVar[Severity] = Severity.HIGH
    # A growing instability damages the machine if nobody acts.
    default_should_alert: ClassVar[bool] = True

    @property
    def ramp_s(self) -> float:
        return self.grow_s or self.duration_s or 300.0


class Spikes(SignalEvent):
    """Intermittent spikes: `magnitude` added for `width_s`, on average every `every_s`
    (Poisson arrivals drawn from the seed)."""

    kind: Literal["spikes"]
    magnitude: float
    every_s: Positive
    width_s: Positive = 1.0
    default_severity: ClassVar[Severity] = Severity.LOW
    # Brief transients that go away alone: nothing to act on, paging on them is nuisance alarming.
    default_should_alert: ClassVar[bool] = False


class Flatline(SignalEvent):
    """A frozen sensor: the value at start_s is served unchanged until the window ends."""

    kind: Literal["flatline"]
    # A frozen sensor blinds the operator to the signal: maintenance must fix it.
    default_should_alert: ClassVar[bool] = True


class ModbusFailure(StrEnum):
    EXCEPTION = "exception"  # reads touching the signal's registers answer exception 4
    STALE = "stale"  # the registers keep the last good value


class BadQuality(SignalEvent):
    """A failed sensor. OPC UA: status BadSensorFailure (value frozen at the last good one) or,
    with `quality: uncertain`, UncertainSensorNotAccurate (value keeps moving). Modbus has no
    status: `modbus: exception` answers reads touching the signal's registers with exception 4
    (slave device failure); `modbus: stale` serves the last good value unchanged."""

    kind: Literal["bad_quality"]
    quality: Literal["bad", "uncertain"] = "bad"
    modbus: ModbusFailure = ModbusFailure.EXCEPTION
    # A failed sensor: the value cannot be trusted until maintenance replaces it.
    default_should_alert: ClassVar[bool] = True


StateName = Literal["stopped", "running", "idle", "fault"]  # MachineState, by name


class StateFlapping(EventBase):
    """The machine's state cycles through `states`, `period_s` in each (a chattering limit
    switch, a drive tripping and restarting); the physics follow the state."""

    kind: Literal["state_flapping"]
    machine: Name
    period_s: Positive = 5.0
    states: Annotated[list[StateName], Field(min_length=2)] = ["running", "fault"]
    duration_s: Positive
    # A drive tripping and restarting over and over: production stops, someone must look.
    default_should_alert: ClassVar[bool] = True

    @property
    def signal(self) -> str:
        return "state"


class ServerEvent(EventBase):
    protocol: Literal["opcua", "modbus"] | None = None  # omitted: both servers of the plant


class PlcRestart(ServerEvent):
    """The PLC reboots: its server is gone for `duration_s` (connections reset, port closed),
    then serves again with the part counters reset to 0."""

    kind: Literal["plc_restart"]
    duration_s: Positive
    default_severity: ClassVar[Severity] = Severity.HIGH
    # The PLC went down: every machine it serves is unobserved (one restart, one alert).
    default_should_alert: ClassVar[bool] = True


class CommsLoss(ServerEvent):
    """The network to the PLC is cut for `duration_s`; the machines keep running and the
    counters keep counting. `mode: refuse` closes the server (connection refused);
    `mode: silent` (Modbus only) keeps the connection but answers nothing."""

    kind: Literal["comms_loss"]
    duration_s: Positive
    mode: Literal["refuse", "silent"] = "refuse"
    default_severity: ClassVar[Severity] = Severity.HIGH
    # The plant floor is cut off: no data, no alarms from it until someone restores the link.
    default_should_alert: ClassVar[bool] = True

    @model_validator(mode="after")
    def _silent_is_modbus(self) -> CommsLoss:
        if self.mode == "silent" and self.protocol != "modbus":
            raise ValueError("mode silent needs protocol: modbus (an OPC UA server is refused)")
        return self


class ClockSkew(ServerEvent):
    """The PLC's clock is off by `offset_s` (negative: behind): OPC UA source timestamps and
    the server's CurrentTime carry the offset. Modbus carries no timestamps."""

    kind: Literal["clock_skew"]
    offset_s: float
    default_severity: ClassVar[Severity] = Severity.LOW
    # A PLC clock off by some seconds needs no operator action (the pipeline corrects or flags
    # timestamps, engineering fixes NTP): a diagnostic, not a page.
    default_should_alert: ClassVar[bool] = False


SignalEventConfig = Excursion | Step | Drift | Oscillation | Spikes | Flatline | BadQuality
EventConfig = Annotated[
    Excursion
    | Step
    | Drift
    | Oscillation
    | Spikes
    | Flatline
    | BadQuality
    | StateFlapping
    | PlcRestart
    | CommsLoss
    | ClockSkew,
    Field(discriminator="kind"),
]
SIGNAL_EVENTS = (Excursion, Step, Drift, Oscillation, Spikes, Flatline, BadQuality)
SERVER_EVENTS = (PlcRestart, CommsLoss, ClockSkew)
EVENT_KINDS = (
    "excursion",
    "step",
    "drift",
    "oscillation",
    "spikes",
    "flatline",
    "bad_quality",
    "state_flapping",
    "plc_restart",
    "comms_loss",
    "clock_skew",
)


def _kind_of(model: type[EventBase]) -> str:
    kind: str = get_args(model.model_fields["kind"].annotation)[0]
    return kind


_BY_KIND: dict[str, type[EventBase]] = {
    _kind_of(model): model for model in (*SIGNAL_EVENTS, StateFlapping, *SERVER_EVENTS)
}


def should_alert_by_default(kind: str) -> bool:
    """Whether an event of `kind` warrants an alert when its config does not say (an unknown
    kind, from a newer simulator: yes)."""
    model = _BY_KIND.get(kind)
    return True if model is None else model.default_should_alert
