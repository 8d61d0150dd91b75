"""The simulation without any I/O: machines advance tick by tick, scripted events bend their
signals, drive their states and take their servers away, and each tick yields the served values
that changed (with their quality and source timestamp). Values are deterministic for a seed;
timestamps for a start time as long as nobody calls `resync()`. The servers and the pacing live
in simulators.runtime.

Time: the scenario timeline (events' `start_s`, machine physics, `tick_s`) runs `speed` times
faster than the wall clock, and every timestamp (source timestamps, ground truth) is wall-clock:
scenario second t happens at start + t / speed. `SimulationEngine.instant` is the one place
that mapping lives."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from plantmesh.modbus_profile import DeviceProfile, Table
from simulators.event_config import SIGNAL_EVENTS, EventConfig, ServerEvent, StateFlapping
from simulators.events import (
    ServerSchedule,
    SignalDisturbance,
    StateDriver,
    event_rng,
    is_server_event,
)
from simulators.machines import MachineModel, create_machine, machine_signals
from simulators.modbus_image import DeviceLayout, RegisterImage, ServedValue
from simulators.naming import node_path
from simulators.network import MachineConfig, NetworkConfig, PlantConfig, Protocol
from simulators.records import ProductionRecord
from simulators.scenario import ScenarioConfig
from simulators.signals import Quality, SignalKind, SignalSpec
from simulators.truth import TruthRecord, truth_records


class SimMachine:
    """One machine as served: its model, the signals a client can read, its scripted events,
    and (Modbus) its register image."""

    def __init__(
        self,
        plant: PlantConfig,
        config: MachineConfig,
        model: MachineModel,
        events: list[SignalDisturbance],
        drivers: list[StateDriver] | None = None,
    ) -> None:
        self.plant = plant.id
        self.config = config
        self.model = model
        self.events = events
        self.drivers = drivers or []
        self._specs = machine_signals(config.machine_class)
        self.signals = [self._specs[name] for name in config.served_signal_names()]
        self._counters = {s.name for s in self.signals if s.kind == SignalKind.COUNTER}
        self.layout: DeviceLayout | None = None
        if config.protocol == Protocol.MODBUS:
            if not isinstance(config.profile, DeviceProfile):
                raise ValueError(f"{self.path}: device profile not loaded (use load_network)")
            self.layout = DeviceLayout(config.profile)
        self.served: dict[str, ServedValue] = {}
        self.quality: dict[str, Quality] = {}
        self.image: RegisterImage = {}
        self.online = True  # False while its server is down (nothing served, nothing recorded)
        # Modbus: register ranges whose reads answer "slave device failure" (a failed sensor).
        self.failed_registers: list[tuple[Table, int, int]] = []

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def protocol(self) -> Protocol:
        return self.config.protocol

    @property
    def path(self) -> str:
        return node_path(self.plant, self.config.area, self.config.line, self.config.id)

    def drive(self, t_s: float) -> None:
        """Let state events force the machine's state before it advances."""
        for driver in self.drivers:
            driver.drive(t_s, self.model)

    def spec(self, name: str) -> SignalSpec:
        return self._specs[name]

    def serve(self, t_s: float) -> list[tuple[SignalSpec, ServedValue, Quality]]:
        """Compute what the servers show at simulated time `t_s`; return what changed."""
        values = self.model.values()
        quality: dict[str, Quality] = {}
        for event in self.events:
            spec = self._specs[event.signal]
            bent = event.apply(t_s, values[event.signal])
            values[event.signal] = min(spec.high, max(spec.low, bent))
            if (q := event.quality(t_s)) != Quality.GOOD:
                quality[event.signal] = q
        if self.events and "alarm_word" in values:  # latched from what the sensors read
            failed = Quality.BAD in quality.values()
            values["alarm_word"] = float(self.model.alarm_word(values, failed))
        served: dict[str, ServedValue]
        if self.layout is not None:
            self.image, served = self.layout.encode(values, self._counters)
            self.failed_registers = [
                self.layout.span(name) for name, q in quality.items() if q == Quality.BAD
            ]
        else:
            served = {spec.name: opcua_value(spec, values[spec.name]) for spec in self.signals}
        changed = [
            (spec, served[spec.name], quality.get(spec.name, Quality.GOOD))
            for spec in self.signals
            if spec.name not in self.served
            or self.served[spec.name] != served[spec.name]
            or self.quality.get(spec.name, Quality.GOOD) != quality.get(spec.name, Quality.GOOD)
        ]
        self.served = served
        self.quality = quality
        return changed

    def go_offline(self) -> None:
        self.online = False
        self.served = {}  # everything is new to a client when the server returns
        self.quality = {}


