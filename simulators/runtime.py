"""A running simulation: the engine's ticks pushed to one OPC UA and one Modbus TCP server per
plant, on a clock or one step at a time.

    sim = Simulation(load_network("deploy/demo/network.yaml").with_free_ports(), start=t0)
    async with sim.serving():          # servers listening, tick 0 served
        sim.endpoints()["plant-a"].opcua_url
        await sim.step()               # tick 1, pushed to the servers, then recorded
        ...
        await sim.run(duration_s=10)   # or tick every tick_s / speed seconds

At speed N the scenario runs N times faster than the wall clock while every timestamp stays
wall-clock (see simulators.engine): OPC UA source timestamps, the production log and the ground
truth share the time base of a Modbus client's poll time.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from simulators.engine import (
    Clock,
    SignalUpdate,
    SimMachine,
    SimulationEngine,
    TickFrame,
    wall_clock,
)
from simulators.errors import SimulatorError
from simulators.modbus_server import PlantModbusServer
from simulators.naming import opcua_url
from simulators.network import NetworkConfig, Protocol, unresolved_profiles
from simulators.opcua_server import PlantOpcUaServer
from simulators.records import ProductionRecord
from simulators.scenario import ScenarioConfig
from simulators.truth import TruthRecord

log = logging.getLogger("simulators")

RecordListener = Callable[[ProductionRecord], None]
TickListener = Callable[[list[ProductionRecord]], None]
TruthListener = Callable[[list[TruthRecord]], None]


@dataclass(frozen=True)
class PlantEndpoints:
    plant: str
    opcua_url: str | None  # None: the plant has no OPC UA server
    modbus_host: str | None  # None: the plant has no Modbus server
    modbus_port: int | None
    modbus_units: tuple[int, ...] = ()
    opcua_certificate: Path | None = None  # the server certificate (DER) of a secure server

    def describe(self) -> str:
        parts = []
        if self.opcua_url:
            parts.append(f"OPC UA {self.opcua_url}")
            if self.opcua_certificate is not None:
                parts[-1] += f" (certificate {self.opcua_certificate})"
        if self.modbus_host is not None:
            units = ",".join(str(u) for u in self.modbus_units)
            parts.append(f"Modbus TCP {self.modbus_host}:{self.modbus_port} (units {units})")
        return "; ".join(parts) or "no servers"


class Simulation:
    """Not reentrant: call `step()` from one task at a time, and not while `run()` is ticking."""

    def __init__(
        self,
        network: NetworkConfig,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        start: datetime | None = None,
        on_record: RecordListener | None = None,
        on_records: TickListener | None = None,
        keep_records: bool = True,
        scenario: ScenarioConfig | None = None,
        on_truth: TruthListener | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        if unresolved := unresolved_profiles(network):
            raise ValueError(
                f"device profiles not loaded for {', '.join(unresolved)}: use load_network() "
                "or give the profiles inline"
            )
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self.network = network
        self.speed = speed
        self.engine = SimulationEngine(
            network, seed=seed, start=start, scenario=scenario, speed=speed, clock=clock
        )
        self.keep_records = keep_records
        self.records: list[ProductionRecord] = []
        self.truth: list[TruthRecord] = []  # every event begun so far
        self._truth_listeners = [on_truth] if on_truth else []
        self._record_listeners = [on_record] if on_record else []
        self._tick_listeners = [on_records] if on_records else []
        self._opcua: dict[str, PlantOpcUaServer] = {}
        self._modbus: dict[str, PlantModbusServer] = {}
        self._stopped: set[tuple[str, Protocol]] = set()  # servers a scripted event took down
        self._restart_failed: set[tuple[str, Protocol]] = set()  # logged once per outage
        self._serving = False

    @property
    def tick(self) -> int:
        """The last tick served (-1 before the first)."""
        return self.engine.tick

    @property
    def interval_s(self) -> float:
        """Wall-clock seconds between ticks when running: tick_s / speed."""
        return self.network.tick_s / self.speed

    @property
    def machines(self) -> list[SimMachine]:
        return self.engine.machines

    def timestamp(self, tick: int) -> datetime:
        """The wall-clock instant of a tick (every value of that tick carries it)."""
        return self.engine.timestamp(tick)

    def add_record_listener(self, listener: RecordListener) -> None:
        self._record_listeners.append(listener)

    def endpoints(self) -> dict[str, PlantEndpoints]:
        """Per plant: where its servers listen (the bound ports once serving)."""
        result = {}
        for plant in self.network.plants:
            url = host = port = None
            certificate = None
            if plant.opcua is not None:
                server = self._opcua.get(plant.id)
                url = server.url if server else opcua_url(plant.opcua.host, plant.opcua.port)
                certificate = server.certificate if server else None
            modbus = self._modbus.get(plant.id)
            units = tuple(
                m.unit_id for m in plant.machines if m.unit_id and m.protocol == Protocol.MODBUS
            )
            if modbus is not None:
                host, port = modbus.host, modbus.port
            elif plant.modbus is not None and units:
                host, port = plant.modbus.host, plant.modbus.port
            result[plant.id] = PlantEndpoints(
                plant.id, url, host, port, units if host else (), certificate
            )
        return result

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Simulation]:
        """Start every plant's servers with the current values (tick 0 if nothing ran yet)."""
        if self._serving:
            raise RuntimeError("already serving")
        # Certificates of plants that name no directory live as long as the servers.
        certificates = tempfile.TemporaryDirectory(prefix="plantmesh-sim-certs-")
        self._build_servers(Path(certificates.name))
        servers: list[PlantOpcUaServer | PlantModbusServer] = [
            *self._opcua.values(),
            *self._modbus.values(),
        ]
        try:
            for opcua in self._opcua.values():
                await opcua.setup()
            first = self.engine.next_tick() if self.engine.tick < 0 else None
            # Servers listen only once they hold values: no client ever reads a placeholder.
            await self._push(self.engine.current())
            for server in servers:
                await server.start()
            self._serving = True
            for plant, endpoints in self.endpoints().items():
                log.info("plant %s serving: %s", plant, endpoints.describe())
            if first is not None:
                await self._sync_servers(first)
                self._emit(first)
            yield self
        finally:
            self._serving = False
            servers = [*self._opcua.values(), *self._modbus.values()]
            for server in servers:
                try:
                    await server.stop()
                except Exception:  # a failing stop must not keep the others running
                    log.exception("plant %s: stopping its server failed", server.plant)
            self._opcua.clear()
            self._modbus.clear()
            self._stopped.clear()
            certificates.cleanup()

    def _build_servers(self, certificates: Path) -> None:
        for plant in self.network.plants:
            machines = [m for m in self.engine.machines if m.plant == plant.id]
            if plant.opcua is not None:
                self._opcua[plant.id] = PlantOpcUaServer(
                    plant.id,
                    plant.opcua.host,
                    plant.opcua.port,
                    [m for m in machines if m.protocol == Protocol.OPCUA],
                    plant.opcua,
                    certificates,
                )
            modbus_machines = [m for m in machines if m.protocol == Protocol.MODBUS]
            if plant.modbus is not None and modbus_machines:
                self._modbus[plant.id] = PlantModbusServer(
                    plant.id, plant.modbus.host, plant.modbus.port, modbus_machines
                )
            elif plant.modbus is not None:
                log.warning(
                    "plant %s: modbus configured but no modbus machines: not served", plant.id
                )

    async def step(self) -> list[ProductionRecord]:
        """Advance exactly one tick, push it to the servers (when serving), then record it.
        Outside `serving()` it only computes and records (the first call yields tick 0)."""
        frame = self.engine.next_tick()
        if self._serving:
            await self._sync_servers(frame)
            await self._push(frame)
        return self._emit(frame)

    async def run(self, duration_s: float | None = None) -> None:
        """Tick every tick_s / speed seconds of wall-clock time, for `duration_s` or until
        cancelled. Ticks are stamped with the wall-clock instant they are due at; if the host
        falls far behind, the backlog is skipped and later timestamps move to the clock."""
        if not self._serving:
            raise RuntimeError("run() needs serving()")
        loop = asyncio.get_running_loop()
        interval = self.interval_s
        self.engine.resync()  # the time servers took to start is wall time too
        began = loop.time()
        due = began + interval
        behind_logged = False
        while duration_s is None or due <= began + duration_s:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > interval and not behind_logged:
                behind_logged = True
                log.warning("simulation falls behind its clock (interval %.3f s)", interval)
            await self.step()
            due += interval
            if loop.time() - due > 10 * interval:
                due = loop.time() + interval  # far behind: skip the backlog rather than burst
                self.engine.resync()  # and keep the timestamps on the wall clock
        if duration_s is not None:
            await asyncio.sleep(max(0.0, began + duration_s - loop.time()))

    async def _sync_servers(self, frame: TickFrame) -> None:
        """Take servers away and bring them back as scripted events say (PLC restart,
        communications loss); a returning server binds the port it had."""
        for plant, server in list(self._opcua.items()):
            await self._sync(plant, Protocol.OPCUA, server, frame)
        for plant, modbus in list(self._modbus.items()):
            modbus.silent = (plant, Protocol.MODBUS) in frame.silent
            await self._sync(plant, Protocol.MODBUS, modbus, frame)

    async def _sync(
        self,
        plant: str,
        protocol: Protocol,
        server: PlantOpcUaServer | PlantModbusServer,
        frame: TickFrame,
    ) -> None:
        key = (plant, protocol)
        if key in frame.down and key not in self._stopped:
            log.info("plant %s: %s server down (scripted)", plant, protocol.value)
            self._stopped.add(key)
            await server.stop()
        elif key not in frame.down and key in self._stopped:
            fresh = server.restarted()
            try:
                if isinstance(fresh, PlantOpcUaServer):
                    await fresh.setup()
                    await fresh.write(self._plant_updates(frame, plant), frame.timestamp)
                else:
                    fresh.publish()
                await fresh.start()
            except SimulatorError as exc:  # e.g. the port was taken meanwhile: retry next tick
                if key not in self._restart_failed:
                    log.warning(
                        "plant %s: %s server cannot come back yet: %s", plant, protocol, exc
                    )
                self._restart_failed.add(key)
                await fresh.stop()
                for machine in self.engine.machines:  # next tick re-serves all their values
                    if (machine.plant, machine.protocol) == key:
                        machine.go_offline()
                return
            log.info("plant %s: %s server back (scripted)", plant, protocol.value)
            self._stopped.discard(key)
            self._restart_failed.discard(key)
            if isinstance(fresh, PlantOpcUaServer):
                self._opcua[plant] = fresh
            else:
                self._modbus[plant] = fresh

    @staticmethod
    def _plant_updates(frame: TickFrame, plant: str) -> list[SignalUpdate]:
        return [u for u in frame.updates if u.machine.plant == plant]

    async def _push(self, frame: TickFrame) -> None:
        by_plant: dict[str, list[SignalUpdate]] = defaultdict(list)
        for update in frame.updates:
            by_plant[update.machine.plant].append(update)
        for plant, server in self._opcua.items():
            if (plant, Protocol.OPCUA) in self._stopped:
                continue
            skew = frame.skew.get((plant, Protocol.OPCUA))
            await server.write(
                by_plant.get(plant, []), frame.timestamp + skew if skew else frame.timestamp
            )
        for plant, modbus in self._modbus.items():
            if (plant, Protocol.MODBUS) not in self._stopped:
                modbus.publish()

    def _emit(self, frame: TickFrame) -> list[ProductionRecord]:
        if frame.truth:
            self.truth.extend(frame.truth)
            for truth_listener in self._truth_listeners:
                truth_listener(frame.truth)
        records = frame.records()
        if self.keep_records:
            self.records.extend(records)
        for listener in self._record_listeners:
            for record in records:
                listener(record)
        for tick_listener in self._tick_listeners:
            tick_listener(records)
        return records
