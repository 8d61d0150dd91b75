from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from edge_agent.config import ModbusDeviceConfig, ModbusSourceConfig
from edge_agent.errors import ModbusReadError
from edge_agent.sources import decoding
from edge_agent.sources.modbus import DevicePoller
from edge_agent.sources.modbus_plan import decode_answer, plan_reads
from plantmesh.contracts import (
    STATUS_BAD,
    STATUS_BAD_OUT_OF_RANGE,
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_GOOD,
    STATUS_UNCERTAIN,
    Quality,
    Reading,
)
from plantmesh.modbus_profile import (
    DataType,
    DeviceProfile,
    RegisterSpec,
    Table,
    encode_value,
)


def reg(signal: str, address: int, dtype: DataType = DataType.UINT16, **kw: Any) -> RegisterSpec:
    return RegisterSpec(signal=signal, address=address, type=dtype, **kw)


def profile(*specs: RegisterSpec, addressing: int = 0) -> DeviceProfile:
    return DeviceProfile(name="p", addressing=addressing, registers=list(specs))


def spans(p: DeviceProfile, **kw: int) -> list[tuple[str, int, int]]:
    return [(r.table.value, r.address, r.count) for r in plan_reads(p, **kw)]


def test_neighbours_and_small_gaps_share_one_read() -> None:
    p = profile(
        reg("c", 12),
        reg("a", 0, DataType.FLOAT32),
        reg("b", 2, DataType.UINT32),  # adjacent
        reg("d", 21),  # gap of 8 after c: still merged
    )
    assert spans(p) == [("holding", 0, 22)]


def test_large_gap_splits() -> None:
    p = profile(reg("a", 0), reg("b", 10))  # 9 unused registers between them
    assert spans(p) == [("holding", 0, 1), ("holding", 10, 1)]
    assert spans(p, max_gap=9) == [("holding", 0, 11)]


def test_request_size_limit_splits_without_cutting_a_value() -> None:
    specs = [reg(f"s{i}", i * 4, DataType.FLOAT64) for i in range(40)]  # 160 registers
    requests = plan_reads(profile(*specs))
    assert [(r.address, r.count) for r in requests] == [(0, 120), (120, 40)]
    assert all(r.count <= 120 for r in requests)
    assert sum(len(r.specs) for r in requests) == 40


def test_tables_are_planned_separately_and_bits_have_their_own_limit() -> None:
    coils = [reg(f"c{i}", i * 5, DataType.BOOL, table=Table.COIL) for i in range(500)]
    p = profile(
        reg("h", 0),
        reg("i", 0, table=Table.INPUT),
        reg("d", 7, DataType.BOOL, table=Table.DISCRETE),
        *coils,
    )
    plan = spans(p)
    assert ("holding", 0, 1) in plan
    assert ("input", 0, 1) in plan
    assert ("discrete", 7, 1) in plan
    coil_reads = [(a, c) for t, a, c in plan if t == "coil"]
    assert coil_reads == [(0, 1996), (2000, 496)]  # 2000 bits would need 2001


def test_one_based_addressing_reads_wire_addresses() -> None:
    p = profile(reg("a", 1), reg("b", 2), addressing=1)
    [request] = plan_reads(p)
    assert (request.address, request.count) == (0, 2)


def test_decode_answer_places_each_value() -> None:
    flow = reg("flow", 0, DataType.FLOAT32)
    temp = reg("temp", 5, DataType.INT16, scale=0.1)
    p = profile(flow, temp)
    [request] = plan_reads(p)
    words = [0] * request.count
    words[0:2] = encode_value(flow, 12.5)
    words[5:6] = encode_value(temp, -3.2)
    decoded = {spec.signal: value for spec, value in decode_answer(request, words)}
    assert decoded["flow"] == 12.5
    assert decoded["temp"] == pytest.approx(-3.2)
    with pytest.raises(ValueError, match="returned 3 values"):
        decode_answer(request, words[:3])


# --- polling with a stand-in client -----------------------------------------------------------


@dataclass
class Answer:
    registers: list[int] = field(default_factory=list)
    bits: list[bool] = field(default_factory=list)
    exception_code: int | None = None

    def isError(self) -> bool:  # noqa: N802 (pymodbus's name)
        return self.exception_code is not None


class FakeClient:
    """Holding registers and coils of one device, as a pymodbus client would read them."""

    def __init__(self) -> None:
        self.holding = [0] * 16
        self.coils = [False] * 16
        self.fail_with: int | None = None  # exception code answered to holding reads
        self.raise_with: BaseException | None = None  # no answer to holding reads
        self.requests: list[tuple[str, int, int, int]] = []
        self.connected = True

    def close(self) -> None:
        self.connected = False

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Answer:
        self.requests.append(("holding", address, count, device_id))
        if self.raise_with is not None:
            raise self.raise_with
        if self.fail_with is not None:
            return Answer(exception_code=self.fail_with)
        return Answer(registers=self.holding[address : address + count])

    async def read_coils(self, address: int, *, count: int, device_id: int) -> Answer:
        self.requests.append(("coil", address, count, device_id))
        padded = count + (-count % 8)  # coils come back padded to whole bytes
        return Answer(bits=(self.coils + [False] * 16)[address : address + padded])