COUNTER_WRAP_OPCUA = 2**32  # OPC UA counters wrap as a PLC's UDINT does


def opcua_value(spec: SignalSpec, value: float) -> float:
    if spec.kind == SignalKind.COUNTER:
        return float(value % COUNTER_WRAP_OPCUA)
    return float(value)


@dataclass(frozen=True)
class SignalUpdate:
    machine: SimMachine
    signal: SignalSpec
    value: ServedValue
    quality: Quality = Quality.GOOD
    source_ts: datetime | None = None  # None: the tick's instant (no clock skew)


ServerKey = tuple[str, Protocol]  # (plant, protocol)


@dataclass(frozen=True)
class TickFrame:
    tick: int
    timestamp: datetime
    updates: list[SignalUpdate]  # served values that changed at this tick
    down: frozenset[ServerKey] = frozenset()  # servers gone at this tick
    silent: frozenset[ServerKey] = frozenset()  # servers that answer nothing at this tick
    skew: dict[ServerKey, timedelta] = field(default_factory=dict)  # clock offsets
    truth: list[TruthRecord] = field(default_factory=list)  # events that began at this tick

    def records(self) -> list[ProductionRecord]:
        return [
            ProductionRecord(
                plant=u.machine.plant,
                area=u.machine.config.area,
                line=u.machine.config.line,
                machine=u.machine.id,
                signal=u.signal.name,
                protocol=u.machine.protocol.value,
                source_ts=u.source_ts or self.timestamp,
                value=u.value,
                unit=u.signal.unit,
                tick=self.tick,
                quality=u.quality.value,
            )
            for u in self.updates
        ]


Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """Now (UTC), to the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class SimulationEngine:
    def __init__(
        self,
        network: NetworkConfig,
        *,
        seed: int | None = None,
        start: datetime | None = None,
        scenario: ScenarioConfig | None = None,
        speed: float = 1.0,
        clock: Clock = wall_clock,
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must carry a timezone (UTC)")
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self.network = network
        self.seed = network.seed if seed is None else seed
        self.tick_s = network.tick_s
        self.speed = speed  # scenario seconds per wall-clock second
        self.clock = clock
        self.start = start  # the wall-clock instant of tick 0 (None: the clock's at tick 0)
        self.lag = timedelta(0)  # wall time the host lost (see resync)
        self._clock_offset = timedelta(0)  # start - the clock at tick 0 (a --start given)
        self.tick = -1  # the last tick computed; tick 0 holds the initial values
        # The network file's events first, then the scenario's: indexes (and so each event's
        # random stream) of the network's events do not depend on the scenario.
        self.events: list[EventConfig] = [*network.events, *(scenario.events if scenario else [])]
        self._announced: set[int] = set()
        self.servers = ServerSchedule([e for e in self.events if isinstance(e, ServerEvent)])
        self.machines: list[SimMachine] = []
        for plant, machine in network.machines():
            rng = random.Random(f"{self.seed}:{plant.id}:{machine.id}")
            model = create_machine(machine.machine_class, rng, network.tick_s)
            mine = [
                (i, e)
                for i, e in enumerate(self.events)
                if not is_server_event(e)
                and (e.plant, getattr(e, "machine", None)) == (plant.id, machine.id)
            ]
            disturbances = [
                SignalDisturbance(e, machine.protocol, event_rng(self.seed, i))
                for i, e in mine
                if isinstance(e, SIGNAL_EVENTS)
            ]
            drivers = [StateDriver(e) for _, e in mine if isinstance(e, StateFlapping)]
            self.machines.append(SimMachine(plant, machine, model, disturbances, drivers))

    def timestamp(self, tick: int) -> datetime:
        """The wall-clock instant of `tick`: instant(tick * tick_s)."""
        return self.instant(tick * self.tick_s)

    def instant(self, t_s: float) -> datetime:
        """The wall-clock instant at which scenario second `t_s` happens: start + t_s / speed
        (plus the lag the host lost). Every timestamp the simulator serves or writes comes
        from here: OPC UA source timestamps, production records and ground truth."""
        if self.start is None:
            raise RuntimeError("the simulation has not started: its start time is not fixed yet")
        wall_s = t_s / self.speed
        return self.start + self.lag + timedelta(microseconds=round(wall_s * 1_000_000))

    def resync(self) -> timedelta:
        """Catch up with the clock: if the current tick's instant is behind it (servers took
        time to start, the host fell behind and ticks were skipped), later instants move
        forward by the difference so they stay wall-clock. Never moves time back. Returns
        the shift."""
        if self.tick < 0:
            return timedelta(0)
        behind = self.clock() + self._clock_offset - self.timestamp(self.tick)
        if behind <= timedelta(0):
            return timedelta(0)
        self.lag += behind
        return behind

    def next_tick(self) -> TickFrame:
        """Advance every machine by one tick (the first call yields tick 0, the initial values)."""
        if self.tick < 0:
            now = self.clock()
            if self.start is None:
                self.start = now
            self._clock_offset = self.start - now
        self.tick += 1
        t_s = self.tick * self.tick_s
        timestamp = self.timestamp(self.tick)
        keys = {(m.plant, m.protocol) for m in self.machines}
        down = frozenset(k for k in keys if self.servers.down(*k, t_s))
        silent = frozenset(k for k in keys if self.servers.silent(*k, t_s))
        skew = {
            k: timedelta(seconds=offset)
            for k in keys
            if (offset := self.servers.skew_s(*k, t_s)) != 0
        }
        restarted = {k for k in keys if self.servers.restarts_done(*k, t_s)}
        updates: list[SignalUpdate] = []
        for machine in self.machines:
            key = (machine.plant, machine.protocol)
            if self.tick > 0:
                machine.drive(t_s)
                machine.model.advance()
            if key in restarted:
                machine.model.reset_counters()
            if key in down:
                machine.go_offline()
                continue
            machine.online = True
            stamp = timestamp + skew[key] if key in skew else None
            updates.extend(
                SignalUpdate(machine, spec, value, quality, stamp)
                for spec, value, quality in machine.serve(t_s)
            )
        return TickFrame(self.tick, timestamp, updates, down, silent, skew, self._began(t_s))

    def _began(self, t_s: float) -> list[TruthRecord]:
        """Ground truth of the events that began by `t_s` and were not announced yet."""
        began: list[TruthRecord] = []
        for i, event in enumerate(self.events):
            if i not in self._announced and t_s >= event.start_s:
                self._announced.add(i)
                began.extend(
                    truth_records(
                        event, i, self.network, self.instant, origin=self.start, speed=self.speed
                    )
                )
        return began

    def current(self) -> TickFrame:
        """Every served value at the current tick (to fill a server that starts late)."""
        if self.tick < 0:
            raise RuntimeError("no tick computed yet")
        updates = [
            SignalUpdate(
                machine,
                spec,
                machine.served[spec.name],
                machine.quality.get(spec.name, Quality.GOOD),
            )
            for machine in self.machines
            if machine.online
            for spec in machine.signals
        ]
        return TickFrame(self.tick, self.timestamp(self.tick), updates)
