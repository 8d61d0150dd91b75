"""The simulation without any I/O: machines advance tick by tick, scripted events bend their
signals, and each tick yields the served values that changed. Deterministic for a seed and a
start time; the servers and the clock live in simulators.runtime."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from plantmesh.modbus_profile import DeviceProfile
from simulators.events import ScriptedEvent, build_events
from simulators.machines import MachineModel, create_machine, machine_signals
from simulators.modbus_image import DeviceLayout, RegisterImage, ServedValue
from simulators.naming import node_path
from simulators.network import MachineConfig, NetworkConfig, PlantConfig, Protocol
from simulators.records import ProductionRecord
from simulators.signals import SignalSpec


class SimMachine:
    """One machine as served: its model, the signals a client can read, its scripted events,
    and (Modbus) its register image."""

    def __init__(
        self,
        plant: PlantConfig,
        config: MachineConfig,
        model: MachineModel,
        events: list[ScriptedEvent],
    ) -> None:
        self.plant = plant.id
        self.config = config
        self.model = model
        self.events = events
        specs = machine_signals(config.machine_class)
        self.signals = [specs[name] for name in config.served_signal_names()]
        self.layout: DeviceLayout | None = None
        if config.protocol == Protocol.MODBUS:
            if not isinstance(config.profile, DeviceProfile):
                raise ValueError(f"{self.path}: device profile not loaded (use load_network)")
            self.layout = DeviceLayout(config.profile)
        self.served: dict[str, ServedValue] = {}
        self.image: RegisterImage = {}

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def protocol(self) -> Protocol:
        return self.config.protocol

    @property
    def path(self) -> str:
        return node_path(self.plant, self.config.area, self.config.line, self.config.id)

    def serve(self, t_s: float) -> list[tuple[SignalSpec, ServedValue]]:
        """Compute what the servers show at simulated time `t_s`; return what changed."""
        values = self.model.values()
        for event in self.events:
            values[event.signal] = event.apply(t_s, values[event.signal])
        served: dict[str, ServedValue]
        if self.layout is not None:
            self.image, served = self.layout.encode(values)
        else:
            served = {spec.name: float(values[spec.name]) for spec in self.signals}
        changed = [
            (spec, served[spec.name])
            for spec in self.signals
            if spec.name not in self.served or self.served[spec.name] != served[spec.name]
        ]
        self.served = served
        return changed


@dataclass(frozen=True)
class SignalUpdate:
    machine: SimMachine
    signal: SignalSpec
    value: ServedValue


@dataclass(frozen=True)
class TickFrame:
    tick: int
    timestamp: datetime
    updates: list[SignalUpdate]  # served values that changed at this tick

    def records(self) -> list[ProductionRecord]:
        return [
            ProductionRecord(
                plant=u.machine.plant,
                area=u.machine.config.area,
                line=u.machine.config.line,
                machine=u.machine.id,
                signal=u.signal.name,
                protocol=u.machine.protocol.value,
                source_ts=self.timestamp,
                value=u.value,
                unit=u.signal.unit,
                tick=self.tick,
            )
            for u in self.updates
        ]


def wall_clock_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class SimulationEngine:
    def __init__(
        self, network: NetworkConfig, *, seed: int | None = None, start: datetime | None = None
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("start must carry a timezone (UTC)")
        self.network = network
        self.seed = network.seed if seed is None else seed
        self.tick_s = network.tick_s
        self.start = start
        self.tick = -1  # the last tick computed; tick 0 holds the initial values
        events = build_events(network, self.seed)
        self.machines: list[SimMachine] = []
        for plant, machine in network.machines():
            rng = random.Random(f"{self.seed}:{plant.id}:{machine.id}")
            model = create_machine(machine.machine_class, rng, network.tick_s)
            mine = [e for e in events if (e.plant, e.machine) == (plant.id, machine.id)]
            self.machines.append(SimMachine(plant, machine, model, mine))

    def timestamp(self, tick: int) -> datetime:
        """The simulated instant of `tick`: start + tick * tick_s."""
        if self.start is None:
            raise RuntimeError("the simulation has not started: its start time is not fixed yet")
        return self.start + timedelta(microseconds=round(tick * self.tick_s * 1_000_000))

    def next_tick(self) -> TickFrame:
        """Advance every machine by one tick (the first call yields tick 0, the initial values)."""
        if self.start is None:
            self.start = wall_clock_start()
        self.tick += 1
        t_s = self.tick * self.tick_s
        updates: list[SignalUpdate] = []
        for machine in self.machines:
            if self.tick > 0:
                machine.model.advance()
            updates.extend(SignalUpdate(machine, spec, v) for spec, v in machine.serve(t_s))
        return TickFrame(self.tick, self.timestamp(self.tick), updates)

    def current(self) -> TickFrame:
        """Every served value at the current tick (to fill a server that starts late)."""
        if self.tick < 0:
            raise RuntimeError("no tick computed yet")
        updates = [
            SignalUpdate(machine, spec, machine.served[spec.name])
            for machine in self.machines
            for spec in machine.signals
        ]
        return TickFrame(self.tick, self.timestamp(self.tick), updates)