PUMP = profile(
    reg("speed", 0),
    reg("level", 2, DataType.FLOAT32, unit="m"),
    reg("running", 0, DataType.BOOL, table=Table.COIL),
)


def poller(on_change: bool, readings: list[Reading]) -> DevicePoller:
    device = ModbusDeviceConfig(
        unit_id=7,
        profile=PUMP,
        area="utilities",
        line="line1",
        machine="pump-01",
        on_change=on_change,
    )
    source = ModbusSourceConfig(type="modbus", name="mb", host="127.0.0.1", devices=[device])
    return DevicePoller(source, device, "plant-a", decoding(readings.append))


def values(readings: list[Reading], signal: str) -> list[object]:
    return [r.value for r in readings if r.signal == signal]


async def test_on_change_publishes_each_distinct_value_once() -> None:
    readings: list[Reading] = []
    device, client = poller(True, readings), FakeClient()
    for speed in (0, 0, 5, 5, 5, 7, 0):
        client.holding[0] = speed
        await device.poll(client)  # type: ignore[arg-type]
    assert values(readings, "speed") == [0.0, 5.0, 7.0, 0.0]
    assert values(readings, "running") == [False]
    assert values(readings, "level") == [0.0]
    assert {r.asset.key for r in readings} == {"plant-a/utilities/line1/pump-01"}
    assert all(r.unit == "m" for r in readings if r.signal == "level")
    # one coalesced holding read (speed + level) and one coil read per poll, to unit 7
    assert client.requests[:2] == [("holding", 0, 4, 7), ("coil", 0, 1, 7)]


async def test_every_poll_publishes_everything_without_on_change() -> None:
    readings: list[Reading] = []
    device, client = poller(False, readings), FakeClient()
    for _ in range(3):
        await device.poll(client)  # type: ignore[arg-type]
    assert len(readings) == 9
    polls = {r.source_ts for r in readings}
    assert len(polls) == 3  # source_ts is the poll's time, shared by its readings


async def test_failure_is_counted_and_values_are_republished_after_it() -> None:
    readings: list[Reading] = []
    device, client = poller(True, readings), FakeClient()
    client.holding[0] = 3
    await device.poll(client)  # type: ignore[arg-type]
    client.raise_with = TimeoutError("no answer")
    assert not await device._poll_once(client)  # type: ignore[arg-type]
    assert device.state.errors == 1
    assert not device.state.connected
    assert not client.connected  # a fresh connection for the next poll
    client.raise_with = None
    await device.poll(client)  # type: ignore[arg-type]
    assert values(readings, "speed") == [3.0, 3.0]  # seen again after the outage
    assert device.state.connected


async def test_a_gateway_that_cannot_reach_the_device_fails_the_poll() -> None:
    readings: list[Reading] = []
    device, client = poller(True, readings), FakeClient()
    client.fail_with = 11  # gateway target device failed to respond
    assert not await device._poll_once(client)  # type: ignore[arg-type]
    assert (readings, device.state.errors, device.state.connected) == ([], 1, False)
    assert client.connected  # the gateway answered: no need for a new connection
    with pytest.raises(ModbusReadError, match="exception code 11"):
        await device.poll(client)  # type: ignore[arg-type]


# --- exception answers: the request's signals with a status, not a lost poll --------------------


def statuses(readings: list[Reading], signal: str) -> list[tuple[object, int, Quality]]:
    return [(r.value, r.status_code, r.quality) for r in readings if r.signal == signal]


GOOD = (STATUS_GOOD, Quality.GOOD)
FAILED = (STATUS_BAD_SENSOR_FAILURE, Quality.BAD)


@pytest.mark.parametrize("on_change", [False, True])
async def test_a_failed_sensor_is_bad_without_a_value_and_the_rest_stays_good(
    on_change: bool,
) -> None:
    readings: list[Reading] = []
    device, client = poller(on_change, readings), FakeClient()
    client.holding[0], client.coils[0] = 3, True
    await device.poll(client)  # type: ignore[arg-type]
    client.fail_with = 4  # the holding request (speed, level); the coil request answers
    client.coils[0] = False
    assert await device._poll_once(client)  # type: ignore[arg-type]
    assert await device._poll_once(client)  # type: ignore[arg-type]
    assert device.state.connected
    assert device.state.errors == 2  # one per exception answer
    client.fail_with = None  # the sensor is back, reading what it read before it failed
    await device.poll(client)  # type: ignore[arg-type]
    bad = [(None, *FAILED)] * (1 if on_change else 2)  # on_change: unchanged after the first
    assert statuses(readings, "speed") == [(3.0, *GOOD), *bad, (3.0, *GOOD)]
    assert [s[1:] for s in statuses(readings, "level")] == [GOOD, *[FAILED] * len(bad), GOOD]
    running = [(True, *GOOD), (False, *GOOD), *([] if on_change else [(False, *GOOD)] * 2)]
    assert statuses(readings, "running") == running
    assert device.state.errors == 2
    assert device.unpublished == 0


