"""The stale-data rule and the gateway comms-loss episodes on a timeline (seconds from T0)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerting.rules.base import Context, MachineStates, StateGate
from plantmesh.contracts import (
    STATUS_BAD_COMMUNICATION_ERROR,
    STATUS_BAD_SENSOR_FAILURE,
    AlertEvent,
    AssetPath,
)
from tests.support.alerting import MILL, at, feed
from tests.support.stale import every, make, plant_machines, reading, timeline


def test_a_series_that_stops_raises_at_last_reading_plus_for_s_on_tick() -> None:
    rule = make()
    assert feed(rule, every(0, 60)) == []  # last reading at 50
    assert rule.tick(at(109)) == []
    (raised,) = rule.tick(at(500))
    assert timeline([raised]) == [("raised", MILL.key, 110)]
    assert raised.issue_type == "comms-loss"
    assert raised.signal == "spindle"
    params = raised.evidence.parameters
    assert (params["last_seen_ts"], params["silence_s"], params["for_s"]) == (
        "2026-01-01T00:00:50Z",
        60,
        60,
    )
    assert params["scope"] == "series"
    assert rule.tick(at(900)) == []  # one alert per silence
    (cleared,) = feed(rule, [reading(1000)])
    assert timeline([cleared]) == [("cleared", MILL.key, 1000)]
    assert cleared.alert_id == raised.alert_id
    assert cleared.evidence.parameters["silence_s"] == 950
    assert rule.tick(at(1059)) == []
    (again,) = rule.tick(at(1060))
    assert again.at == at(1060)
    assert again.alert_id != raised.alert_id


def test_off_delay_clears_only_after_data_is_back_that_long() -> None:
    rule = make(off_delay_s=30)
    feed(rule, [reading(0)])
    assert timeline(rule.tick(at(100))) == [("raised", MILL.key, 60)]
    assert feed(rule, [reading(200), reading(210)]) == []
    (cleared,) = rule.tick(at(260))
    assert cleared.at == at(230)
    # Back for the off-delay, then silent again: the clear comes first, then a new alert.
    rule = make(off_delay_s=30)
    feed(rule, [reading(0)])
    rule.tick(at(100))
    feed(rule, [reading(200)])
    assert timeline(rule.tick(at(1000))) == [("cleared", MILL.key, 230), ("raised", MILL.key, 260)]
    # Silent again before the off-delay elapsed: still the same alert.
    cleared_later = make(off_delay_s=100)
    feed(cleared_later, [reading(0)])
    cleared_later.tick(at(100))
    feed(cleared_later, [reading(200)])
    assert cleared_later.tick(at(1000)) == []  # silent again at 260 < 300: still the same alert
    (done,) = feed(cleared_later, [reading(1100), reading(1200)])
    assert done.at == at(1200)


def test_each_series_on_its_own_and_one_never_seen_is_never_stale() -> None:
    rule = make(signals=["feed"])
    assert rule.signals == frozenset({"spindle", "feed"})
    feed(rule, [*every(0, 100), *every(0, 30, signal="feed")])
    (feed_stale,) = rule.tick(at(149))
    assert (feed_stale.signal, feed_stale.at) == ("feed", at(80))
    (spindle_stale,) = rule.tick(at(10_000))  # mill-02 was never seen: nothing for it
    assert (spindle_stale.signal, spindle_stale.at) == ("spindle", at(150))


def test_machine_scope_any_signal_counts_as_data() -> None:
    rule = make(scope="machine", signals=["feed", "load"])
    other = AssetPath.parse("plant-a/area/line/mill-02")
    readings = [
        *every(0, 100, signal="feed"),
        *every(0, 300, signal="load"),
        reading(0, asset=other),
        reading(50, "feed", asset=other),
    ]
    feed(rule, sorted(readings, key=lambda r: r.source_ts))
    assert rule.ignored_out_of_order == 0  # siblings at the same time are not late
    (raised,) = rule.tick(at(300))
    assert timeline([raised]) == [("raised", other.key, 110)]
    assert raised.signal == "spindle"
    assert raised.evidence.parameters["signals"] == "feed,load,spindle"
    assert raised.evidence.parameters["scope"] == "machine"
    assert timeline(rule.tick(at(2000))) == [("raised", MILL.key, 350)]


def test_bad_quality_is_data_but_a_communication_error_is_not() -> None:
    rule = make()
    feed(rule, [reading(0), reading(50, status_code=STATUS_BAD_SENSOR_FAILURE)])
    feed(rule, [reading(t, status_code=STATUS_BAD_COMMUNICATION_ERROR) for t in (60, 120)])
    assert timeline(rule.tick(at(200))) == [("raised", MILL.key, 110)]
    assert rule.ignored_comms_error == 2


def test_out_of_order_and_duplicated_readings_change_nothing() -> None:
    clean, noisy = make(), make()
    readings = every(0, 100, 20)
    expected = feed(clean, readings) + clean.tick(at(200)) + feed(clean, [reading(300)])
    mixed = [readings[0], readings[0], readings[2], readings[1], readings[3], readings[4]]
    got = feed(noisy, [*mixed, readings[3]]) + noisy.tick(at(200)) + feed(noisy, [reading(300)])
    assert got == expected
    assert timeline(got) == [("raised", MILL.key, 140), ("cleared", MILL.key, 300)]
    assert noisy.ignored_out_of_order == 3


def test_a_machine_stopped_at_its_last_reading_does_not_go_stale() -> None:
    rule = make(gate=StateGate(signal="running"))
    states = MachineStates()
    context = Context("cnc_mill", states)
    states.update(reading(0, "running", value=True))
    feed(rule, [reading(0), reading(10)], context)
    states.update(reading(15, "running", value=False))
    feed(rule, [reading(20)], context)  # the last reading: machine stopped
    assert rule.tick(at(1000)) == []
    states.update(reading(1000, "running", value=True))
    feed(rule, [reading(1010)], context)
    (raised,) = rule.tick(at(2000))
    assert raised.at == at(1070)
    assert raised.machine_class == "cnc_mill"
    assert raised.evidence.parameters["gate"] == "running == True"


# --- gateways ---------------------------------------------------------------------------------
def test_a_gateway_down_is_one_alert_not_a_cascade() -> None:
    rule = make(scope="machine")
    machines = plant_machines("plant-a", 20)
    elsewhere = AssetPath.parse("plant-b/area/line/m-00")
    feed(rule, [reading(t, asset=m) for t in range(0, 40, 10) for m in [*machines, elsewhere]])
    (down,) = rule.gateway_down("plant-a", "gw-1", at(40), "mqtt last will")
    assert timeline([down]) == [("raised", "plant-a/gateway/gateway/gw-1", 40)]
    assert down.issue_type == "comms-loss"
    assert down.evidence.parameters["reason"] == "mqtt last will"
    assert rule.gateway_down("plant-a", "gw-1", at(45), "again") == []  # one per outage
    # All 21 machines go quiet at 30; only plant-b's is not behind the dead gateway.
    assert timeline(rule.tick(at(1000))) == [("raised", elsewhere.key, 90)]
    assert rule.tick(at(1500)) == []
    assert rule.gap("plant-a", "gw-1", at(1200), batches_missing=7) == []  # folded
    (up,) = rule.gateway_up("plant-a", "gw-1", at(2000))
    assert up.alert_id == down.alert_id
    params = up.evidence.parameters
    assert (params["down_s"], params["suppressed_stale"], params["gaps"]) == (1960, 20, 1)
    assert params["batches_missing"] == 7
    # The plant's silences count from the gateway's return: m-00 resumes, the rest do not.
    feed(rule, [reading(2010, asset=machines[0])])
    assert rule.tick(at(2059)) == []
    assert rule.gap("plant-a", "gw-1", at(2030), batches_missing=2) == []  # just after: folded
    raised = rule.tick(at(2060))
    assert sorted(timeline(raised)) == [("raised", m.key, 2060) for m in machines[1:]]


def test_a_planned_stop_pages_no_one_and_its_silences_are_expected() -> None:
    rule = make(scope="machine")
    machines = plant_machines("plant-a", 5)
    feed(rule, [reading(t, asset=m) for t in range(0, 40, 10) for m in machines])
    assert rule.gateway_down("plant-a", "gw-1", at(40), "stopped", planned=True) == []
    assert rule.tick(at(1000)) == []  # the machines behind it are silent, as planned
    assert rule.gateway_up("plant-a", "gw-1", at(1100)) == []  # nothing was raised to clear
    # Back up: silences count again from its return.
    assert sorted(timeline(rule.tick(at(1160)))) == [("raised", m.key, 1160) for m in machines]


def test_gateway_messages_out_of_order_or_repeated_change_nothing() -> None:
    rule = make()
    assert rule.gateway_up("plant-a", "gw-1", at(0)) == []  # up without down: nothing to clear
    assert len(rule.gateway_down("plant-a", "gw-1", at(10), "lost")) == 1
    assert rule.gateway_up("plant-a", "gw-1", at(5)) == []  # older than the death
    assert len(rule.gateway_up("plant-a", "gw-1", at(20))) == 1
    assert rule.gateway_up("plant-a", "gw-1", at(30)) == []
    assert rule.gateway_down("plant-a", "gw-1", at(15), "late") == []


def test_gaps_while_the_gateway_is_up_are_one_alert_per_burst() -> None:
    rule = make()
    (raised,) = rule.gap("plant-a", "gw-1", at(100), batches_missing=3)
    assert timeline([raised]) == [("raised", "plant-a/gateway/gateway/gw-1", 100)]
    assert raised.signal == "gateway-sequence"
    assert rule.gap("plant-a", "gw-1", at(130), batches_missing=1) == []
    assert rule.tick(at(189)) == []
    (cleared,) = rule.tick(at(500))
    assert cleared.at == at(190)
    assert cleared.alert_id == raised.alert_id
    assert (
        cleared.evidence.parameters["gaps"],
        cleared.evidence.parameters["batches_missing"],
    ) == (
        2,
        4,
    )
    assert len(rule.gap("plant-a", "gw-1", at(600), batches_missing=1)) == 1


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        make(for_s=0)
    with pytest.raises(ValidationError):
        make(scope="gateway")
    with pytest.raises(ValidationError, match="twice"):
        make(signals=["feed", "feed"])


# --- replay property --------------------------------------------------------------------------
steps = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from(["spindle", "feed"]), st.booleans()),
    max_size=50,
)


def run(
    items: list[tuple[int, str, bool]], twice: bool = False, ticks: bool = True
) -> list[AlertEvent]:
    rule = make(scope="machine", signals=["feed"], off_delay_s=20)
    events: list[AlertEvent] = []
    t = 0
    other = AssetPath.parse("plant-a/area/line/mill-02")
    for i, (dt, signal, first) in enumerate(items):
        t += dt
        r = reading(t, signal, MILL if first else other)
        for _ in range(2 if twice else 1):
            events += rule.evaluate(r)
        if ticks and i % 3 == 2:
            events += rule.tick(at(t))
    return events + rule.tick(at(t + 1000))


@settings(max_examples=150, deadline=None)
@given(steps)
def test_replay_is_identical_and_duplicates_change_nothing(
    items: list[tuple[int, str, bool]],
) -> None:
    once = run(items)
    assert run(items) == once
    assert run(items, twice=True) == once
    for asset in {e.asset.key for e in once}:
        kinds = [e.kind.value for e in once if e.asset.key == asset]
        assert kinds == ["raised", "cleared"] * (len(kinds) // 2) + ["raised"] * (len(kinds) % 2)
