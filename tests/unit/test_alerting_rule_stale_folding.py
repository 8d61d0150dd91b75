"""The stale rule's precision: the silences of one gateway's machines folded into one data-flow
alert, and a PLC clock gone back still proving its series alive (seconds from T0)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.engine import Engine
from alerting.rules.base import Context
from alerting.rules.stale import StaleRule
from plantmesh.contracts import AlertEvent, AssetPath
from tests.support.alerting import MILL, at, feed
from tests.support.stale import every, make, plant_machines, reading, timeline

# --- folding: the silences of one gateway's machines -------------------------------------------
GW1, GW2 = Context(gateway_id="gw-1"), Context(gateway_id="gw-2")
FLOW = "plant-a/gateway/gateway/gw-1"


def ticked(rule: StaleRule, start: int, stop: int) -> list[AlertEvent]:
    """Tick every second, as the service does after each poll."""
    return [event for t in range(start, stop) for event in rule.tick(at(t))]


def test_machines_of_one_gateway_silent_together_are_one_data_flow_alert() -> None:
    rule = make(scope="machine")
    machines = plant_machines("plant-a", 7)
    elsewhere = AssetPath.parse("plant-a/area/line/other")
    feed(rule, [reading(t, asset=elsewhere) for t in range(0, 500, 10)], GW2)
    # gw-1's OPC UA server goes away after 50: its machines' last readings half a second apart.
    feed(
        rule,
        [reading(t + i / 2, asset=m) for t in range(0, 60, 10) for i, m in enumerate(machines)],
        GW1,
    )
    (raised,) = ticked(rule, 60, 400)
    assert (raised.kind.value, raised.asset.key, raised.signal) == ("raised", FLOW, "data-flow")
    assert raised.issue_type == "comms-loss"
    assert raised.at == at(110.5)  # m-01 silent for 60 s within 60 s of m-00: they fold
    params = raised.evidence.parameters
    # Named: the silences due by the tick that folded them (at 111); the others join after.
    assert (params["gateway_id"], params["silent_count"]) == ("gw-1", 3)
    assert params["silent"] == ", ".join(m.key for m in machines[:3])
    assert params["first_last_seen_ts"] == "2026-01-01T00:00:50Z"
    # Back one by one: the alert clears when the last one is.
    assert feed(rule, [reading(400 + i, asset=m) for i, m in enumerate(machines[:-1])], GW1) == []
    (cleared,) = feed(rule, [reading(420, asset=machines[-1])], GW1)
    assert timeline([cleared]) == [("cleared", FLOW, 420)]
    assert cleared.alert_id == raised.alert_id
    params = cleared.evidence.parameters
    assert (params["silent_count"], params["silence_s"]) == (7, 370)
    assert params["last_seen"].startswith(f"{machines[0].key}=2026-01-01T00:00:50Z; ")
    assert ticked(rule, 400, 460) == []  # (silent again from 400: due at 460)


def test_machines_that_stop_at_the_same_instant_fold_in_one_tick() -> None:
    rule = make(scope="machine")
    machines = plant_machines("plant-a", 7)
    feed(rule, [reading(t, asset=m) for t in range(0, 60, 10) for m in machines], GW1)
    assert rule.tick(at(109)) == []
    (raised,) = rule.tick(at(110))
    assert timeline([raised]) == [("raised", FLOW, 110)]
    assert raised.evidence.parameters["silent_count"] == 7


def test_a_machine_silent_alone_is_its_own_alert_after_the_fold_window() -> None:
    rule = make(scope="machine")
    alone, busy = plant_machines("plant-a", 2)
    feed(rule, [reading(t, asset=alone) for t in range(0, 60, 10)], GW1)
    feed(rule, [reading(t, asset=busy) for t in range(0, 410, 10)], GW1)
    assert ticked(rule, 60, 170) == []  # held: another machine of gw-1 may still join it
    (raised,) = rule.tick(at(170))
    assert timeline([raised]) == [("raised", alone.key, 110)]  # raised as of its silence
    assert raised.signal == "spindle"
    # busy goes silent far later (not within for_s of alone): its own alert too.
    assert ticked(rule, 171, 520) == []
    assert timeline(rule.tick(at(520))) == [("raised", busy.key, 460)]


def test_a_held_silence_that_ends_is_decided_at_once() -> None:
    rule = make(scope="machine")
    first, other = plant_machines("plant-a", 2)
    feed(rule, [reading(t, asset=first) for t in range(0, 60, 10)], GW1)
    feed(rule, [reading(t, asset=other) for t in range(0, 400, 10)], GW1)
    assert ticked(rule, 60, 140) == []
    events = feed(rule, [reading(140, asset=first)], GW1)
    assert timeline(events) == [("raised", first.key, 110), ("cleared", first.key, 140)]
    assert ticked(rule, 140, 200) == []


def test_a_silence_while_the_data_flow_alert_is_open_joins_it() -> None:
    rule = make(scope="machine", off_delay_s=20)
    m0, m1, m2 = plant_machines("plant-a", 3)
    feed(rule, [reading(t, asset=m) for t in range(0, 60, 10) for m in (m0, m1)], GW1)
    feed(rule, [reading(t, asset=m2) for t in range(0, 210, 10)], GW1)
    (raised,) = ticked(rule, 60, 200)
    assert timeline([raised]) == [("raised", FLOW, 110)]
    assert ticked(rule, 200, 400) == []  # m2 silent from 200: joins, no alert of its own
    assert feed(rule, [reading(400, asset=m0), reading(400, asset=m1)], GW1) == []
    assert feed(rule, [reading(410, asset=m2)], GW1) == []  # all back: clears after off_delay
    assert rule.tick(at(429)) == []
    (cleared,) = rule.tick(at(430))
    assert timeline([cleared]) == [("cleared", FLOW, 430)]
    assert cleared.evidence.parameters["silent_count"] == 3


def test_series_of_one_machine_do_not_fold() -> None:
    rule = make(signals=["feed"])
    feed(rule, [*every(0, 60), *every(0, 60, signal="feed")], GW1)
    events = rule.tick(at(500))
    assert sorted((e.signal, e.asset.key, e.at) for e in events) == [
        ("feed", MILL.key, at(110)),
        ("spindle", MILL.key, at(110)),
    ]


def test_readings_of_unknown_gateway_are_never_held() -> None:
    rule = make(scope="machine")
    feed(rule, every(0, 60))
    assert timeline(rule.tick(at(110))) == [("raised", MILL.key, 110)]


flow_steps = st.lists(
    st.tuples(st.integers(0, 90), st.integers(0, 3), st.booleans(), st.booleans()),
    max_size=60,
)


def run_engine(items: list[tuple[int, int, bool, bool]], twice: bool = False) -> list[AlertEvent]:
    """Machines 0-2 sent by gw-1, 3 by gw-2; `skewed`: the PLC clock 90 s behind."""
    engine = Engine([make(scope="machine", off_delay_s=10)])
    machines = plant_machines("plant-a", 4)
    events: list[AlertEvent] = []
    t = 0
    for dt, i, skewed, tick in items:
        t += dt
        r = reading(t - 90 * skewed, asset=machines[i], gateway_ts=at(t))
        for _ in range(2 if twice else 1):
            events += engine.process(r, gateway_id="gw-2" if i == 3 else "gw-1")
        if tick:
            events += engine.advance()
    return events + engine.advance(at(t + 1000))


@settings(max_examples=150, deadline=None)
@given(flow_steps)
def test_folding_replays_identically_and_duplicates_change_nothing(
    items: list[tuple[int, int, bool, bool]],
) -> None:
    once = run_engine(items)
    assert run_engine(items) == once
    assert run_engine(items, twice=True) == once
    for subject in {(e.asset.key, e.signal) for e in once}:
        kinds = [e.kind.value for e in once if (e.asset.key, e.signal) == subject]
        assert kinds == ["raised", "cleared"] * (len(kinds) // 2) + ["raised"] * (len(kinds) % 2)


# --- late but alive: a PLC clock gone back ------------------------------------------------------
def test_a_plc_clock_gone_back_still_proves_the_series_alive() -> None:
    rule = make()
    engine = Engine([rule])
    other = AssetPath.parse("plant-a/area/line/mill-02")
    events: list[AlertEvent] = []
    for t in range(0, 400, 10):
        back = 90 if t >= 110 else 0  # from 110 on, the mill's source times are 90 s behind
        events += engine.process(reading(t, asset=other))
        events += engine.process(reading(t - back, gateway_ts=at(t)))
        events += engine.advance()
    assert events == []
    assert (rule.late_but_alive, rule.ignored_out_of_order) == (29, 0)
    # The mill really stops (last seen at 390, as of the newest event time then): it raises.
    for t in range(400, 600, 10):
        events += engine.process(reading(t, asset=other))
        events += engine.advance()
    assert timeline(events) == [("raised", MILL.key, 450)]


def test_a_replayed_old_reading_proves_nothing() -> None:
    rule = make()
    engine = Engine([rule])
    other = AssetPath.parse("plant-a/area/line/mill-02")
    events: list[AlertEvent] = []
    for t in range(0, 200, 10):
        events += engine.process(reading(t, asset=other))
        if t <= 50:
            events += engine.process(reading(t))
        if t == 100:
            events += engine.process(reading(20))  # redelivered: read by the gateway at 20
        events += engine.advance()
    assert timeline(events) == [("raised", MILL.key, 110)]
    assert (rule.late_but_alive, rule.ignored_out_of_order) == (0, 1)