@pytest.mark.parametrize(
    ("code", "status", "quality"),
    [
        (2, STATUS_BAD, Quality.BAD),
        (3, STATUS_BAD, Quality.BAD),
        (4, STATUS_BAD_SENSOR_FAILURE, Quality.BAD),
        (5, STATUS_UNCERTAIN, Quality.UNCERTAIN),
        (6, STATUS_UNCERTAIN, Quality.UNCERTAIN),
        (8, STATUS_BAD, Quality.BAD),
    ],
)
async def test_exception_codes_map_to_status_codes(
    code: int, status: int, quality: Quality, caplog: pytest.LogCaptureFixture
) -> None:
    readings: list[Reading] = []
    device, client = poller(False, readings), FakeClient()
    await device.poll(client)  # type: ignore[arg-type]
    client.fail_with = code
    for _ in range(3):
        await device.poll(client)  # type: ignore[arg-type]
    # Bad means no value; Uncertain keeps the last good one.
    held = None if quality is Quality.BAD else 0.0
    assert statuses(readings, "speed")[1:] == [(held, status, quality)] * 3
    assert device.state.connected
    assert device.state.errors == 3
    logged = [r.getMessage() for r in caplog.records if f"exception code {code}" in r.getMessage()]
    assert len(logged) == 1  # once per kind, not once per poll
    if code == 2:
        assert "illegal data address" in logged[0]
        assert "check the profile" in logged[0]


async def test_a_signal_without_a_good_value_yet_is_skipped_and_counted() -> None:
    readings: list[Reading] = []
    device, client = poller(False, readings), FakeClient()
    client.fail_with = 4
    await device.poll(client)  # type: ignore[arg-type]
    assert [r.signal for r in readings] == ["running"]
    assert (device.unpublished, device.state.errors, device.state.connected) == (2, 1, True)
    client.fail_with = None
    await device.poll(client)  # type: ignore[arg-type]
    assert statuses(readings, "speed") == [(0.0, *GOOD)]


async def test_on_change_publishes_a_change_of_status() -> None:
    readings: list[Reading] = []
    device, client = poller(True, readings), FakeClient()
    await device.poll(client)  # type: ignore[arg-type]
    for code in (6, 6, 4, 4):
        client.fail_with = code
        await device.poll(client)  # type: ignore[arg-type]
    busy = (0.0, STATUS_UNCERTAIN, Quality.UNCERTAIN)
    assert statuses(readings, "speed") == [(0.0, *GOOD), busy, (None, *FAILED)]


async def test_the_bad_status_is_published_again_after_an_outage() -> None:
    readings: list[Reading] = []
    device, client = poller(True, readings), FakeClient()
    client.holding[0] = 9
    await device.poll(client)  # type: ignore[arg-type]
    client.fail_with = 4
    await device.poll(client)  # type: ignore[arg-type]
    client.raise_with = TimeoutError("no answer")
    assert not await device._poll_once(client)  # type: ignore[arg-type]
    client.raise_with = None
    await device.poll(client)  # type: ignore[arg-type]
    assert statuses(readings, "speed") == [(9.0, *GOOD), (None, *FAILED), (None, *FAILED)]
    assert values(readings, "running") == [False, False]  # republished after the outage


async def test_nan_is_skipped_and_counted() -> None:
    readings: list[Reading] = []
    device, client = poller(False, readings), FakeClient()
    client.holding[2:4] = [0x7FC0, 0x0000]  # float32 NaN
    await device.poll(client)  # type: ignore[arg-type]
    assert values(readings, "level") == []
    assert values(readings, "speed") == [0.0]
    assert device.state.errors == 1
    assert all(not (isinstance(r.value, float) and math.isnan(r.value)) for r in readings)


async def test_a_64_bit_count_beyond_2_53_is_bad_without_a_value_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    readings: list[Reading] = []
    counter = profile(reg("count", 0, DataType.UINT64), reg("speed", 4))
    device = ModbusDeviceConfig(unit_id=7, profile=counter, area="a", line="l", machine="m")
    source = ModbusSourceConfig(type="modbus", name="mb", host="127.0.0.1", devices=[device])
    poller_ = DevicePoller(source, device, "plant-a", decoding(readings.append))
    client = FakeClient()
    client.holding[4] = 5
    for count in (2**53, 2**53 + 1, 2**60, 7):  # exact, beyond, beyond, exact again
        client.holding[0:4] = [(count >> shift) & 0xFFFF for shift in (48, 32, 16, 0)]
        await poller_.poll(client)  # type: ignore[arg-type]
    out_of_range = (None, STATUS_BAD_OUT_OF_RANGE, Quality.BAD)
    assert statuses(readings, "count") == [
        (float(2**53), *GOOD),
        out_of_range,
        out_of_range,
        (7.0, *GOOD),
    ]
    assert values(readings, "speed") == [5.0] * 4  # the other registers are untouched
    logged = [r.getMessage() for r in caplog.records if "beyond 2**53" in r.getMessage()]
    assert len(logged) == 1  # once per signal, not once per value
    assert "count" in logged[0]
    assert "uint64" in logged[0]
