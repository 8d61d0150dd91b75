"""The threshold rule on a timeline (ARCHITECTURE convention 8): readings carry explicit source
timestamps, and assertions say at which source time each alert event happens."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from alerting.engine import Engine
from plantmesh.contracts import (
    Reading,
)
from tests.support.alerting import CLEARED, RAISED, at, timeline
from tests.support.threshold import PRESS, PRESS2, feed, reading, rule, steps


def test_raises_exactly_when_the_on_delay_has_elapsed_in_source_time() -> None:
    # Normal until t=10, above 90 from t=10: pending at 10, raised at t=15 (not before), cleared
    # by the first reading below 85.
    readings = [*steps(0, 10, 1, 80.0), *steps(10, 30, 1, 95.0), reading(30, 84.0)]
    engine = Engine([rule()])
    events = feed(engine, readings)
    assert timeline(events) == [(15.0, RAISED), (30.0, CLEARED)]
    assert events[0].alert_id == events[1].alert_id


@pytest.mark.parametrize(
    ("step", "raised_at"),
    [(0.5, 15.0), (1.0, 15.0), (2.0, 16.0), (0.7, 15.6), (3.0, 16.0)],
)
def test_raise_is_the_first_reading_at_or_after_the_on_delay(step: float, raised_at: float) -> None:
    events = feed(Engine([rule()]), [reading(5, 80.0), *steps(10, 20, step, 95.0)])
    assert timeline(events) == [(raised_at, RAISED)]


def test_zero_on_delay_raises_on_the_first_crossing() -> None:
    events = feed(Engine([rule(on_delay_s=0)]), [reading(1, 80.0), reading(2, 90.5)])
    assert timeline(events) == [(2.0, RAISED)]


def test_value_equal_to_the_threshold_is_not_above_it() -> None:
    events = feed(Engine([rule(on_delay_s=0)]), steps(0, 10, 1, 90.0))
    assert events == []


def test_raised_evidence() -> None:
    values = [91.0, 93.5, 96.3, 95.0, 94.0, 92.0, 91.5, 93.0, 94.2, 95.1, 92.2, 91.1, 90.5, 90.7]
    readings = [reading(10 + i * 0.4, v) for i, v in enumerate(values)]  # t = 10.0 ... 15.2
    [event] = feed(Engine([rule()]), [reading(9.6, 80.0), *readings])
    assert event.kind is RAISED
    assert event.rule == "bearing-overtemp"
    assert event.asset == PRESS
    assert event.signal == "bearing_temp"
    assert event.severity.value == "high"
    assert event.at == at(15.2)
    ev = event.evidence
    assert ev.summary == (
        "bearing_temp of plant-a/stamping/line1/press-01 above 90.0 degC for 5.2 s (max 96.3)"
    )
    assert ev.condition == "value > 90.0 for >= 5.0 s"
    assert [(p.ts, p.value) for p in ev.points] == [(r.source_ts, r.value) for r in readings]
    assert ev.parameters == {
        "threshold": 90.0,
        "direction": "above",
        "deadband": 5.0,
        "on_delay_s": 5.0,
        "first_crossing_ts": "2026-01-01T00:00:10Z",
        "max": 96.3,
        "points_total": 14,
    }


def test_cleared_evidence() -> None:
    readings = [*steps(10, 20, 1, 95.0), reading(20, 97.5), reading(21, 88.0), reading(22, 84.5)]
    raised, cleared = feed(Engine([rule()]), readings)
    assert cleared.kind is CLEARED
    assert cleared.alert_id == raised.alert_id
    assert cleared.at == at(22)
    ev = cleared.evidence
    assert ev.summary == (
        "bearing_temp of plant-a/stamping/line1/press-01 back below 85.0 degC (84.5) "
        "after 7.0 s raised (max 97.5)"
    )
    assert ev.condition == "value < 85.0 (threshold 90.0 - deadband 5.0)"
    # From after the raise up to the clearing reading.
    assert [(p.ts, p.value) for p in ev.points][-3:] == [
        (at(20), 97.5),
        (at(21), 88.0),
        (at(22), 84.5),
    ]
    assert ev.points[0].ts == at(16)
    assert ev.parameters["clear_level"] == 85.0
    assert ev.parameters["raised_at"] == "2026-01-01T00:00:15Z"
    assert ev.parameters["first_crossing_ts"] == "2026-01-01T00:00:10Z"
    assert ev.parameters["active_s"] == 7.0
    assert ev.parameters["max"] == 97.5


def test_spike_shorter_than_the_on_delay_raises_nothing() -> None:
    readings = [*steps(0, 10, 1, 80.0), *steps(10, 14.5, 0.5, 99.0), *steps(14.5, 30, 1, 80.0)]
    assert feed(Engine([rule()]), readings) == []


def test_pending_resets_when_the_value_drops_inside_the_deadband() -> None:
    # 89 is below the threshold but above threshold - deadband: enough to reset a pending one.
    readings = [
        *steps(10, 14, 1, 95.0),
        reading(14, 89.0),
        *steps(15, 30, 1, 95.0),
    ]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(20.0, RAISED)]
    assert events[0].evidence.parameters["first_crossing_ts"] == "2026-01-01T00:00:15Z"


def test_hovering_in_the_deadband_neither_clears_nor_raises_again() -> None:
    hover = [86.0, 89.9, 85.0, 90.0, 87.0, 93.0, 99.0, 85.1, 88.0]
    readings = [
        *steps(10, 16, 1, 95.0),
        *[reading(16 + i, v) for i, v in enumerate(hover)],
        reading(40, 84.9),
    ]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(15.0, RAISED), (40.0, CLEARED)]
    assert events[1].evidence.parameters["max"] == 99.0


def test_a_new_excursion_after_clearing_is_a_new_alert() -> None:
    readings = [*steps(0, 10, 1, 95.0), reading(10, 80.0), *steps(20, 30, 1, 95.0)]
    events = feed(Engine([rule()]), readings)
    assert timeline(events) == [(5.0, RAISED), (10.0, CLEARED), (25.0, RAISED)]
    assert events[2].alert_id != events[0].alert_id


def excursions() -> list[Reading]:
    return [
        *steps(0, 10, 1, 80.0),
        *steps(10, 20, 0.5, 96.0),
        reading(20, 70.0),
        *steps(21, 23, 1, 92.0),  # a spike
        *steps(30, 45, 1, 91.0),
        reading(45, 80.0),
    ]


def test_replaying_the_same_input_gives_identical_events_and_ids() -> None:
    first = feed(Engine([rule()]), excursions())
    second = feed(Engine([rule()]), excursions())
    assert len(first) == 4
    assert first == second
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in second]
    assert len({e.alert_id for e in first}) == 2


def test_alert_id_depends_on_the_instant_not_on_the_gateways_utc_offset() -> None:
    cet = timezone(timedelta(hours=1))
    utc_events = feed(Engine([rule()]), excursions())
    local = [r.model_copy(update={"source_ts": r.source_ts.astimezone(cet)}) for r in excursions()]
    local_events = feed(Engine([rule()]), local)
    assert [e.alert_id for e in local_events] == [e.alert_id for e in utc_events]
    assert local_events[0].evidence == utc_events[0].evidence


def test_alert_id_differs_per_rule_and_series() -> None:
    readings = [*steps(10, 16, 1, 95.0)]
    other_machine = [r.model_copy(update={"asset": PRESS2}) for r in readings]
    engine = Engine([rule(), rule(name="bearing-overtemp-2")])
    events = feed(engine, [*readings, *other_machine])
    assert len(events) == 4
    assert len({e.alert_id for e in events}) == 4


def test_processing_delay_does_not_matter_only_source_time() -> None:
    # The same source timestamps, received in batches long after the fact: same outcome.
    readings = [*steps(10, 14, 1, 95.0), reading(14, 89.0), *steps(15, 21, 1, 95.0)]
    delayed = [
        r.model_copy(update={"gateway_ts": r.source_ts + timedelta(hours=3)}) for r in readings
    ]
    assert feed(Engine([rule()]), delayed) == feed(Engine([rule()]), readings)
    assert timeline(feed(Engine([rule()]), readings)) == [(20.0, RAISED)]
